#include "drill/checker.hpp"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "drill/checks.hpp"

namespace visorlab::drill {
namespace checks {

std::string seconds(Nanos t) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3fs", static_cast<double>(t) / 1e9);
  return text;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

}  // namespace checks

using namespace checks;

namespace {

void fail(CheckResult& r, std::string what, std::uint64_t count, double limit, const std::optional<Offence>& first,
          std::string summary) {
  Failure f;
  f.what = std::move(what);
  f.count = count;
  f.limit = limit;
  if (first) {
    f.device = first->device;
    f.id = first->id;
    f.at = first->at;
    f.detail = summary + "; first: " + (first->device.empty() ? "" : first->device + " ") + first->detail;
  } else {
    f.detail = std::move(summary);
  }
  r.failures.push_back(std::move(f));
}

// Faults whose `field` exceeds `limit_ms`, the earliest first.
Tally faults_over(const std::vector<FaultResult>& faults, double limit_ms, double FaultResult::*field,
                  const char* what) {
  Tally t;
  for (const auto& f : faults) {
    if (f.*field <= limit_ms) continue;
    t.add(f.start, [&] {
      return Offence{f.target, f.step, f.start,
                     "step " + std::to_string(f.step) + " " + f.kind + " " + f.target + " at " + seconds(f.start) +
                         ": " + what + " " + number(f.*field) + " ms"};
    });
  }
  return t;
}

}  // namespace

std::string Failure::message() const { return what + ": " + detail; }

std::vector<Completion> disk_completions(const History& h) {
  std::vector<std::unordered_map<std::uint64_t, std::pair<Nanos, bool>>> pending(h.devices.size());
  std::vector<Completion> out;
  for (const Event& e : h.events) {
    auto& ops = pending.at(e.device);
    if (e.kind == EventKind::disk_invoke) {
      ops.emplace(e.invoke.op_id, std::make_pair(e.at, false));
    } else if (e.kind == EventKind::disk_ok || e.kind == EventKind::disk_fail) {
      const bool ok = e.kind == EventKind::disk_ok;
      const auto it = ops.find(ok ? e.ok.op_id : e.fail.op_id);
      if (it == ops.end() || it->second.second) continue;
      it->second.second = true;
      out.push_back(Completion{e.device, it->first, e.at, e.at - it->second.first, ok});
    }
  }
  return out;
}

CheckResult check(const History& history, const topology::Expect& expect, const CheckOptions& options) {
  CheckResult r;
  const Nanos end = history.end_time();
  r.duration_s = static_cast<double>(end) / 1e9;

  const DiskCheck disk = check_disk(history, options);
  const InputCheck input = check_input(history);
  const NetCheck net = check_net(history, options);
  const FaultCheck faults = check_faults(history, disk);
  r.disk = disk.totals;
  r.disk.iops = r.duration_s > 0 ? static_cast<double>(r.disk.completed) / r.duration_s : 0;
  r.net = net.totals;
  r.input = input.totals;
  r.faults = faults.faults;
  r.violations = history.violations;
  r.violations.insert(r.violations.end(), disk.io_error_violations.begin(), disk.io_error_violations.end());

  Tally violations;
  for (const auto& v : history.violations) {
    violations.add(v.at, [&] { return Offence{v.device, 0, v.at, v.kind + " at " + seconds(v.at) + ": " + v.detail}; });
  }

  // The file's limits by key: lost_io, max_recovery_ms and the others.
  std::vector<topology::Expectation> limits;
  if (expect.lost_io) limits.push_back({"lost_io", static_cast<double>(*expect.lost_io)});
  if (expect.max_recovery) limits.push_back({"max_recovery_ms", static_cast<double>(expect.max_recovery->count()) / 1e3});
  limits.insert(limits.end(), expect.others.begin(), expect.others.end());
  const auto limit_of = [&](std::string_view key) -> std::optional<double> {
    for (const auto& l : limits) {
      if (l.what == key) return l.limit;
    }
    return std::nullopt;
  };

  // Invariants: each offence counted, at most its limit — 0 unless the file's expect sets one.
  const std::vector<std::pair<std::string_view, const Tally*>> counted{
      {"lost_io", &disk.lost},
      {"duplicated_io", &disk.duplicated},
      {"verify_errors", &disk.verify},
      {"io_errors", &disk.io_errors},
      {"lost_input", &input.lost},
      {"out_of_order_input", &input.out_of_order},
      {"dropped_outside_faults", &net.outside},
      {"violations", &violations},
      {"net_duplicated", &net.duplicated},     // no key: always 0
      {"recovery_failed", &faults.failed},     // no key: always 0
      {"history", &faults.history},            // no key: always 0
      {"final_read", &disk.final_read},        // no key: always 0
  };
  for (const auto& [key, tally] : counted) {
    const double l = limit_of(key).value_or(0);
    if (static_cast<double>(tally->count) > l) {
      fail(r, std::string(key), tally->count, l, tally->first, std::to_string(tally->count) + " > limit " + number(l));
    }
  }

  // The file's expect block, in its order, each judged.
  // Creating and destroying a device are operations, not failures: their
  // durations are reported but are not recoveries.
  std::vector<FaultResult> recoveries;
  for (const auto& f : r.faults)
    if (f.kind != "destroy" && f.kind != "create") recoveries.push_back(f);
  double worst_total = 0, worst_stall = 0;
  for (const auto& f : recoveries) {
    worst_total = std::max(worst_total, f.total_ms);
    worst_stall = std::max(worst_stall, f.stall_ms);
  }
  for (const auto& [what, l] : limits) {
    const auto tally = std::find_if(counted.begin(), counted.end(), [&, &what = what](const auto& c) { return c.first == what; });
    if (tally != counted.end()) {
      const auto value = static_cast<double>(tally->second->count);
      r.expect.push_back(ExpectResult{what, l, value, value <= l});
    } else if (what == "max_recovery_ms" || what == "max_stall_ms") {
      const bool recovery = what == "max_recovery_ms";
      const double worst = recovery ? worst_total : worst_stall;
      r.expect.push_back(ExpectResult{what, l, worst, worst <= l});
      const Tally slow = recovery ? faults_over(recoveries, l, &FaultResult::total_ms, "recovery took")
                                  : faults_over(recoveries, l, &FaultResult::stall_ms, "disk I/O stalled");
      if (slow.count) fail(r, what, slow.count, l, slow.first, number(worst) + " ms > limit " + number(l) + " ms");
    } else if (what == "max_disk_p99_us") {
      const double p99 = r.disk.latency_us.p99;
      r.expect.push_back(ExpectResult{what, l, p99, p99 <= l});
      if (p99 > l) {
        Tally slow;
        for (const auto& c : disk_completions(history)) {
          if (!c.ok || static_cast<double>(c.latency) / 1e3 <= l) continue;
          slow.add(c.at, [&] {
            return Offence{history.device_name(c.device), c.op_id, c.at,
                           "op " + std::to_string(c.op_id) + " completed at " + seconds(c.at) + " after " +
                               number(static_cast<double>(c.latency) / 1e3) + " us"};
          });
        }
        fail(r, what, slow.count, l, slow.first, "p99 " + number(p99) + " us > limit " + number(l) + " us");
      }
    } else if (what == "min_disk_iops") {
      const bool ok = r.disk.iops >= l;
      r.expect.push_back(ExpectResult{what, l, r.disk.iops, ok});
      if (!ok) {
        fail(r, what, 0, l, std::nullopt,
             number(r.disk.iops) + " IOPS < limit " + number(l) + " (" + std::to_string(r.disk.completed) +
                 " ops completed in " + number(r.duration_s) + " s)");
      }
    } else {
      r.expect.push_back(ExpectResult{what, l, 0, false});
      fail(r, what, 0, l, std::nullopt, "unknown expectation");
    }
  }

  r.pass = r.failures.empty();
  return r;
}

}  // namespace visorlab::drill
