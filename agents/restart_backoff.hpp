// How long a supervisor waits before starting a process again: at once the
// first time, then doubling while it keeps dying young, up to a cap; a
// process that lived long enough resets it (systemd's RestartSec with a
// burst limit, an Erlang supervisor's intensity). The agent uses it for its
// partition host, a local cluster for its agents.
#pragma once

#include <algorithm>
#include <chrono>

namespace visorlab::agents {

class RestartBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  using ms = std::chrono::milliseconds;

  explicit RestartBackoff(ms first = ms(200), ms cap = ms(10000), ms healthy_after = ms(10000))
      : first_(first), cap_(cap), healthy_after_(healthy_after) {}

  void started(Clock::time_point now) { started_ = now; }

  // It died at `now`: how long to wait before starting it again.
  ms died(Clock::time_point now) {
    if (now - started_ >= healthy_after_) next_ = ms(0);  // it had settled: a fresh failure
    const ms wait = next_;
    next_ = next_ == ms(0) ? first_ : std::min(cap_, next_ * 2);
    return wait;
  }

 private:
  ms first_, cap_, healthy_after_;
  ms next_{0};
  Clock::time_point started_{};
};

}  // namespace visorlab::agents
