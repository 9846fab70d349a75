#include "drill/recorder.hpp"

#include <algorithm>

namespace visorlab::drill {

Recorder::Recorder(std::size_t expected_events) : events_(expected_events), blocks_(expected_events) {}

DeviceId Recorder::device(std::string_view name) {
  const auto it = std::find(devices_.begin(), devices_.end(), name);
  if (it != devices_.end()) return static_cast<DeviceId>(it - devices_.begin());
  devices_.emplace_back(name);
  return static_cast<DeviceId>(devices_.size() - 1);
}

void Recorder::disk_fail(Nanos at, DeviceId device, std::uint64_t op_id, std::string_view reason) {
  texts_.emplace_back(reason);
  Event e;
  e.at = at;
  e.device = device;
  e.kind = EventKind::disk_fail;
  e.fail = DiskFail{op_id, static_cast<std::uint32_t>(texts_.size() - 1)};
  events_.push(e);
}

History Recorder::history() const {
  History h;
  h.devices = devices_;
  h.texts = texts_;
  events_.copy_to(h.events);
  blocks_.copy_to(h.blocks);
  h.faults = faults_;
  h.recoveries = recoveries_;
  h.violations = violations_;
  h.sort_by_time();
  return h;
}

}  // namespace visorlab::drill
