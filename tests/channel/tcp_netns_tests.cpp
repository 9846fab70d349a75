// TCP-backed channels between real test hosts: network namespaces joined by
// veth and a bridge (tests/support/netns.hpp), a guest in one and its service
// partition in another, each a separate process. Every wait is bounded and the
// namespaces are removed whatever happens.
#define BOOST_TEST_MODULE channel_tcp_netns
#include <boost/test/unit_test.hpp>

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "channel/tcp/tcp_endpoint.hpp"
#include "tests/support/netns.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using visorlab::test::TestHosts;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kCmd = 0, kRsp = 1;
constexpr std::uint16_t kPort = 4710;  // each host has its own port space
const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};
const ch::Guid kType = ch::Guid::make(0x0badcafe, 0x1, 0x2, {3, 4, 5, 6, 7, 8, 9, 10});

ch::ChannelSpec spec() {
  ch::ChannelSpec s;
  s.type = kType;
  s.queues = {{64, 256}, {64, 256}};
  return s;
}
ch::Expect expect() { return ch::Expect{.type = kType, .queue_count = 2, .signal_size = 64}; }

struct Signal {
  std::uint64_t seq;
  std::uint8_t fill[56];
};

Signal make(std::uint64_t seq) {
  Signal s{};
  s.seq = seq;
  std::memset(s.fill, static_cast<int>(seq * 7 & 0xFF), sizeof s.fill);
  return s;
}
bool intact(const Signal& s) {
  for (auto b : s.fill)
    if (b != (s.seq * 7 & 0xFF)) return false;
  return true;
}

bool netns_available() { return TestHosts::available(); }

// A one-way pipe for a child to report a timestamp or a byte to the test.
struct Pipe {
  int fds[2];
  Pipe() {
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
  }
  ~Pipe() {
    close(fds[0]);
    close(fds[1]);
  }
  void put(std::int64_t v) const { (void)!write(fds[1], &v, sizeof v); }
  std::optional<std::int64_t> get(std::chrono::milliseconds timeout) const {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    std::int64_t v;
    if (read(fds[0], &v, sizeof v) != sizeof v) return std::nullopt;
    return v;
  }
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The service partition: attach (retrying while the guest still holds a dead
// peer) and echo commands back forever, or `count` of them.
int serve_echo(const std::string& guest_addr, std::uint64_t count = ~0ull) {
  std::unique_ptr<tcp::TcpEndpoint> service;
  const auto deadline = Clock::now() + 10s;
  while (!service) {
    try {
      service = tcp::TcpEndpoint::attach({guest_addr, kPort}, "g0/vhba0", expect(), tcp::Side::service, kProducers);
    } catch (const std::exception&) {
      if (Clock::now() > deadline) return 20;
      std::this_thread::sleep_for(20ms);
    }
  }
  auto& c = service->channel();
  Signal s;
  for (std::uint64_t n = 0; n < count && Clock::now() < deadline + 60s;) {
    if (c.queue(kCmd).remove(&s) != 0) {
      std::this_thread::yield();
      continue;
    }
    while (c.queue(kRsp).insert(&s) != 0) std::this_thread::yield();
    ++n;
  }
  std::this_thread::sleep_for(200ms);  // let the last index leave
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(across_namespaces, *boost::unit_test::precondition([](auto) { return netns_available(); }))

BOOST_AUTO_TEST_CASE(numbered_signals_stream_between_hosts) {
  constexpr std::uint64_t kCount = 20000;
  TestHosts hosts(2);
  const std::string guest_addr = hosts.address(0);
  const pid_t guest = hosts.spawn(0, [&] {
    auto g = tcp::TcpEndpoint::serve({guest_addr, kPort}, "g0/vhba0", spec(), tcp::Side::guest, kProducers);
    if (!g->wait_connected(10s)) return 10;
    auto& c = g->channel();
    const auto deadline = Clock::now() + 60s;
    std::uint64_t sent = 0, got = 0;
    Signal s;
    while (got < kCount) {
      if (Clock::now() > deadline) return 11;
      if (sent < kCount) {
        const Signal out = make(sent);
        if (c.queue(kCmd).insert(&out) == 0) ++sent;
      }
      while (c.queue(kRsp).remove(&s) == 0) {
        if (s.seq != got || !intact(s)) return 12;  // lost, duplicated, reordered or torn
        ++got;
      }
    }
    return 0;
  });
  const pid_t service = hosts.spawn(1, [&] { return serve_echo(guest_addr, kCount); });
  BOOST_TEST(hosts.wait(guest, 90s) == 0);
  BOOST_TEST(hosts.wait(service, 10s) == 0);
}

// kill -9 of the service partition mid-stream; a new one re-attaches from
// another host and receives the guest's image. Every response the guest received
// is checked: none duplicated or reordered, and after the restart every
// command the dead partition had not consumed comes back, in order.
BOOST_AUTO_TEST_CASE(killed_service_restarts_and_everything_acknowledged_holds) {
  constexpr std::uint64_t kCount = 30000;
  TestHosts hosts(3);
  const std::string guest_addr = hosts.address(0);
  Pipe progress;
  const pid_t guest = hosts.spawn(0, [&] {
    std::atomic<bool> failed{false};
    auto g = tcp::TcpEndpoint::serve({guest_addr, kPort}, "g0/vhba0", spec(), tcp::Side::guest, kProducers, {},
                                     [&](const tcp::Event& e) { failed = e.code == tcp::EventCode::partner_failed; });
    if (!g->wait_connected(10s)) return 10;
    auto& c = g->channel();
    const auto deadline = Clock::now() + 60s;
    std::uint64_t sent = 0, expected = 0, consumed_at_crash = 0;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps;  // [from, to) never answered
    bool crashed = false, reported = false;
    Signal s;
    while (expected < kCount) {
      if (Clock::now() > deadline) return 11;
      if (!reported && expected > 2000) {
        progress.put(1);  // mid-stream: the test may kill the partition now
        reported = true;
      }
      if (failed && !crashed) {
        crashed = true;
        consumed_at_crash = c.queue_header(kCmd).num_received;
      }
      if (sent < kCount) {
        const Signal out = make(sent);
        if (c.queue(kCmd).insert(&out) == 0) ++sent;
      }
      while (c.queue(kRsp).remove(&s) == 0) {
        if (!intact(s)) return 14;
        if (s.seq < expected) return 15;  // duplicated or reordered
        if (s.seq > expected) gaps.push_back({expected, s.seq});
        expected = s.seq + 1;
      }
    }
    if (!crashed) return 17;
    // Only commands the dead partition had consumed may be missing: every
    // command still queued at the crash was answered by its successor.
    for (const auto& [from, to] : gaps)
      if (to > consumed_at_crash) return 16;
    return 0;
  });
  const pid_t first = hosts.spawn(1, [&] { return serve_echo(guest_addr); });
  BOOST_REQUIRE(progress.get(30s));
  kill(first, SIGKILL);
  hosts.wait(first, 5s);
  const pid_t second = hosts.spawn(2, [&] { return serve_echo(guest_addr); });  // restarted elsewhere
  BOOST_TEST(hosts.wait(guest, 90s) == 0);
  kill(second, SIGKILL);
  hosts.wait(second, 5s);
}

// Cutting the link: both ends hear partner failed within the detection bound
// (heartbeats stop). When the link heals, the surviving service partition
// re-attaches with its own image; each side re-sends what it owns and the
// stream goes on with nothing lost.
BOOST_AUTO_TEST_CASE(link_down_is_detected_and_a_healed_link_resyncs) {
  constexpr std::uint64_t kBefore = 1000, kAfter = 1000;
  TestHosts hosts(2);
  const std::string guest_addr = hosts.address(0);
  Pipe to_test;
  const pid_t guest = hosts.spawn(0, [&] {
    std::atomic<std::int64_t> failed_at{0};
    auto g = tcp::TcpEndpoint::serve({guest_addr, kPort}, "g0/vhba0", spec(), tcp::Side::guest, kProducers, {},
                                     [&](const tcp::Event& e) {
                                       if (e.code == tcp::EventCode::partner_failed) failed_at = now_ns();
                                     });
    if (!g->wait_connected(10s)) return 10;
    auto& c = g->channel();
    const auto deadline = Clock::now() + 60s;
    Signal s;
    std::uint64_t got = 0;
    auto run = [&](std::uint64_t from, std::uint64_t to) {
      for (std::uint64_t sent = from; got < to;) {
        if (Clock::now() > deadline) return false;
        if (sent < to) {
          const Signal out = make(sent);
          if (c.queue(kCmd).insert(&out) == 0) ++sent;
        }
        while (c.queue(kRsp).remove(&s) == 0) {
          if (s.seq != got || !intact(s)) return false;
          ++got;
        }
      }
      return true;
    };
    if (!run(0, kBefore)) return 11;
    to_test.put(1);  // connected and streaming: cut now
    while (failed_at == 0)
      if (Clock::now() > deadline) return 12;
    to_test.put(failed_at);
    if (!g->wait_connected(20s)) return 13;  // the survivor came back
    if (!run(kBefore, kBefore + kAfter)) return 14;
    return 0;
  });
  const pid_t service = hosts.spawn(1, [&] {
    std::atomic<bool> failed{false};
    std::unique_ptr<tcp::TcpEndpoint> s;
    for (const auto until = Clock::now() + 10s; !s;) {  // the guest may not listen yet
      try {
        s = tcp::TcpEndpoint::attach({guest_addr, kPort}, "g0/vhba0", expect(), tcp::Side::service, kProducers, {},
                                     [&](const tcp::Event&) { failed = true; });
      } catch (const std::exception&) {
        if (Clock::now() > until) return 20;
        std::this_thread::sleep_for(20ms);
      }
    }
    auto& c = s->channel();
    const auto deadline = Clock::now() + 60s;
    Signal sig;
    for (std::uint64_t n = 0; n < kBefore + kAfter;) {
      if (Clock::now() > deadline) return 21;
      if (failed) {
        failed = false;
        try {
          s->reattach({guest_addr, kPort}, 20s);  // keeps its image: a survivor
        } catch (const std::exception&) {
          return 22;
        }
      }
      if (c.queue(kCmd).remove(&sig) != 0) {
        std::this_thread::yield();
        continue;
      }
      while (c.queue(kRsp).insert(&sig) != 0)
        if (Clock::now() > deadline) return 23;
      ++n;
    }
    std::this_thread::sleep_for(200ms);
    return 0;
  });
  BOOST_REQUIRE(to_test.get(30s));
  const std::int64_t cut_at = now_ns();
  hosts.link_down(1);
  const auto failed_at = to_test.get(5s);
  BOOST_REQUIRE(failed_at);
  const auto detect_ms = (*failed_at - cut_at) / 1000000;
  BOOST_TEST_MESSAGE("link down detected by the guest after " << detect_ms << " ms");
  BOOST_TEST(detect_ms < 500);  // default bound 80 ms; generous for a loaded CI machine
  std::this_thread::sleep_for(100ms);
  hosts.link_up(1);
  BOOST_TEST(hosts.wait(guest, 90s) == 0);
  BOOST_TEST(hosts.wait(service, 30s) == 0);
}

BOOST_AUTO_TEST_SUITE_END()
