// A channel's doorbell: producers ring it after they publish a signal, and a
// consumer with nothing to do sleeps on it (a futex) instead of polling — as
// s-Par's partitions took an interrupt rather than spin. It lives just past
// the channel's spec'd bytes in the same memory, so the s-Par layout is
// untouched: one host's two ends share it through shared memory; over TCP
// each end has its own, rung by the link thread as it applies the peer's
// publishes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace visorlab::channel {

struct alignas(64) Doorbell {
  std::atomic<std::uint32_t> rings{0};     // the futex word, bumped by a ring that finds a sleeper
  std::atomic<std::uint32_t> sleepers{0};  // consumers asleep on it, or about to be

  // After publishing. When nobody sleeps it costs a fence and a load.
  void ring() noexcept;
  // Wakes whoever sleeps on it, sleeper announced or not (a wake-up word of
  // one's own: an interrupt of the sleep).
  void wake() noexcept;
};
static_assert(sizeof(Doorbell) == 64);

// Where a channel of `size` bytes keeps its doorbell, and the memory the
// channel needs with it.
constexpr std::uint64_t doorbell_offset(std::uint64_t size) { return (size + 63) / 64 * 64; }
constexpr std::uint64_t size_with_doorbell(std::uint64_t size) { return doorbell_offset(size) + sizeof(Doorbell); }

// One consumer's sleep on several doorbells, in two steps. Constructing it
// announces the sleeper on each and notes what they have rung so far; the
// consumer then looks at its queues once more (anything published from now
// on rings); wait() sleeps until one of them rings, `wake` moves past
// `wake_seen` (read it before deciding to sleep, so no wake-up is missed), or
// the timeout passes. Destroying it withdraws the sleeper.
class DoorbellSleep {
 public:
  // futex_waitv takes at most 128 words; one is the wake-up word.
  static constexpr std::size_t kMaxBells = 127;

  explicit DoorbellSleep(std::vector<Doorbell*> bells);
  ~DoorbellSleep();
  DoorbellSleep(const DoorbellSleep&) = delete;
  DoorbellSleep& operator=(const DoorbellSleep&) = delete;

  // Whether this kernel has futex_waitv (Linux 5.16); without it, poll.
  static bool available();

  // False if it could not sleep at all (more than kMaxBells, or a kernel
  // without futex_waitv, before Linux 5.16): poll instead.
  bool wait(Doorbell& wake, std::uint32_t wake_seen, std::chrono::milliseconds timeout);

 private:
  std::vector<Doorbell*> bells_;
  std::vector<std::uint32_t> seen_;
};

}  // namespace visorlab::channel
