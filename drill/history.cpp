#include "drill/history.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace visorlab::drill {

std::optional<DeviceId> History::find_device(std::string_view name) const {
  const auto it = std::find(devices.begin(), devices.end(), name);
  if (it == devices.end()) return std::nullopt;
  return static_cast<DeviceId>(it - devices.begin());
}

DeviceId History::device_id(std::string_view name) {
  if (const auto id = find_device(name)) return *id;
  devices.emplace_back(name);
  return static_cast<DeviceId>(devices.size() - 1);
}

Nanos History::end_time() const {
  if (end != 0) return end;
  Nanos last = 0;
  if (!events.empty()) last = std::max(last, events.back().at);
  for (const auto& f : faults) last = std::max({last, f.start, f.end});
  for (const auto& r : recoveries) last = std::max({last, r.detect, r.pause, r.restart, r.resume});
  for (const auto& v : violations) last = std::max(last, v.at);
  return last;
}

std::span<const BlockSeen> History::seen(const Event& e) const {
  if (e.kind != EventKind::disk_ok || e.ok.block_count == 0) return {};
  if (e.ok.first_block + e.ok.block_count > blocks.size()) {
    throw std::out_of_range("drill history: a read refers to blocks it does not hold");
  }
  return std::span<const BlockSeen>(blocks).subspan(e.ok.first_block, e.ok.block_count);
}

void History::sort_by_time() {
  const auto by_time = [](const Event& a, const Event& b) { return a.at < b.at; };
  // One thread's events mostly come in order already: skip the sort then.
  if (!std::is_sorted(events.begin(), events.end(), by_time)) std::stable_sort(events.begin(), events.end(), by_time);
  std::stable_sort(faults.begin(), faults.end(),
                   [](const FaultWindow& a, const FaultWindow& b) { return a.start < b.start; });
  std::stable_sort(violations.begin(), violations.end(),
                   [](const Violation& a, const Violation& b) { return a.at < b.at; });
}

namespace {

// Same event, reading what it refers to (blocks seen, failure reason) rather
// than where it is kept: merging and reloading renumber those.
bool same_event(const History& ha, const Event& a, const History& hb, const Event& b) {
  if (a.at != b.at || a.kind != b.kind || ha.device_name(a.device) != hb.device_name(b.device)) return false;
  switch (a.kind) {
    case EventKind::disk_invoke:
      return a.invoke.op_id == b.invoke.op_id && a.invoke.lba == b.invoke.lba && a.invoke.gen == b.invoke.gen &&
             a.invoke.blocks == b.invoke.blocks && a.invoke.op == b.invoke.op;
    case EventKind::disk_ok: {
      const auto sa = ha.seen(a), sb = hb.seen(b);
      return a.ok.op_id == b.ok.op_id && std::equal(sa.begin(), sa.end(), sb.begin(), sb.end());
    }
    case EventKind::disk_fail:
      return a.fail.op_id == b.fail.op_id && ha.texts.at(a.fail.reason) == hb.texts.at(b.fail.reason);
    case EventKind::disk_retried:
      return a.retried.op_id == b.retried.op_id;
    case EventKind::frame_sent:
    case EventKind::frame_received:
      return ha.device_name(a.frame.peer) == hb.device_name(b.frame.peer) && a.frame.seq == b.frame.seq;
    case EventKind::input_produced:
    case EventKind::input_delivered:
      return a.input.seq_no == b.input.seq_no;
  }
  return false;
}

}  // namespace

bool History::operator==(const History& o) const {
  if (name != o.name || seed != o.seed || end != o.end || faults != o.faults || recoveries != o.recoveries ||
      violations != o.violations || events.size() != o.events.size()) {
    return false;
  }
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (!same_event(*this, events[i], o, o.events[i])) return false;
  }
  return true;
}

History merge(std::vector<History> parts) {
  History out;
  for (auto& part : parts) {
    if (out.name.empty()) out.name = part.name;
    if (out.seed == 0) out.seed = part.seed;
    out.end = std::max(out.end, part.end);

    std::vector<DeviceId> device_map(part.devices.size());
    for (std::size_t i = 0; i < part.devices.size(); ++i) device_map[i] = out.device_id(part.devices[i]);
    const auto text_base = static_cast<std::uint32_t>(out.texts.size());
    const auto block_base = static_cast<std::uint64_t>(out.blocks.size());
    for (auto& t : part.texts) out.texts.push_back(std::move(t));
    out.blocks.insert(out.blocks.end(), part.blocks.begin(), part.blocks.end());

    out.events.reserve(out.events.size() + part.events.size());
    for (Event e : part.events) {
      e.device = device_map.at(e.device);
      switch (e.kind) {
        case EventKind::disk_ok:
          if (e.ok.block_count != 0) e.ok.first_block += block_base;
          break;
        case EventKind::disk_fail:
          e.fail.reason += text_base;
          break;
        case EventKind::frame_sent:
        case EventKind::frame_received:
          e.frame.peer = device_map.at(e.frame.peer);
          break;
        default:
          break;
      }
      out.events.push_back(e);
    }
    for (auto& f : part.faults) out.faults.push_back(std::move(f));
    for (auto& r : part.recoveries) out.recoveries.push_back(std::move(r));
    for (auto& v : part.violations) out.violations.push_back(std::move(v));
  }
  out.sort_by_time();
  return out;
}

std::string_view to_string(EventKind kind) {
  switch (kind) {
    case EventKind::disk_invoke: return "invoke";
    case EventKind::disk_ok: return "ok";
    case EventKind::disk_fail: return "fail";
    case EventKind::disk_retried: return "retried";
    case EventKind::frame_sent: return "sent";
    case EventKind::frame_received: return "received";
    case EventKind::input_produced: return "produced";
    case EventKind::input_delivered: return "delivered";
  }
  return "?";
}

std::string_view to_string(DiskOp op) { return op == DiskOp::read ? "read" : "write"; }

}  // namespace visorlab::drill
