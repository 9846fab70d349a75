#include "actors/runtime/messages.hpp"

namespace visorlab::actors {

std::string_view to_string(DeviceState state) {
  switch (state) {
    case DeviceState::probed: return "probed";
    case DeviceState::running: return "running";
    case DeviceState::pausing: return "pausing";
    case DeviceState::paused: return "paused";
    case DeviceState::resuming: return "resuming";
    case DeviceState::no_driver: return "no_driver";
  }
  return "unknown";
}

std::string_view to_string(RecoveryKind kind) { return kind == RecoveryKind::crash ? "crash" : "recover"; }

std::string_view to_string(HostRole role) { return role == HostRole::agent ? "agent" : "partitions"; }

}  // namespace visorlab::actors
