#include "channel/doorbell_waiter.hpp"

namespace visorlab::channel {

DoorbellWaiter::DoorbellWaiter(std::function<void()> woken)
    : woken_(std::move(woken)), thread_([this] { run(); }) {}

DoorbellWaiter::~DoorbellWaiter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    interrupted_ = true;
    wake_.wake();
  }
  cv_.notify_all();
  thread_.join();
}

void DoorbellWaiter::sleep(std::unique_ptr<DoorbellSleep> sleep, std::chrono::milliseconds bound) {
  {
    std::lock_guard lock(mu_);
    job_ = std::move(sleep);
    bound_ = bound;
    busy_ = true;
    interrupted_ = false;
  }
  cv_.notify_all();
}

DoorbellWaiter::Outcome DoorbellWaiter::sleep_on(const std::vector<const Channel*>& channels,
                                                 const std::function<bool()>& look, std::chrono::milliseconds bound) {
  std::vector<Doorbell*> bells;
  for (const Channel* c : channels) {
    if (c->paused()) continue;
    if (!c->doorbell()) return Outcome::cannot_sleep;
    bells.push_back(c->doorbell());
  }
  if (bells.size() > DoorbellSleep::kMaxBells) return Outcome::cannot_sleep;
  auto announced = std::make_unique<DoorbellSleep>(std::move(bells));
  if (look()) return Outcome::work_found;
  sleep(std::move(announced), bound);
  return Outcome::asleep;
}

void DoorbellWaiter::interrupt() {
  std::unique_lock lock(mu_);
  if (!busy_) return;
  interrupted_ = true;
  wake_.wake();
  cv_.wait(lock, [&] { return !busy_; });
}

void DoorbellWaiter::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || busy_; });
    if (stop_ && !busy_) return;
    std::unique_ptr<DoorbellSleep> job = std::move(job_);
    const auto bound = bound_;
    // Read under the lock with the flag: an interrupt after this moves the
    // word, and the wait returns at once.
    const std::uint32_t seen = wake_.rings.load(std::memory_order_acquire);
    const bool skip = interrupted_ || stop_;
    lock.unlock();
    if (!skip && job) job->wait(wake_, seen, bound);
    job.reset();  // the sleeper withdrawn: the doorbells may go
    lock.lock();
    busy_ = false;
    cv_.notify_all();
    const bool stopping = stop_;
    lock.unlock();
    if (!stopping) woken_();
    lock.lock();
    if (stop_) return;
  }
}

}  // namespace visorlab::channel
