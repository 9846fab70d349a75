// The rules a parsed topology must satisfy before anything starts: every name
// it refers to exists, names are unique, devices fit their service, values
// are in range, and the drill's steps target things that exist at their time.
// Throws the first Error in file order, positioned through Topology::source.
#pragma once

#include "topology/error.hpp"
#include "topology/model.hpp"

namespace visorlab::topology {

void validate(const Topology& topology);

}  // namespace visorlab::topology
