// The pause contract (spec §4): after pause() returns, a driver must not touch
// its channel until resume(). A revoked guard turns every access through the
// channel into a recorded violation and an -EPERM result, never a silent read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace visorlab::channel {

struct Violation {
  std::string operation;  // "insert", "remove", "read", "write", …
  int queue;              // queue index, or -1 for the data area/header
  std::uint64_t offset;   // byte offset touched (queue header offset for queue ops)
  std::chrono::steady_clock::time_point at;
};

class PauseGuard {
 public:
  using Sink = std::function<void(const Violation&)>;

  bool revoked() const noexcept { return revoked_.load(std::memory_order_acquire); }
  void revoke() noexcept { revoked_.store(true, std::memory_order_release); }
  void restore() noexcept { revoked_.store(false, std::memory_order_release); }

  // Set once, before the channel is used: called for every violation.
  void on_violation(Sink sink) { sink_ = std::move(sink); }

  std::uint64_t violations() const noexcept { return count_.load(std::memory_order_relaxed); }

  // Records an access made while revoked; returns -EPERM for the caller to pass on.
  int violation(const char* operation, int queue, std::uint64_t offset);

 private:
  std::atomic<bool> revoked_{false};
  std::atomic<std::uint64_t> count_{0};
  Sink sink_;
};

}  // namespace visorlab::channel
