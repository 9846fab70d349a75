#include "channel/tcp/peer_group.hpp"

#include <map>
#include <random>

#include <unistd.h>

namespace visorlab::channel::tcp {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::uint64_t, std::weak_ptr<PeerGroup>> groups;
};

Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: link threads may outlive statics
  return *r;
}

}  // namespace

std::uint64_t this_process() {
  // Drawn again in a forked child: it is another process to its peers.
  static std::mutex mu;
  static pid_t owner = 0;
  static std::uint64_t id = 0;
  std::lock_guard lock(mu);
  if (owner != ::getpid()) {
    std::random_device rd;
    id = 0;
    while (id == 0) id = (std::uint64_t{rd()} << 32) | rd();  // 0: a peer that named none
    owner = ::getpid();
  }
  return id;
}

std::shared_ptr<PeerGroup> PeerGroup::of(std::uint64_t peer) {
  Registry& r = registry();
  std::lock_guard lock(r.mu);
  std::erase_if(r.groups, [](const auto& g) { return g.second.expired(); });
  auto& slot = r.groups[peer];
  auto group = slot.lock();
  // A convicted group is done: links made afterwards start a new one.
  if (!group || group->convicted()) {
    group = std::shared_ptr<PeerGroup>(new PeerGroup());
    slot = group;
  }
  return group;
}

// Under the lock: who beats now; when that changed, every member hears it
// (waking is an eventfd write, and a member cannot go while we hold the lock).
void PeerGroup::elect_locked() {
  const void* first = nullptr;
  const std::string* least = nullptr;
  for (const auto& [who, member] : members_)
    if (!least || member.name < *least) {
      first = who;
      least = &member.name;
    }
  if (beater_.exchange(first) == first) return;
  for (const auto& [_, member] : members_) member.wake();
}

void PeerGroup::join(const void* who, Member m) {
  std::lock_guard lock(mu_);
  members_.emplace_back(who, std::move(m));
  elect_locked();
}

void PeerGroup::leave(const void* who) {
  std::lock_guard lock(mu_);
  std::erase_if(members_, [&](const auto& m) { return m.first == who; });
  elect_locked();
}

bool PeerGroup::beats(const void* who) const { return beater_.load(std::memory_order_relaxed) == who; }

void PeerGroup::heard(std::int64_t now_ns) noexcept {
  std::int64_t seen = last_heard_ns_.load(std::memory_order_relaxed);
  while (now_ns > seen && !last_heard_ns_.compare_exchange_weak(seen, now_ns, std::memory_order_relaxed)) {
  }
}

void PeerGroup::look_all() {
  std::lock_guard lock(mu_);
  for (const auto& [_, member] : members_) member.look();
}

void PeerGroup::convict() {
  convicted_.store(true, std::memory_order_release);
  std::lock_guard lock(mu_);
  for (const auto& [_, member] : members_) member.wake();
}

}  // namespace visorlab::channel::tcp
