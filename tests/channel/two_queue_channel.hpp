// The channel the TCP tests drive: two queues of numbered 64-byte signals,
// commands guest → service and responses back. Shared by the test suite and
// the peer program it starts (tcp_peer.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>

#include "channel/channel_types.hpp"
#include "channel/tcp/tcp_endpoint.hpp"

namespace visorlab::test::two_queue {

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kCmd = 0, kRsp = 1;  // guest → service, service → guest

struct Signal {
  std::uint64_t seq;
  std::uint8_t fill[56];
};

inline Signal make(std::uint64_t seq) {
  Signal s{};
  s.seq = seq;
  std::memset(s.fill, static_cast<int>(seq & 0xFF), sizeof s.fill);
  return s;
}

inline bool intact(const Signal& s) {
  for (auto b : s.fill)
    if (b != (s.seq & 0xFF)) return false;
  return true;
}

inline const ch::Guid kType = ch::Guid::make(0x11112222, 0x3333, 0x4444, {5, 5, 6, 6, 7, 7, 8, 8});

inline ch::ChannelSpec spec(std::uint32_t slots = 64) {
  ch::ChannelSpec s;
  s.type = kType;
  s.version_id = 1;
  s.queues = {{64, slots}, {64, slots}};
  s.min_size = 16384;  // room for a data area after the slots
  return s;
}

inline ch::Expect expect() { return ch::Expect{.type = kType, .version_id = 1, .queue_count = 2, .signal_size = 64}; }

inline const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};

inline bool insert_until(ch::SignalQueue& q, const Signal& s, Clock::time_point deadline) {
  while (q.insert(&s) != 0)
    if (Clock::now() > deadline) return false;
  return true;
}

inline bool remove_until(ch::SignalQueue& q, Signal& s, Clock::time_point deadline) {
  while (q.remove(&s) != 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// The service side's work: echo `count` commands back as responses, numbered
// from `first` and intact. 0: done; 1: a signal out of order or torn; 2: the
// deadline passed.
inline int echo(ch::Channel& c, std::uint64_t first, std::uint64_t count, Clock::time_point deadline) {
  Signal s;
  for (std::uint64_t i = first; i < first + count; ++i) {
    if (!remove_until(c.queue(kCmd), s, deadline)) return 2;
    if (s.seq != i || !intact(s)) return 1;
    if (!insert_until(c.queue(kRsp), s, deadline)) return 2;
  }
  return 0;
}

}  // namespace visorlab::test::two_queue
