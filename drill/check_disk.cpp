#include "drill/checks.hpp"

#include <algorithm>

namespace visorlab::drill::checks {

bool IdSet::insert(std::uint64_t id) {
  if (contains(id)) return false;
  auto next = runs_.upper_bound(id);  // the first run starting after id
  const bool joins_next = next != runs_.end() && id != std::numeric_limits<std::uint64_t>::max() && next->first == id + 1;
  if (next != runs_.begin()) {
    auto prev = std::prev(next);
    if (id != 0 && prev->second == id - 1) {  // extends the run before it…
      prev->second = joins_next ? next->second : id;
      if (joins_next) runs_.erase(next);  // …and meets the one after
      return true;
    }
  }
  if (joins_next) {
    const std::uint64_t last = next->second;
    runs_.erase(next);
    runs_.emplace(id, last);
  } else {
    runs_.emplace(id, id);
  }
  return true;
}

bool IdSet::contains(std::uint64_t id) const {
  auto it = runs_.upper_bound(id);
  if (it == runs_.begin()) return false;
  --it;
  return id <= it->second;
}

DiskCheck::Sector* DiskCheck::Sectors::find(std::uint64_t lba) {
  const auto it = pages_.find(lba / kPage);
  return it == pages_.end() ? nullptr : &(*it->second)[lba % kPage];
}

DiskCheck::Sector& DiskCheck::Sectors::at(std::uint64_t lba) {
  auto& page = pages_[lba / kPage];
  if (!page) page = std::make_unique<std::array<Sector, kPage>>();
  return (*page)[lba % kPage];
}

DiskCheck::DiskCheck(const History& summary, const CheckOptions& options, const Affected& affected)
    : h_(summary), options_(options), affected_(affected), devices_(summary.devices.size()) {}

std::string DiskCheck::describe(const InFlight& op) const {
  return std::string(to_string(op.op)) + " lba " + std::to_string(op.lba) + " x" + std::to_string(op.blocks) +
         (op.op == DiskOp::write ? " gen " + std::to_string(op.gen) : std::string());
}

std::optional<Completion> DiskCheck::add(const Event& e, std::span<const BlockSeen> seen) {
  if (e.device >= devices_.size()) devices_.resize(e.device + 1);
  Device& d = devices_[e.device];
  switch (e.kind) {
    case EventKind::disk_invoke: invoke(e, d); return std::nullopt;
    case EventKind::disk_retried: ++totals.retried; return std::nullopt;
    case EventKind::disk_ok:
    case EventKind::disk_fail: return complete(e, d, seen);
    default: return std::nullopt;
  }
}

void DiskCheck::invoke(const Event& e, Device& d) {
  ++totals.issued;
  const std::uint64_t id = e.invoke.op_id;
  if (!d.ops.insert(id)) {
    duplicated.add(e.at, [&] {
      const InFlight op{e.at, e.invoke.lba, e.invoke.gen, e.invoke.blocks, e.invoke.op};
      return Offence{h_.device_name(e.device), id, e.at, "op id issued twice (" + describe(op) + " at " + seconds(e.at) + ")"};
    });
    return;
  }
  d.in_flight.emplace(id, InFlight{e.at, e.invoke.lba, e.invoke.gen, e.invoke.blocks, e.invoke.op});
  if (e.invoke.op == DiskOp::write) {
    d.writing.emplace(e.invoke.gen, id);
    d.gens.insert(e.invoke.gen);
  } else {
    d.reads_from.insert(e.at);
  }
}

std::optional<Completion> DiskCheck::complete(const Event& e, Device& d, std::span<const BlockSeen> seen) {
  const bool ok = e.kind == EventKind::disk_ok;
  const std::uint64_t id = ok ? e.ok.op_id : e.fail.op_id;
  if (!ok) io_error(e, d);
  const auto it = d.in_flight.find(id);
  if (it == d.in_flight.end()) {
    const bool again = d.ops.contains(id);
    duplicated.add(e.at, [&] {
      return Offence{h_.device_name(e.device), id, e.at,
                     again ? "op " + std::to_string(id) + " completed again at " + seconds(e.at) +
                                 " (it had completed before)"
                           : "op completed at " + seconds(e.at) + " was never issued"};
    });
    return std::nullopt;
  }
  const InFlight op = it->second;
  d.in_flight.erase(it);
  ++totals.completed;
  if (!ok) ++totals.failed;

  if (op.op == DiskOp::read) {
    if (const auto r = d.reads_from.find(op.invoked_at); r != d.reads_from.end()) d.reads_from.erase(r);
    if (ok && !seen.empty()) judge_read(e, d, op, seen);
  } else {
    d.writing.erase(op.gen);
    // Reads in flight began no earlier than this: older writes they cannot need are dropped.
    const Nanos horizon = d.reads_from.empty() ? e.at : std::min(e.at, *d.reads_from.begin());
    // Sectors that had one list get one new list: computed once, shared.
    std::shared_ptr<const Writes> was, now;
    for (std::uint32_t b = 0; b < op.blocks; ++b) {
      Sector& sector = d.sectors.at(op.lba + b);
      if (b == 0 || sector.writes != was) {
        was = sector.writes;
        auto next = std::make_shared<Writes>(was ? *was : Writes());
        next->push_back(Write{op.gen, id, op.invoked_at, e.at, ok});
        prune(*next, horizon);
        now = std::move(next);
      }
      sector.writes = now;
    }
  }
  if (ok) latency.add(static_cast<double>(e.at - op.invoked_at) / 1e3);
  return Completion{e.device, id, e.at, e.at - op.invoked_at, ok};
}

const DiskCheck::Write* DiskCheck::must_see(const Writes& writes, Nanos t) {
  const Write* latest = nullptr;
  for (const Write& w : writes)
    if (w.acked && w.completed_at < t && (!latest || w.invoked_at > latest->invoked_at)) latest = &w;
  return latest;
}

void DiskCheck::prune(Writes& writes, Nanos horizon) {
  // Every read from here on began at or after `horizon`, so must see at least
  // `s`, the latest-invoked write acknowledged before it. A write that
  // completed before `s` was invoked is stale to all of them: seeing it is a
  // lost write however it is looked up, so it need not be kept.
  const Write* s = must_see(writes, horizon);
  if (s == nullptr) return;
  const Nanos bar = s->invoked_at;
  const std::uint64_t keep = s->gen;
  std::erase_if(writes, [&](const Write& w) { return w.gen != keep && w.completed_at < bar; });
}

void DiskCheck::judge_read(const Event& e, Device& d, const InFlight& read, std::span<const BlockSeen> seen) {
  const std::string& name = h_.device_name(e.device);
  const std::uint64_t tag = device_tag(name);
  const bool final = options_.final_read && h_.end != 0 && read.invoked_at >= h_.end;

  for (std::uint32_t i = 0; i < seen.size(); ++i) {
    const std::uint64_t lba = read.lba + i;
    const BlockSeen& b = seen[i];
    Sector* sector = i < read.blocks ? d.sectors.find(lba) : nullptr;
    const Writes* writes = sector && sector->writes ? sector->writes.get() : nullptr;
    if (!writes) sector = nullptr;
    // The final read's verdict on a written sector: good unless bad or stale below.
    if (final && sector && sector->final == 0) sector->final = 1;
    std::string bad;
    Nanos written_done = kNever;  // when the write it saw completed (never: still in flight)
    bool forgotten = false;       // a write this block no longer keeps: superseded long ago
    if (i >= read.blocks) {
      bad = "holds more blocks than it read";
    } else if (!b.checksum_ok) {
      bad = "checksum bad";
    } else if (b.gen != 0) {
      if (b.lba != lba) {
        bad = "holds lba " + std::to_string(b.lba) + " gen " + std::to_string(b.gen);
      } else if (b.device_tag != tag) {
        bad = "was written by another device (gen " + std::to_string(b.gen) + ")";
      } else if (!d.gens.contains(b.gen)) {
        bad = "holds gen " + std::to_string(b.gen) + ", not written to this device before the read completed";
      } else if (const auto w = d.writing.find(b.gen); w != d.writing.end()) {
        const InFlight& wop = d.in_flight.at(w->second);
        if (lba < wop.lba || lba >= wop.lba + wop.blocks)
          bad = "holds gen " + std::to_string(b.gen) + ", whose write did not cover it";
      } else if (const auto k = writes ? std::find_if(writes->begin(), writes->end(),
                                                      [&](const Write& x) { return x.gen == b.gen; })
                                       : Writes::const_iterator();
                 writes && k != writes->end()) {
        written_done = k->completed_at;
      } else {
        forgotten = true;
      }
    }
    const Write* latest = writes ? must_see(*writes, read.invoked_at) : nullptr;
    // A generation this block never kept, and nothing it must see instead:
    // that write never covered it.
    if (forgotten && latest == nullptr) bad = "holds gen " + std::to_string(b.gen) + ", whose write did not cover it";
    if (!bad.empty()) {
      if (final && sector) sector->final = 2;
      ++totals.verify_errors;
      verify.add(e.at, [&] {
        return Offence{name, e.ok.op_id, e.at,
                       "read op " + std::to_string(e.ok.op_id) + " (" + describe(read) + ") completed at " +
                           seconds(e.at) + ": lba " + std::to_string(lba) + " " + bad};
      });
      continue;
    }
    // Stale: an acknowledged write that began after the seen one ended (or
    // any, if it saw never-written zeros) finished before this read began.
    if (latest == nullptr || (b.gen != 0 && !forgotten && latest->invoked_at <= written_done)) continue;
    if (final) sector->final = 2;
    if (!d.lost_writes.insert(latest->op_id).second) continue;
    ++totals.lost_writes;
    lost.add(e.at, [&] {
      return Offence{name, latest->op_id, e.at,
                     "acknowledged write op " + std::to_string(latest->op_id) + " (lba " + std::to_string(lba) +
                         " gen " + std::to_string(latest->gen) + ", acked at " + seconds(latest->completed_at) +
                         ") is lost: read op " + std::to_string(e.ok.op_id) + " invoked at " +
                         seconds(read.invoked_at) + " saw gen " + std::to_string(b.gen)};
    });
  }
}

// A failed op outside every fault window that may disturb its device.
void DiskCheck::io_error(const Event& e, const Device& d) {
  for (std::size_t f = 0; f < h_.faults.size(); ++f) {
    const FaultWindow& w = h_.faults[f];
    const Nanos end = w.end != 0 ? w.end : kNever - options_.disk_grace;
    if (disturbs(affected_, f, e.device) && e.at >= w.start - options_.net_in_flight && e.at <= end + options_.disk_grace)
      return;
  }
  ++totals.io_errors;
  const auto op = d.in_flight.find(e.fail.op_id);
  const std::string what = op != d.in_flight.end()
                               ? describe(op->second) + " invoked at " + seconds(op->second.invoked_at)
                               : std::string(d.ops.contains(e.fail.op_id) ? "completed before" : "never issued");
  const std::string& reason = e.fail.reason < h_.texts.size() ? h_.texts[e.fail.reason] : std::string();
  const std::string detail = "op " + std::to_string(e.fail.op_id) + " (" + what + ") failed at " + seconds(e.at) +
                             " outside any fault window: " + reason;
  io_errors.add(e.at, [&] { return Offence{h_.device_name(e.device), e.fail.op_id, e.at, detail}; });
  auto& first = io_error_firsts_[e.device];
  if (++devices_[e.device].io_errors == 1) first = Violation{"io_error", h_.device_name(e.device), e.at, detail};
}

void DiskCheck::finish() {
  std::unordered_set<std::string_view> destroyed;
  for (const FaultWindow& w : h_.faults)
    if (w.kind == "destroy") destroyed.insert(w.target);
  const bool final_read_checked = options_.final_read && h_.end != 0;
  totals.final_read.checked = final_read_checked;

  for (std::size_t dev = 0; dev < devices_.size(); ++dev) {
    const Device& d = devices_[dev];
    const std::string& name = h_.device_name(static_cast<DeviceId>(dev));
    // Lost ops: invoked, never completed.
    for (const auto& [id, op] : d.in_flight) {
      ++totals.lost_ops;
      lost.add(op.invoked_at, [&, id = id, &op = op] {
        return Offence{name, id, op.invoked_at, describe(op) + " invoked at " + seconds(op.invoked_at) + " never completed"};
      });
    }
    // The final read: every block with an acknowledged write read back after
    // the drill's end, holding its latest write (devices destroyed by a step aside).
    if (!final_read_checked || destroyed.contains(name)) continue;
    FinalRead& f = totals.final_read;
    d.sectors.for_each([&](std::uint64_t lba, const Sector& sector) {
      const Write* latest = sector.writes ? must_see(*sector.writes, kNever) : nullptr;
      if (latest == nullptr) return;  // no acknowledged write
      ++f.blocks;
      if (sector.final != 0) {
        ++(sector.final == 1 ? f.ok : f.bad);  // a bad one is counted in verify_errors or lost_io already
        return;
      }
      ++f.bad;
      final_read.add(latest->completed_at, [&] {
        return Offence{name, latest->op_id, latest->completed_at,
                       "lba " + std::to_string(lba) + " (write op " + std::to_string(latest->op_id) + " gen " +
                           std::to_string(latest->gen) + ", acked at " + seconds(latest->completed_at) +
                           ") was not read back after the drill"};
      });
    });
  }
  totals.lost = totals.lost_ops + totals.lost_writes;
  totals.duplicated = duplicated.count;
  for (auto& [dev, v] : io_error_firsts_) {
    const std::uint64_t count = devices_[dev].io_errors;
    if (count > 1) v.detail += " (and " + std::to_string(count - 1) + " more on this device)";
    io_error_violations.push_back(v);
  }
  if (latency.count() != 0)
    totals.latency_us = LatencyUs{latency.quantile(0.50), latency.quantile(0.99), latency.max()};
}

}  // namespace visorlab::drill::checks
