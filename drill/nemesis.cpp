#include "drill/nemesis.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <optional>
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

// What a step works on: a step waits for the one before it on any of these
// (a device is created before it is paused, a pause ends before its
// resume), so on one target steps keep their file order; on different
// targets they overlap.
std::vector<std::string> targets_of(const topology::Step& s) {
  using K = topology::StepKind;
  switch (s.kind) {
    case K::recover:
    case K::crash:
    case K::lose_writes: return {"service " + s.target()};
    case K::pause:
    case K::resume: return {"device " + s.target()};
    case K::destroy: return {"device " + s.target(), "guest " + s.target().substr(0, s.target().find('/'))};
    case K::create: return {"device " + s.created->name, "guest " + s.target()};
    case K::partition: return {"hosts " + std::min(s.targets.at(0), s.targets.at(1)) + "," + std::max(s.targets.at(0), s.targets.at(1))};
    case K::kill_agent: return {"host " + s.target()};
  }
  return {};
}

void Nemesis::run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  run_started_ = steady_clock::now();
  const auto& steps = topology_.drill.steps;
  std::vector<std::optional<std::size_t>> after(steps.size());
  std::map<std::string, std::size_t> last;
  for (std::size_t i = 0; i < steps.size(); ++i)
    for (const auto& key : targets_of(steps[i])) {
      if (const auto it = last.find(key); it != last.end()) after[i] = std::max(after[i].value_or(0), it->second);
      last[key] = i;
    }
  done_.assign(steps.size(), false);
  // Each step on its own thread, at its own time: a step still holding its
  // fault does not delay the next, so faults overlap as the file says. The
  // cluster runs operations on different services side by side.
  std::vector<std::thread> threads;
  try {
    for (std::size_t i = 0; i < steps.size(); ++i) threads.emplace_back([this, &steps, i, a = after[i]] { run_step(steps[i], a); });
  } catch (...) {
    for (auto& t : threads) t.join();
    throw;
  }
  for (auto& t : threads) t.join();
}

void Nemesis::run_step(const topology::Step& s, std::optional<std::size_t> after) {
  wait_until(clock_.start + s.at);
  if (after) {  // the step before it on its target
    std::unique_lock lock(mu_);
    while (!*stop_ && !done_[*after]) done_changed_.wait_for(lock, milliseconds(5));
  }
  std::optional<Nanos> started;
  if (!*stop_) {
    {
      std::lock_guard lock(mu_);
      current_ = std::string(topology::to_string(s.kind)) + " " + s.target();
    }
    const Nanos woke = clock_.now();
    try {
      started = step(s);
    } catch (const std::exception& e) {
      spdlog::error("drill step {} ({} {}): {}", s.index, topology::to_string(s.kind), s.target(), e.what());
      std::lock_guard lock(mu_);
      recorder_.violation({"nemesis", s.target(), clock_.now(),
                           "step " + std::to_string(s.index) + " " + std::string(topology::to_string(s.kind)) +
                               " failed: " + e.what()});
    }
    // Late is measured from when the fault began (a recovery: when its keeper
    // began it), and from the schedule's start at the earliest: a drill's
    // setup is not the step's delay.
    const Nanos due = std::max<Nanos>(duration_cast<nanoseconds>(s.at).count(), ns(duration_cast<nanoseconds>(run_started_.time_since_epoch()).count()));
    const Nanos late = started.value_or(woke) - due;
    if (late > duration_cast<nanoseconds>(kLateBound).count()) {
      std::lock_guard lock(mu_);
      recorder_.violation({"late_step", s.target(), started.value_or(woke),
                           "step " + std::to_string(s.index) + " " + std::string(topology::to_string(s.kind)) +
                               " started " + std::to_string(late / 1'000'000) + " ms after its time (bound " +
                               std::to_string(kLateBound.count()) + " ms)"});
    }
  }
  std::lock_guard lock(mu_);
  done_[s.index] = true;
  done_changed_.notify_all();
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

Nanos Nemesis::step(const topology::Step& s) {
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
  return w.start;
}

}  // namespace visorlab::drill
