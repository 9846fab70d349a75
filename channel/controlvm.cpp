#include "channel/controlvm.hpp"

#include <system_error>

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

std::string status_text(std::uint32_t status) {
  std::string_view name;
  switch (static_cast<Response>(status)) {
    case Response::success: name = "SUCCESS"; break;
    case Response::already_done: name = "ALREADY_DONE"; break;
    case Response::id_unknown: name = "ID_UNKNOWN"; break;
    case Response::id_invalid_for_client: name = "ID_INVALID_FOR_CLIENT"; break;
    case Response::expected_chipset_init: name = "EXPECTED_CHIPSET_INIT"; break;
    case Response::error_max_buses: name = "MAX_BUSES"; break;
    case Response::error_max_devices: name = "MAX_DEVICES"; break;
    case Response::payload_invalid: name = "PAYLOAD_INVALID"; break;
    case Response::bus_invalid: name = "BUS_INVALID"; break;
    case Response::device_invalid: name = "DEVICE_INVALID"; break;
    case Response::channel_invalid: name = "CHANNEL_INVALID"; break;
    case Response::channel_type_unknown: name = "CHANNEL_TYPE_UNKNOWN"; break;
    case Response::channel_size_too_small: name = "CHANNEL_SIZE_TOO_SMALL"; break;
    case Response::device_udev_timeout: name = "DEVICE_UDEV_TIMEOUT"; break;
  }
  // The few response codes that are also small errnos (1, 4, 5) read as
  // responses: those are what the command partition's peers send.
  const std::string why = !name.empty() ? std::string(name) : status < 4096 ? std::generic_category().message(static_cast<int>(status)) : "";
  return "status " + std::to_string(status) + (why.empty() ? "" : " (" + why + ")");
}

}  // namespace visorlab::channel::controlvm
