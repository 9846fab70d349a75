#include "drill/checks.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_set>

namespace visorlab::drill::checks {
namespace {

std::string describe_invoke(const Event& e) {
  return std::string(to_string(e.invoke.op)) + " lba " + std::to_string(e.invoke.lba) + " x" +
         std::to_string(e.invoke.blocks) +
         (e.invoke.op == DiskOp::write ? " gen " + std::to_string(e.invoke.gen) : std::string());
}

// The acknowledged write a read invoked at `t` must not be older than: of the
// writes covering `lba` acknowledged before `t`, the one invoked last.
const AckedBlock* must_see(const DiskDevice& d, std::uint64_t lba, Nanos t) {
  const auto first = std::lower_bound(d.acked.begin(), d.acked.end(), lba,
                                      [](const AckedBlock& b, std::uint64_t l) { return b.lba < l; });
  const auto past = std::lower_bound(first, d.acked.end(), std::make_pair(lba, t),
                                     [](const AckedBlock& b, const std::pair<std::uint64_t, Nanos>& k) {
                                       return b.lba < k.first || (b.lba == k.first && b.acked_at < k.second);
                                     });
  if (past == first) return nullptr;
  return &d.acked[std::prev(past)->latest];
}


// Failed ops outside every fault window that may disturb their device.
void check_io_errors(const History& h, const CheckOptions& options, DiskCheck& c) {
  const auto affected = affected_ids(h);
  std::map<DeviceId, std::pair<std::uint64_t, Violation>> per_device;  // failures, the first
  const Nanos end = h.end_time();
  for (const Event& e : h.events) {
    if (e.kind != EventKind::disk_fail) continue;
    bool in_fault = false;
    for (std::size_t i = 0; i < h.faults.size() && !in_fault; ++i) {
      const FaultWindow& w = h.faults[i];
      const bool disturbs = !affected[i] || affected[i]->count(e.device);
      in_fault = disturbs && e.at >= w.start - options.net_in_flight &&
                 e.at <= (w.end != 0 ? w.end : end) + options.disk_grace;
    }
    if (in_fault) continue;
    ++c.totals.io_errors;
    const DiskDevice& d = c.devices[e.device];
    const auto op = d.ops.find(e.fail.op_id);
    const std::string what = op != d.ops.end() && op->second.invoke != kNone
                                 ? describe_invoke(h.events[op->second.invoke]) + " invoked at " +
                                       seconds(op->second.invoked_at)
                                 : std::string("never issued");
    const std::string& reason = e.fail.reason < h.texts.size() ? h.texts[e.fail.reason] : std::string();
    const std::string detail = "op " + std::to_string(e.fail.op_id) + " (" + what + ") failed at " + seconds(e.at) +
                               " outside any fault window: " + reason;
    c.io_errors.add(e.at, [&] { return Offence{h.device_name(e.device), e.fail.op_id, e.at, detail}; });
    auto& [count, first] = per_device[e.device];
    if (count++ == 0) first = Violation{"io_error", h.device_name(e.device), e.at, detail};
  }
  for (auto& [dev, entry] : per_device) {
    auto& [count, v] = entry;
    if (count > 1) v.detail += " (and " + std::to_string(count - 1) + " more on this device)";
    c.io_error_violations.push_back(std::move(v));
  }
}

// Every block with an acknowledged write was read back after the drill's end
// and held its latest generation (c.final_seen, from the reads judged above).
void check_final_read(const History& h, DiskCheck& c) {
  FinalRead& f = c.totals.final_read;
  f.checked = true;
  std::unordered_set<std::string_view> destroyed;
  for (const FaultWindow& w : h.faults)
    if (w.kind == "destroy") destroyed.insert(w.target);
  for (std::size_t dev = 0; dev < c.devices.size(); ++dev) {
    const DiskDevice& d = c.devices[dev];
    const std::string& name = h.device_name(static_cast<DeviceId>(dev));
    if (destroyed.contains(name)) continue;
    const auto& seen = c.final_seen[dev];
    for (std::size_t i = 0, next = 0; i < d.acked.size(); i = next) {
      for (next = i + 1; next < d.acked.size() && d.acked[next].lba == d.acked[i].lba;) ++next;  // one per block
      ++f.blocks;
      const auto it = seen.find(d.acked[i].lba);
      if (it != seen.end()) {
        ++(it->second ? f.ok : f.bad);  // a bad one is counted in verify_errors or lost_io already
        continue;
      }
      ++f.bad;
      const AckedBlock& latest = d.acked[d.acked[next - 1].latest];
      c.final_read.add(latest.acked_at, [&] {
        return Offence{name, latest.op_id, latest.acked_at,
                       "lba " + std::to_string(latest.lba) + " (write op " + std::to_string(latest.op_id) + " gen " +
                           std::to_string(latest.gen) + ", acked at " + seconds(latest.acked_at) +
                           ") was not read back after the drill"};
      });
    }
  }
}

}  // namespace

DiskCheck check_disk(const History& h, const CheckOptions& options) {
  DiskCheck c;
  c.devices.resize(h.devices.size());
  c.final_seen.resize(h.devices.size());
  const auto& ev = h.events;

  for (std::size_t i = 0; i < ev.size(); ++i) {
    const Event& e = ev[i];
    DiskDevice& d = c.devices.at(e.device);
    switch (e.kind) {
      case EventKind::disk_invoke: {
        d.active = true;
        ++c.totals.issued;
        d.last_invoke = std::max(d.last_invoke, e.at);
        OpState& op = d.ops[e.invoke.op_id];
        if (op.invoke != kNone) {
          c.duplicated.add(e.at, [&] {
            return Offence{h.device_name(e.device), e.invoke.op_id, e.at,
                           "op id issued twice (" + describe_invoke(e) + " at " + seconds(e.at) + ")"};
          });
          break;
        }
        op.invoke = i;
        op.invoked_at = e.at;
        if (e.invoke.op == DiskOp::write) d.write_by_gen.emplace(e.invoke.gen, e.invoke.op_id);
        break;
      }
      case EventKind::disk_ok:
      case EventKind::disk_fail: {
        d.active = true;
        const bool ok = e.kind == EventKind::disk_ok;
        const std::uint64_t id = ok ? e.ok.op_id : e.fail.op_id;
        const auto it = d.ops.find(id);
        if (it == d.ops.end() || it->second.invoke == kNone) {
          c.duplicated.add(e.at, [&] {
            return Offence{h.device_name(e.device), id, e.at, "op completed at " + seconds(e.at) + " was never issued"};
          });
          break;
        }
        OpState& op = it->second;
        if (++op.completions > 1) {
          c.duplicated.add(e.at, [&] {
            return Offence{h.device_name(e.device), id, e.at,
                           describe_invoke(ev[op.invoke]) + " invoked at " + seconds(op.invoked_at) +
                               " completed again at " + seconds(e.at) + " (first at " + seconds(op.completed_at) + ")"};
          });
          break;
        }
        op.completed_at = e.at;
        ++c.totals.completed;
        if (ok) {
          op.ok_at = e.at;
          d.ok_times.push_back(e.at);
        } else {
          ++c.totals.failed;
        }
        break;
      }
      case EventKind::disk_retried:
        d.active = true;
        ++c.totals.retried;
        break;
      default:
        break;
    }
  }

  // Lost ops, and the acknowledged blocks reads are judged against.
  std::vector<double> latencies;
  for (std::size_t dev = 0; dev < c.devices.size(); ++dev) {
    DiskDevice& d = c.devices[dev];
    for (const auto& [id, op] : d.ops) {
      if (op.invoke == kNone) continue;
      const Event& inv = ev[op.invoke];
      if (op.completions == 0) {
        ++c.totals.lost_ops;
        c.lost.add(op.invoked_at, [&, id = id, &op = op] {
          return Offence{h.device_name(inv.device), id, op.invoked_at,
                         describe_invoke(inv) + " invoked at " + seconds(op.invoked_at) + " never completed"};
        });
        continue;
      }
      if (op.ok_at != kNever) latencies.push_back(static_cast<double>(op.ok_at - op.invoked_at) / 1e3);
      if (inv.invoke.op == DiskOp::write && op.ok_at != kNever) {
        for (std::uint32_t b = 0; b < inv.invoke.blocks; ++b) {
          d.acked.push_back(AckedBlock{inv.invoke.lba + b, op.ok_at, op.invoked_at, id, inv.invoke.gen, 0});
        }
      }
    }
    std::sort(d.acked.begin(), d.acked.end(), [](const AckedBlock& a, const AckedBlock& b) {
      return a.lba != b.lba ? a.lba < b.lba : a.acked_at < b.acked_at;
    });
    for (std::size_t i = 0; i < d.acked.size(); ++i) {
      const bool run_start = i == 0 || d.acked[i - 1].lba != d.acked[i].lba;
      const std::size_t prev = run_start ? i : d.acked[i - 1].latest;
      d.acked[i].latest = run_start || d.acked[i].invoked_at > d.acked[prev].invoked_at ? i : prev;
    }
  }

  // What each verified read saw.
  for (const Event& e : ev) {
    if (e.kind != EventKind::disk_ok || e.ok.block_count == 0) continue;
    DiskDevice& d = c.devices[e.device];
    const auto it = d.ops.find(e.ok.op_id);
    if (it == d.ops.end() || it->second.invoke == kNone || it->second.completed_at != e.at) continue;
    const OpState& read = it->second;
    const Event& inv = ev[read.invoke];
    const std::string& name = h.device_name(e.device);
    const std::uint64_t tag = device_tag(name);
    const auto seen = h.seen(e);
    const bool final = options.final_read && h.end != 0 && read.invoked_at >= h.end;

    for (std::uint32_t i = 0; i < seen.size(); ++i) {
      const std::uint64_t lba = inv.invoke.lba + i;
      const BlockSeen& b = seen[i];
      // The final read's verdict on this block: good unless bad or stale below.
      bool* final_ok = final && i < inv.invoke.blocks ? &c.final_seen[e.device].try_emplace(lba, true).first->second : nullptr;
      std::string bad;
      Nanos written_done = kNever;  // when the write it saw completed
      if (i >= inv.invoke.blocks) {
        bad = "holds more blocks than it read";
      } else if (!b.checksum_ok) {
        bad = "checksum bad";
      } else if (b.gen != 0) {
        const auto w = d.write_by_gen.find(b.gen);
        if (b.lba != lba) {
          bad = "holds lba " + std::to_string(b.lba) + " gen " + std::to_string(b.gen);
        } else if (b.device_tag != tag) {
          bad = "was written by another device (gen " + std::to_string(b.gen) + ")";
        } else if (w == d.write_by_gen.end()) {
          bad = "holds gen " + std::to_string(b.gen) + ", never written to this device";
        } else {
          const OpState& wop = d.ops.at(w->second);
          const Event& winv = ev[wop.invoke];
          if (lba < winv.invoke.lba || lba >= winv.invoke.lba + winv.invoke.blocks) {
            bad = "holds gen " + std::to_string(b.gen) + ", whose write did not cover it";
          } else if (wop.invoked_at > read.completed_at) {
            bad = "holds gen " + std::to_string(b.gen) + ", written only after the read completed";
          }
          written_done = wop.completed_at;
        }
      }
      if (!bad.empty()) {
        if (final_ok) *final_ok = false;
        ++c.totals.verify_errors;
        c.verify.add(e.at, [&] {
          return Offence{name, e.ok.op_id, e.at,
                         "read op " + std::to_string(e.ok.op_id) + " (" + describe_invoke(inv) + ") completed at " +
                             seconds(e.at) + ": lba " + std::to_string(lba) + " " + bad};
        });
        continue;
      }
      // Stale: an acknowledged write that began after the seen one ended (or
      // any, if it saw never-written zeros) finished before this read began.
      const AckedBlock* latest = must_see(d, lba, read.invoked_at);
      if (latest == nullptr || (b.gen != 0 && latest->invoked_at <= written_done)) continue;
      if (final_ok) *final_ok = false;
      if (!d.lost_writes.insert(latest->op_id).second) continue;
      ++c.totals.lost_writes;
      c.lost.add(e.at, [&] {
        return Offence{name, latest->op_id, e.at,
                       "acknowledged write op " + std::to_string(latest->op_id) + " (lba " + std::to_string(lba) +
                           " gen " + std::to_string(latest->gen) + ", acked at " + seconds(latest->acked_at) +
                           ") is lost: read op " + std::to_string(e.ok.op_id) + " invoked at " +
                           seconds(read.invoked_at) + " saw gen " + std::to_string(b.gen)};
      });
    }
  }
  c.totals.lost = c.totals.lost_ops + c.totals.lost_writes;
  c.totals.duplicated = c.duplicated.count;
  check_io_errors(h, options, c);
  if (options.final_read && h.end != 0) check_final_read(h, c);

  std::sort(latencies.begin(), latencies.end());
  const auto rank = [&](double q) {
    const auto n = latencies.size();
    const auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(n)));
    return latencies[std::min(n - 1, k == 0 ? 0 : k - 1)];
  };
  if (!latencies.empty()) c.totals.latency_us = LatencyUs{rank(0.50), rank(0.99), latencies.back()};
  return c;
}

}  // namespace visorlab::drill::checks
