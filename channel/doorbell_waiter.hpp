// A thread that sleeps on doorbells for a consumer that must not block (an
// actor): sleep() hands it a DoorbellSleep and a bound; when a doorbell
// rings, the bound passes, or someone nudges or interrupts it, it drops the
// sleep and calls `woken` (on its own thread) — one call per sleep().
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "channel/doorbell.hpp"

namespace visorlab::channel {

class DoorbellWaiter {
 public:
  explicit DoorbellWaiter(std::function<void()> woken);
  ~DoorbellWaiter();  // interrupts the sleep, if any, and joins
  DoorbellWaiter(const DoorbellWaiter&) = delete;
  DoorbellWaiter& operator=(const DoorbellWaiter&) = delete;

  void sleep(std::unique_ptr<DoorbellSleep> sleep, std::chrono::milliseconds bound);
  // Ends the sleep and returns once the thread has let go of the doorbells
  // (their memory may go then). `woken` still comes.
  void interrupt();
  // Ends the sleep without waiting: from any thread, a transport event's
  // handler included.
  void nudge() noexcept { wake_.wake(); }

 private:
  void run();

  std::function<void()> woken_;
  Doorbell wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<DoorbellSleep> job_;
  std::chrono::milliseconds bound_{0};
  bool busy_ = false;         // a sleep handed over and not yet ended
  bool interrupted_ = false;  // end it now
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

}  // namespace visorlab::channel
