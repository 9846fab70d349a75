#include "stall_probe.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>

namespace visorlab::test {
namespace {

constexpr auto kPeriod = std::chrono::milliseconds(1);
constexpr auto kWorthNoting = std::chrono::milliseconds(5);

}  // namespace

StallProbe::StallProbe() {
  const long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
  for (int cpu = 0; cpu < cpus; ++cpu) threads_.emplace_back([this, cpu] { watch(cpu); });
}

StallProbe::~StallProbe() {
  stop_ = true;
  for (auto& t : threads_) t.join();
}

void StallProbe::watch(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_param p{};
  p.sched_priority = std::min(90, sched_get_priority_max(SCHED_FIFO));
  if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0 ||
      pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) != 0) {
    realtime_ = false;
    return;
  }
  auto due = Clock::now() + kPeriod;
  while (!stop_) {
    std::this_thread::sleep_until(due);
    const auto woke = Clock::now();
    if (woke - due > kWorthNoting) {
      std::lock_guard lock(mutex_);
      stalls_.push_back({due, woke});
    }
    due = woke + kPeriod;
  }
}

StallProbe::Clock::duration StallProbe::worst_between(Clock::time_point from, Clock::time_point to) const {
  if (!realtime_) return Clock::duration::zero();
  std::lock_guard lock(mutex_);
  Clock::duration worst{};
  for (const auto& s : stalls_)
    if (s.from <= to && from <= s.to) worst = std::max(worst, s.to - s.from);
  return worst;
}

}  // namespace visorlab::test
