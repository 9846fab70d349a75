// The fault schedule of a drill (Jepsen's nemesis): it runs `drill.steps` at
// their times on the cluster, proves each fault took effect, always reverts
// what it injected, and records fault windows and recovery phases. It knows
// the cluster's operations, not the workload's or the checker's insides: the
// one thing it asks the workload is to let go of a device it destroys.
#pragma once

#include <atomic>
#include <functional>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>
#include <string>

#include "drill/recorder.hpp"
#include "drill/workloads.hpp"
#include "orchestrator/cluster.hpp"
#include "topology/model.hpp"

namespace visorlab::drill {

class Nemesis {
 public:
  Nemesis(orchestrator::Cluster& cluster, Workloads& workloads, const topology::Topology& topology,
          DrillClock clock);

  // Runs every step at its time, each on its own (faults may overlap; a
  // step waits only for the one before it on the same target; blocking); returns when the last one is reverted or `stop` is set — a
  // fault held then (`for`, `restart_after`) is reverted at once, not at
  // the end of its hold. Errors of a step are recorded as violations
  // ("nemesis"), a step started more than 50 ms after its time too
  // ("late_step"), and the drill goes on.
  void run(const std::atomic<bool>& stop);

  // Thread-safe snapshots for the progress line.
  std::string current_step() const;
  unsigned paused_devices() const { return paused_.load(); }

  History history() const {
    std::lock_guard lock(mu_);
    return recorder_.history();
  }

 private:
  void run_step(const topology::Step& s, std::optional<std::size_t> after);
  Nanos step(const topology::Step& s);  // when its fault began
  // Until `until`, or until the drill is stopped.
  void wait_until(std::chrono::steady_clock::time_point until) const;
  // Holds a fault for `d`, or until the drill is stopped.
  void hold(topology::Duration d);
  void record_recovery(const topology::Step& s, Nanos start, const actors::RecoveryTimes& t);
  bool wait_for_event(const std::string& kind, const std::string& target, std::uint64_t after,
                      std::chrono::milliseconds limit);
  Nanos ns(std::int64_t steady_ns) const;

  orchestrator::Cluster& cluster_;
  Workloads& workloads_;
  const topology::Topology& topology_;
  DrillClock clock_;
  mutable std::mutex mu_;  // the steps' threads share the recorder, current_ and done_
  std::condition_variable done_changed_;
  std::vector<bool> done_;  // by step index
  std::chrono::steady_clock::time_point run_started_;
  Recorder recorder_;
  std::string current_;
  std::atomic<unsigned> paused_{0};
  const std::atomic<bool>* stop_ = nullptr;  // run()'s
};

}  // namespace visorlab::drill
