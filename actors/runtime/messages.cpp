#include "actors/runtime/messages.hpp"

#include <array>

namespace visorlab::actors {

std::string_view to_string(DeviceState state) {
  static constexpr std::array<std::string_view, 6> kNames{"probed", "running", "pausing", "paused", "resuming",
                                                          "no_driver"};  // in DeviceState's order
  const auto i = static_cast<std::size_t>(state);
  return i < kNames.size() ? kNames[i] : "unknown";
}

std::string_view to_string(RecoveryKind kind) { return kind == RecoveryKind::crash ? "crash" : "recover"; }

std::string_view to_string(HostRole role) { return role == HostRole::agent ? "agent" : "partitions"; }

}  // namespace visorlab::actors
