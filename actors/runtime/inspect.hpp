// How a message type tells CAF its fields (CAF 0.17's inspect), written once:
// VISORLAB_MESSAGE(GuestSpec, x.name, x.controlvm) names the type
// "visorlab.GuestSpec" and lists the fields of `x` in wire order.
#pragma once

#include <caf/meta/type_name.hpp>

#define VISORLAB_MESSAGE(Type, ...)                                  \
  template <class Inspector>                                         \
  typename Inspector::result_type inspect(Inspector& f, Type& x) {   \
    return f(caf::meta::type_name("visorlab." #Type), __VA_ARGS__); \
  }
