#include "drill/checks.hpp"

#include <algorithm>

namespace visorlab::drill::checks {

FaultCheck::FaultCheck(const History& h, const Affected& affected) : h_(h), affected_(affected) {
  std::set<std::size_t> steps;
  for (const FaultWindow& w : h.faults) {
    steps.insert(w.step);
    FaultResult r;
    r.step = w.step;
    r.kind = w.kind;
    r.target = w.target;
    r.start = w.start;
    r.end = w.end;  // 0 (never lifted) becomes the drill's end in finish

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
        failed.add(w.start, [&] {
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
    around_to_.push_back(std::max({recovered_at, w.end, w.start}));
    faults.push_back(std::move(r));
  }

  for (const auto& p : h.recoveries) {
    if (steps.count(p.step)) continue;
    const Nanos at = p.detect ? p.detect : p.pause ? p.pause : p.restart ? p.restart : p.resume;
    history.add(at, [&] {
      return Offence{"", p.step, at, "recovery phases recorded for step " + std::to_string(p.step) +
                                         " but no fault window: the nemesis did not record it"};
    });
  }
}

void FaultCheck::invoked(DeviceId device, Nanos at) {
  Device& d = devices_[device];
  d.last_invoke = std::max(d.last_invoke, at);
}

void FaultCheck::completed_ok(DeviceId device, Nanos at) {
  Device& d = devices_[device];
  for (std::size_t f = 0; f < faults.size(); ++f) {
    if (at <= faults[f].start || !disturbs(affected_, f, device)) continue;
    Stall& s = d.stalls[f];
    if (s.done) continue;
    if (!s.started) {
      s.started = true;
      // A device that had completed nothing before the fault (created later,
      // or not started yet) did not stall because of it.
      if (!d.last_ok) {
        s.done = true;
        continue;
      }
      s.previous = *d.last_ok;
    }
    s.longest = std::max(s.longest, at - s.previous);
    s.previous = at;
    s.done = at > around_to_[f];
  }
  d.last_ok = at;
}

void FaultCheck::finish(Nanos drill_end) {
  for (std::size_t f = 0; f < faults.size(); ++f) {
    if (faults[f].end == 0) faults[f].end = drill_end;
    Nanos stall = 0;
    for (auto& [id, d] : devices_) {
      if (!d.last_ok || !disturbs(affected_, f, id)) continue;
      const auto it = d.stalls.find(f);
      Stall s = it != d.stalls.end() ? it->second : Stall{true, false, *d.last_ok, 0};
      // I/O issued and never completing again: stalled to the drill's end.
      if (!s.done && d.last_invoke > s.previous) s.longest = std::max(s.longest, drill_end - s.previous);
      stall = std::max(stall, s.longest);
    }
    faults[f].stall_ms = to_ms(stall);
  }
}

}  // namespace visorlab::drill::checks
