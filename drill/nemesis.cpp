#include "drill/nemesis.hpp"

#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

#include "drill/affected.hpp"

namespace visorlab::drill {

using namespace std::chrono;

Nemesis::Nemesis(orchestrator::Cluster& cluster, Workloads& workloads, const topology::Topology& topology,
                 DrillClock clock)
    : cluster_(cluster), workloads_(workloads), topology_(topology), clock_(clock), recorder_(64) {}

std::string Nemesis::current_step() const {
  std::lock_guard lock(mu_);
  return current_;
}

Nanos Nemesis::ns(std::int64_t steady_ns) const {
  return steady_ns == 0 ? 0 : steady_ns - clock_.start_ns();
}

// How late a step may start before the drill says so: its time is part of
// what the drill measures.
constexpr auto kLateBound = milliseconds(50);

void Nemesis::run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  // Each step on its own, at its own time: a step still holding its fault
  // does not delay the next, so faults overlap as the file says. The
  // cluster runs operations on different services side by side.
  std::vector<std::thread> steps;
  for (const auto& s : topology_.drill.steps) steps.emplace_back([this, &s] { run_step(s); });
  for (auto& t : steps) t.join();
}

void Nemesis::run_step(const topology::Step& s) {
  const auto due = clock_.start + s.at;
  wait_until(due);
  if (*stop_) return;
  const auto late = steady_clock::now() - due;
  {
    std::lock_guard lock(mu_);
    current_ = std::string(topology::to_string(s.kind)) + " " + s.target();
    if (late > kLateBound)
      recorder_.violation({"late_step", s.target(), clock_.now(),
                           "step " + std::to_string(s.index) + " " + std::string(topology::to_string(s.kind)) +
                               " started " + std::to_string(duration_cast<milliseconds>(late).count()) +
                               " ms after its time (bound " + std::to_string(kLateBound.count()) + " ms)"});
  }
  try {
    step(s);
  } catch (const std::exception& e) {
    spdlog::error("drill step {} ({} {}): {}", s.index, topology::to_string(s.kind), s.target(), e.what());
    std::lock_guard lock(mu_);
    recorder_.violation({"nemesis", s.target(), clock_.now(),
                         "step " + std::to_string(s.index) + " " + std::string(topology::to_string(s.kind)) +
                             " failed: " + e.what()});
  }
}

void Nemesis::wait_until(steady_clock::time_point until) const {
  while (!(stop_ && *stop_) && steady_clock::now() < until)
    std::this_thread::sleep_for(std::min(milliseconds(5), duration_cast<milliseconds>(until - steady_clock::now()) + milliseconds(1)));
}

void Nemesis::hold(topology::Duration d) { wait_until(steady_clock::now() + d); }

bool Nemesis::wait_for_event(const std::string& kind, const std::string& target, std::uint64_t after,
                             milliseconds limit) {
  const auto deadline = steady_clock::now() + limit;
  while (steady_clock::now() < deadline) {
    for (const auto& e : cluster_.events(after, milliseconds(20))) {
      after = e.index;
      if (e.kind == kind && e.target == target) return true;
    }
  }
  return false;
}

void Nemesis::record_recovery(const topology::Step& s, Nanos start, const actors::RecoveryTimes& t) {
  RecoveryPhases p;
  p.step = s.index;
  p.detect = ns(t.detect_ns);
  p.pause = ns(t.paused_ns);
  p.restart = ns(t.restarted_ns);
  p.resume = ns(t.resumed_ns);
  p.ok = t.ok;
  p.error = t.error;
  std::lock_guard lock(mu_);
  recorder_.recovery(p);
  (void)start;
}

void Nemesis::step(const topology::Step& s) {
  using K = topology::StepKind;
  FaultWindow w;
  w.step = s.index;
  w.kind = std::string(topology::to_string(s.kind));
  w.target = s.kind == topology::StepKind::partition ? s.targets.at(0) + "," + s.targets.at(1) : s.target();
  w.affected = affected_devices(topology_, s);
  w.start = clock_.now();
  const std::string what = w.kind + " " + w.target;

  switch (s.kind) {
    case K::recover: {
      const auto t = cluster_.recover_service(s.target());
      w.start = ns(t.start_ns);
      w.end = t.resumed_ns ? ns(t.resumed_ns) : clock_.now();
      record_recovery(s, w.start, t);
      if (!t.ok) throw std::runtime_error(t.error);
      break;
    }
    case K::crash: {
      const auto after = duration_cast<milliseconds>(s.restart_after.value_or(topology::Duration{0}));
      const auto t = cluster_.crash_service(s.target(), after);
      w.start = ns(t.start_ns);
      w.end = t.resumed_ns ? ns(t.resumed_ns) : clock_.now();
      record_recovery(s, w.start, t);
      // Proof the process really died: the keeper saw its connection drop.
      if (t.ok && t.detect_ns == 0) throw std::runtime_error("the crash was never detected");
      if (!t.ok) throw std::runtime_error(t.error);
      break;
    }
    case K::pause: {
      cluster_.pause_device(s.target());
      ++paused_;
      if (s.for_duration) {
        hold(*s.for_duration);
        cluster_.resume_device(s.target());
        --paused_;
        w.held = true;
        w.end = clock_.now();
      }
      break;
    }
    case K::resume:
      cluster_.resume_device(s.target());
      if (paused_ > 0) --paused_;
      w.end = clock_.now();
      break;
    case K::destroy:
      workloads_.quiesce(s.target());  // nothing in flight on it when it goes
      cluster_.destroy_device(s.target());
      w.end = clock_.now();
      break;
    case K::create:
      cluster_.create_device(s.target(), *s.created);
      w.end = clock_.now();
      break;
    case K::partition: {
      const auto hold = duration_cast<milliseconds>(s.for_duration.value_or(topology::Duration{0}));
      // The lease outlives the hold: if this orchestrator dies, the hosts heal
      // on their own shortly after the fault was due to end.
      cluster_.cut(s.targets.at(0), s.targets.at(1), hold + milliseconds(2000));
      this->hold(hold);
      cluster_.heal(s.targets.at(0), s.targets.at(1));
      w.held = true;
      w.end = clock_.now();
      break;
    }
    case K::lose_writes: {
      const auto window = duration_cast<milliseconds>(s.for_duration.value_or(topology::Duration{0}));
      cluster_.lose_writes(s.target(), s.every.value_or(1), window);
      hold(window);  // the partition ends it by itself
      w.held = true;
      w.end = clock_.now();
      break;
    }
    case K::kill_agent: {
      const auto before = cluster_.events(0, milliseconds(0));
      const std::uint64_t mark = before.empty() ? 0 : before.back().index;
      cluster_.kill_agent(s.target());
      // Proof: the orchestrator noticed the agent was gone.
      if (!wait_for_event("agent_lost", s.target(), mark, seconds(5)))
        throw std::runtime_error("the orchestrator did not notice agent " + s.target() + " was killed");
      hold(s.restart_after.value_or(topology::Duration{0}));
      cluster_.start_agent(s.target());
      if (!wait_for_event("agent_up", s.target(), mark, seconds(10)))
        throw std::runtime_error("agent " + s.target() + " did not come back");
      w.held = true;
      w.end = clock_.now();
      break;
    }
  }
  {
    std::lock_guard lock(mu_);
    recorder_.fault(w);
  }
  spdlog::info("drill step {} ({}) done", s.index, what);
}

}  // namespace visorlab::drill
