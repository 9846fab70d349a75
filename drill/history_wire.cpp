#include "drill/history_wire.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace visorlab::drill {

namespace {

actors::HistoryRecord record_of(const History& h, const Event& e) {
  actors::HistoryRecord r;
  r.at = e.at;
  r.device = e.device;
  r.kind = static_cast<std::uint8_t>(e.kind);
  switch (e.kind) {
    case EventKind::disk_invoke:
      r.id = e.invoke.op_id;
      r.lba = e.invoke.lba;
      r.gen = e.invoke.gen;
      r.count = e.invoke.blocks;
      r.op = static_cast<std::uint8_t>(e.invoke.op);
      break;
    case EventKind::disk_ok:
      r.id = e.ok.op_id;
      r.count = static_cast<std::uint32_t>(h.seen(e).size());
      break;
    case EventKind::disk_fail:
      r.id = e.fail.op_id;
      r.ref = e.fail.reason;
      break;
    case EventKind::disk_retried: r.id = e.retried.op_id; break;
    case EventKind::frame_sent:
    case EventKind::frame_received:
      r.id = e.frame.seq;
      r.ref = e.frame.peer;
      break;
    case EventKind::input_produced:
    case EventKind::input_delivered: r.id = e.input.seq_no; break;
  }
  return r;
}

void need(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("history chunk: " + what);
}

}  // namespace

actors::HistoryChunk history_chunk(const History& h, std::uint64_t first, std::size_t max_events) {
  actors::HistoryChunk c;
  c.name = h.name;
  c.seed = h.seed;
  c.first = first;
  c.devices = h.devices;
  c.texts = h.texts;
  for (const Violation& v : h.violations) c.violations.push_back({v.kind, v.device, v.at, v.detail});
  const std::size_t begin = std::min<std::size_t>(first, h.events.size());
  const std::size_t end = begin + std::min(max_events, h.events.size() - begin);
  c.records.reserve(end - begin);
  for (std::size_t i = begin; i < end; ++i) {
    const Event& e = h.events[i];
    c.records.push_back(record_of(h, e));
    if (e.kind == EventKind::disk_ok)
      for (const BlockSeen& b : h.seen(e)) c.blocks.push_back({b.lba, b.gen, b.device_tag, b.checksum_ok});
  }
  c.more = end < h.events.size();
  return c;
}

void add_chunk(History& h, const actors::HistoryChunk& c) {
  // Every chunk carries the name, seed and every violation so far.
  h.name = c.name;
  h.seed = c.seed;
  h.violations.clear();
  for (const auto& v : c.violations) h.violations.push_back({v.kind, v.device, v.at, v.detail});
  // Names and texts only grow: a later chunk carries all an earlier one did.
  need(c.devices.size() >= h.devices.size() && c.texts.size() >= h.texts.size(), "fewer devices or texts than before");
  h.devices = c.devices;
  h.texts = c.texts;
  std::size_t block = 0;
  for (const actors::HistoryRecord& r : c.records) {
    need(r.kind <= static_cast<std::uint8_t>(EventKind::input_delivered), "unknown kind " + std::to_string(r.kind));
    need(r.device < h.devices.size(), "device " + std::to_string(r.device) + " out of range");
    Event e;
    e.at = r.at;
    e.device = r.device;
    e.kind = static_cast<EventKind>(r.kind);
    switch (e.kind) {
      case EventKind::disk_invoke:
        need(r.op <= static_cast<std::uint8_t>(DiskOp::write), "unknown disk op " + std::to_string(r.op));
        e.invoke = {r.id, r.lba, r.gen, r.count, static_cast<DiskOp>(r.op)};
        break;
      case EventKind::disk_ok:
        need(r.count <= c.blocks.size() - block, "blocks past the chunk's end");
        e.ok = {r.id, h.blocks.size(), r.count};
        for (std::uint32_t i = 0; i < r.count; ++i, ++block) {
          const auto& b = c.blocks[block];
          h.blocks.push_back({b.lba, b.gen, b.device_tag, b.checksum_ok});
        }
        break;
      case EventKind::disk_fail:
        need(r.ref < h.texts.size(), "text " + std::to_string(r.ref) + " out of range");
        e.fail = {r.id, r.ref};
        break;
      case EventKind::disk_retried: e.retried = {r.id}; break;
      case EventKind::frame_sent:
      case EventKind::frame_received:
        need(r.ref < h.devices.size(), "peer " + std::to_string(r.ref) + " out of range");
        e.frame = {r.ref, r.id};
        break;
      case EventKind::input_produced:
      case EventKind::input_delivered: e.input = {r.id}; break;
    }
    h.events.push_back(e);
  }
  need(block == c.blocks.size(), "blocks no record refers to");
}

}  // namespace visorlab::drill
