#include "drill/checks.hpp"

#include <algorithm>

namespace visorlab::drill::checks {
namespace {

// The longest time without a successful completion on `d` around [from, to]:
// from the last completion at or before `from` to the first after `to`.
Nanos stall_on(const DiskDevice& d, Nanos from, Nanos to, Nanos drill_end) {
  const auto& t = d.ok_times;
  auto it = std::upper_bound(t.begin(), t.end(), from);
  // A device that had completed nothing before the fault (created later, or
  // not started yet) did not stall because of it.
  if (it == t.begin()) return 0;
  Nanos previous = *std::prev(it);
  Nanos longest = 0;
  for (; it != t.end() && *it <= to; ++it) {
    longest = std::max(longest, *it - previous);
    previous = *it;
  }
  if (it != t.end()) {
    longest = std::max(longest, *it - previous);
  } else if (d.last_invoke > previous || t.empty()) {
    longest = std::max(longest, drill_end - previous);  // I/O issued and never completing again
  }
  return longest;
}

}  // namespace

FaultCheck check_faults(const History& h, const DiskCheck& disk) {
  FaultCheck c;
  const Nanos drill_end = h.end_time();
  const auto affected = affected_ids(h);
  std::set<std::size_t> steps;

  for (std::size_t i = 0; i < h.faults.size(); ++i) {
    const FaultWindow& w = h.faults[i];
    steps.insert(w.step);
    FaultResult r;
    r.step = w.step;
    r.kind = w.kind;
    r.target = w.target;
    r.start = w.start;
    r.end = w.end != 0 ? w.end : drill_end;

    // Several services may recover for one step (kill_agent): a phase ends
    // when the last of them is through it, and the step recovered if all did.
    RecoveryPhases phases;
    for (const auto& p : h.recoveries) {
      if (p.step != w.step) continue;
      phases.detect = std::max(phases.detect, p.detect);
      phases.pause = std::max(phases.pause, p.pause);
      phases.restart = std::max(phases.restart, p.restart);
      phases.resume = std::max(phases.resume, p.resume);
      r.recovered = r.recovered && p.ok;
      r.has_recovery = true;
      if (!p.ok) {
        c.failed.add(w.start, [&] {
          return Offence{w.target, w.step, w.start,
                         "step " + std::to_string(w.step) + " " + w.kind + " " + w.target + " at " + seconds(w.start) +
                             " did not recover" + (p.error.empty() ? "" : ": " + p.error)};
        });
      }
    }
    Nanos last = w.start;  // the end of the latest phase that applies
    const auto phase = [&](Nanos at, Nanos& phase_at, double& ms) {
      phase_at = at;
      if (at == 0) return;
      ms = to_ms(at - last);
      last = at;
    };
    phase(phases.detect, r.detect_at, r.detect_ms);
    phase(phases.pause, r.pause_at, r.pause_ms);
    phase(phases.restart, r.restart_at, r.restart_ms);
    phase(phases.resume, r.resume_at, r.resume_ms);
    const Nanos recovered_at = r.resume_at != 0 ? r.resume_at : (last != w.start ? last : (w.end != 0 ? w.end : w.start));
    const Nanos origin = w.held && w.end != 0 ? w.end : w.start;
    r.total_ms = to_ms(std::max<Nanos>(0, recovered_at - origin));

    const Nanos around_to = std::max({recovered_at, w.end, w.start});
    Nanos stall = 0;
    for (std::size_t dev = 0; dev < disk.devices.size(); ++dev) {
      if (!disk.devices[dev].active) continue;
      if (affected[i] && !affected[i]->count(static_cast<DeviceId>(dev))) continue;
      stall = std::max(stall, stall_on(disk.devices[dev], w.start, around_to, drill_end));
    }
    r.stall_ms = to_ms(stall);
    c.faults.push_back(std::move(r));
  }

  for (const auto& p : h.recoveries) {
    if (steps.count(p.step)) continue;
    const Nanos at = p.detect ? p.detect : p.pause ? p.pause : p.restart ? p.restart : p.resume;
    c.history.add(at, [&] {
      return Offence{"", p.step, at, "recovery phases recorded for step " + std::to_string(p.step) +
                                         " but no fault window: the nemesis did not record it"};
    });
  }
  return c;
}

}  // namespace visorlab::drill::checks
