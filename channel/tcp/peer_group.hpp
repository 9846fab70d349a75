// The links of one process to one peer process share their liveness (as
// cluster membership protocols keep one heartbeat per node pair, not per
// connection). Only while they back off (LinkOptions::idle_after): then one
// of them — the same one on both sides, the smallest channel name — carries
// the beat and judges the peer's silence for all; the others sleep until
// data, a hang-up or the group's verdict wakes them. A busy link beats and
// judges for itself, as ever.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace visorlab::channel::tcp {

// This process, as INIT names it to peers: random, fixed for its life.
std::uint64_t this_process();

class PeerGroup {
 public:
  // A member: an endpoint's hooks, called under the group's lock.
  struct Member {
    std::string name;  // the channel: the smallest carries the beat
    // Take in what waits on the member's link now, if it can without
    // waiting (the beater looks before it convicts the peer).
    std::function<void()> look;
    std::function<void()> wake;  // the member's link thread re-reads the group
  };

  // The group of links to `peer` (a process number from INIT), made on first use.
  static std::shared_ptr<PeerGroup> of(std::uint64_t peer);

  void join(const void* who, Member m);
  void leave(const void* who);
  bool beats(const void* who) const;  // the member that carries the beat

  // Something came from the peer on some link.
  void heard(std::int64_t now_ns) noexcept;
  std::int64_t last_heard() const noexcept { return last_heard_ns_.load(std::memory_order_relaxed); }
  // The beater convicts the peer: every member is woken and drops its link.
  // Before that every member's link is looked at once: bytes waiting mean
  // the peer spoke (the sides may briefly disagree on who beats).
  void look_all();
  void convict();
  bool convicted() const noexcept { return convicted_.load(std::memory_order_acquire); }

 private:
  PeerGroup() = default;
  void elect_locked();

  std::atomic<std::int64_t> last_heard_ns_{0};
  std::atomic<bool> convicted_{false};
  std::atomic<const void*> beater_{nullptr};
  mutable std::mutex mu_;
  std::vector<std::pair<const void*, Member>> members_;
};

}  // namespace visorlab::channel::tcp
