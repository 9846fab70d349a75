// An eventfd that wakes a thread blocked in poll(): another thread calls
// wake(); the sleeper has fd() in its poll set and calls drain() when it
// fired. Wake-ups coalesce — what matters is that one came.
#pragma once

namespace visorlab::net {

class WakeFd {
 public:
  WakeFd();  // throws std::system_error if the kernel gives no eventfd
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;

  int fd() const { return fd_; }
  void wake() noexcept;   // from any thread, async-signal-safe
  void drain() noexcept;  // the sleeper: consume every wake-up so far

 private:
  int fd_ = -1;
};

}  // namespace visorlab::net
