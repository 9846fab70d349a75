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

#include "channel/channel.hpp"
#include "channel/doorbell.hpp"

namespace visorlab::channel {

class DoorbellWaiter {
 public:
  explicit DoorbellWaiter(std::function<void()> woken);
  ~DoorbellWaiter();  // interrupts the sleep, if any, and joins
  DoorbellWaiter(const DoorbellWaiter&) = delete;
  DoorbellWaiter& operator=(const DoorbellWaiter&) = delete;

  void sleep(std::unique_ptr<DoorbellSleep> sleep, std::chrono::milliseconds bound);

  // The sleep protocol, one for every consumer: announce a sleeper on the
  // doorbells of `channels` — a paused channel's left out: its mapping is
  // closed, and nothing comes through it before a resume — then `look()`
  // once more for what was published before the announcement; only if it
  // found nothing, sleep for at most `bound`. `look` must not remove a
  // channel (the announcement holds its doorbell).
  enum class Outcome { asleep, work_found, cannot_sleep };  // cannot: a channel without a doorbell, or too many
  Outcome sleep_on(const std::vector<const Channel*>& channels, const std::function<bool()>& look,
                   std::chrono::milliseconds bound);
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
