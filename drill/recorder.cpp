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
  // Reasons repeat (every op in flight at a crash fails alike): each is kept once.
  auto it = std::find(texts_.begin(), texts_.end(), reason);
  if (it == texts_.end()) it = texts_.emplace(texts_.end(), reason);
  Event e;
  e.at = at;
  e.device = device;
  e.kind = EventKind::disk_fail;
  e.fail = DiskFail{op_id, static_cast<std::uint32_t>(it - texts_.begin())};
  events_.push(e);
}

namespace {

// Appends `e` to `h`, its blocks (kept in `blocks` from their index on) with it.
void append(History& h, Event e, const AppendLog<BlockSeen>& blocks) {
  if (e.kind == EventKind::disk_ok && e.ok.block_count != 0) {
    const std::uint64_t from = e.ok.first_block;
    e.ok.first_block = h.blocks.size();
    for (std::uint32_t i = 0; i < e.ok.block_count; ++i) h.blocks.push_back(blocks[from + i]);
  }
  h.events.push_back(e);
}

}  // namespace

History Recorder::history() const {
  History h = slice(events_.begin(), events_.size());
  h.faults = faults_;
  h.recoveries = recoveries_;
  h.sort_by_time();
  return h;
}

History Recorder::slice(std::uint64_t first, std::size_t max_events) const {
  History h;
  h.devices = devices_;
  h.texts = texts_;
  h.violations = violations_;
  const std::uint64_t from = std::max(first, events_.begin());
  const std::uint64_t to = std::min(events_.end(), from + max_events);
  h.events.reserve(static_cast<std::size_t>(to - from));
  for (std::uint64_t i = from; i < to; ++i) append(h, events_[i], blocks_);
  return h;
}

void Recorder::forget_before(std::uint64_t first) {
  const std::uint64_t to = std::min(first, events_.end());
  std::uint64_t blocks_used = blocks_.begin();  // one past the last block a forgotten read saw
  for (std::uint64_t i = events_.begin(); i < to; ++i) {
    const Event& e = events_[i];
    if (e.kind == EventKind::disk_ok && e.ok.block_count != 0)
      blocks_used = std::max(blocks_used, e.ok.first_block + e.ok.block_count);
  }
  events_.drop_before(to);
  blocks_.drop_before(blocks_used);
}

}  // namespace visorlab::drill
