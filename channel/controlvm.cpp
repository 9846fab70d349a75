#include "channel/controlvm.hpp"

namespace visorlab::channel::controlvm {

std::optional<std::string_view> id_name(std::uint32_t id) {
  switch (static_cast<Id>(id)) {
    case Id::bus_create: return "BUS_CREATE";
    case Id::bus_destroy: return "BUS_DESTROY";
    case Id::bus_configure: return "BUS_CONFIGURE";
    case Id::bus_changestate: return "BUS_CHANGESTATE";
    case Id::bus_changestate_event: return "BUS_CHANGESTATE_EVENT";
    case Id::device_create: return "DEVICE_CREATE";
    case Id::device_destroy: return "DEVICE_DESTROY";
    case Id::device_configure: return "DEVICE_CONFIGURE";
    case Id::device_changestate: return "DEVICE_CHANGESTATE";
    case Id::device_changestate_event: return "DEVICE_CHANGESTATE_EVENT";
    case Id::device_reconfigure: return "DEVICE_RECONFIGURE";
    case Id::chipset_init: return "CHIPSET_INIT";
    case Id::chipset_stop: return "CHIPSET_STOP";
    case Id::chipset_ready: return "CHIPSET_READY";
    case Id::chipset_selftest: return "CHIPSET_SELFTEST";
  }
  return std::nullopt;
}

}  // namespace visorlab::channel::controlvm
