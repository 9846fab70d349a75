// A warning that repeats for as long as a condition lasts (a link retried
// every few milliseconds across a network cut) is logged the first time and
// then at most once a period, saying how many were left out: the log stays
// readable and a daemon's stdout never floods.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace visorlab::channel {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(std::chrono::milliseconds period = std::chrono::seconds(1)) : period_(period) {}

  // True when this occurrence is to be logged; `left_out` then holds how
  // many were not since the last one logged.
  bool allow(std::uint64_t& left_out) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (logged_ && now - last_ < period_) {
      ++left_out_;
      return false;
    }
    logged_ = true;
    last_ = now;
    left_out = left_out_;
    left_out_ = 0;
    return true;
  }

 private:
  std::mutex mu_;
  std::chrono::milliseconds period_;
  bool logged_ = false;
  Clock::time_point last_{};
  std::uint64_t left_out_ = 0;
};

}  // namespace visorlab::channel
