#include "channel/doorbell.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <ctime>

namespace visorlab::channel {
namespace {

// Not FUTEX_PRIVATE: the words are shared between processes.
void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

}  // namespace

void Doorbell::ring() noexcept {
  // Pairs with the sleeper's announcement: either it sees what was published
  // when it looks again, or we see it and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (sleepers.load(std::memory_order_relaxed) == 0) return;
  wake();
}

void Doorbell::wake() noexcept {
  rings.fetch_add(1, std::memory_order_release);
  futex_wake_all(rings);
}

DoorbellSleep::DoorbellSleep(std::vector<Doorbell*> bells) : bells_(std::move(bells)) {
  seen_.reserve(bells_.size());
  for (Doorbell* b : bells_) {
    b->sleepers.fetch_add(1, std::memory_order_seq_cst);
    seen_.push_back(b->rings.load(std::memory_order_acquire));
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

DoorbellSleep::~DoorbellSleep() {
  for (Doorbell* b : bells_) b->sleepers.fetch_sub(1, std::memory_order_release);
}

bool DoorbellSleep::available() {
#ifdef SYS_futex_waitv
  static const bool has = ::syscall(SYS_futex_waitv, nullptr, 0, 0, nullptr, 0) == 0 || errno != ENOSYS;
  return has;
#else
  return false;
#endif
}

bool DoorbellSleep::wait(Doorbell& wake, std::uint32_t wake_seen, std::chrono::milliseconds timeout) {
#ifdef SYS_futex_waitv
  if (bells_.size() > kMaxBells) return false;
  std::vector<futex_waitv> words(bells_.size() + 1);
  auto add = [&](std::size_t i, std::atomic<std::uint32_t>& word, std::uint32_t expected) {
    words[i] = futex_waitv{};
    words[i].val = expected;
    words[i].uaddr = reinterpret_cast<std::uintptr_t>(&word);
    words[i].flags = FUTEX_32;
  };
  add(0, wake.rings, wake_seen);
  for (std::size_t i = 0; i < bells_.size(); ++i) add(i + 1, bells_[i]->rings, seen_[i]);
  timespec until{};
  ::clock_gettime(CLOCK_MONOTONIC, &until);
  const auto ns = until.tv_nsec + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  until.tv_sec += ns / 1'000'000'000;
  until.tv_nsec = ns % 1'000'000'000;
  // Returns at once if a word already moved (EAGAIN): a ring we must not miss.
  const long rc = ::syscall(SYS_futex_waitv, words.data(), static_cast<unsigned>(words.size()), 0, &until,
                            CLOCK_MONOTONIC);
  return rc >= 0 || errno != ENOSYS;
#else
  (void)wake;
  (void)wake_seen;
  (void)timeout;
  return false;
#endif
}

}  // namespace visorlab::channel
