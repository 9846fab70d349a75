// Test helper: tells a machine that stalled from a design that starved itself.
// One top-priority real-time thread per CPU, pinned, asks to wake every
// millisecond and records each time it woke late (cyclictest's method). A
// CPU the hypervisor took away (steal) or the kernel kept busy shows here;
// our own load cannot delay these threads, since they outrank every thread
// of ours. Without the privilege to run real-time the probe reports nothing
// (`realtime()` false) — a normal thread would be starved by that same load.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace visorlab::test {

class StallProbe {
 public:
  using Clock = std::chrono::steady_clock;

  StallProbe();
  ~StallProbe();
  StallProbe(const StallProbe&) = delete;
  StallProbe& operator=(const StallProbe&) = delete;

  // Every probe thread got real-time priority: what it saw can be trusted.
  bool realtime() const { return realtime_; }
  // The longest stall of any CPU overlapping [from, to] (zero if none, or
  // without real-time priority).
  Clock::duration worst_between(Clock::time_point from, Clock::time_point to) const;
  // The longest stall over the probe's whole life.
  Clock::duration worst() const { return worst_between(Clock::time_point::min(), Clock::time_point::max()); }

 private:
  struct Stall {
    Clock::time_point from, to;
  };
  void watch(int cpu);

  std::atomic<bool> stop_{false};
  std::atomic<bool> realtime_{true};
  mutable std::mutex mutex_;
  std::vector<Stall> stalls_;  // only those past a few milliseconds
  std::vector<std::thread> threads_;
};

}  // namespace visorlab::test
