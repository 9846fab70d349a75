// Injected network cuts (channel/tcp/link_faults.hpp) on loopback: the guest
// end lives on host "a" and serves, the service end on host "b" attaches; a
// partition [a, b] is what the two hosts' agents do, each cutting the other:
// cut("b") for the guest's endpoint, cut("a") for the service's. Both sides
// must see a silent peer within the detection bound, nothing may cross while
// cut, and after the heal (or the lease running out) the service end
// re-attaches and the stream goes on with nothing lost, duplicated or
// reordered. Every loop is bounded in count and time.
#define BOOST_TEST_MODULE channel_tcp_link_faults
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "channel/log_throttle.hpp"
#include "channel/end/channel_end.hpp"
#include "channel/tcp/link_faults.hpp"
#include "channel/tcp/tcp_endpoint.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using tcp::LinkFaults;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kCmd = 0, kRsp = 1;  // guest → service, service → guest

// The detection bound the brief promises with default LinkOptions (80 ms
// silence, 10 ms tick), measured from the cut. ThreadSanitizer slows every
// thread several times over: there the bound only has to be of the same order.
#if defined(__SANITIZE_THREAD__)
constexpr auto kDetectBound = 300ms;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr auto kDetectBound = 300ms;
#else
constexpr auto kDetectBound = 100ms;
#endif
#else
constexpr auto kDetectBound = 100ms;
#endif

struct Signal {
  std::uint64_t seq;
  std::uint8_t fill[56];
};

Signal make(std::uint64_t seq) {
  Signal s{};
  s.seq = seq;
  std::memset(s.fill, static_cast<int>(seq * 13 & 0xFF), sizeof s.fill);
  return s;
}

bool intact(const Signal& s) {
  for (auto b : s.fill)
    if (b != (s.seq * 13 & 0xFF)) return false;
  return true;
}

const ch::Guid kType = ch::Guid::make(0x1f1f2e2e, 0x3d3d, 0x4c4c, {5, 6, 7, 8, 9, 10, 11, 12});

ch::ChannelSpec spec() {
  ch::ChannelSpec s;
  s.type = kType;
  s.version_id = 1;
  s.queues = {{64, 64}, {64, 64}};
  s.min_size = 16384;  // room for a data area after the slots
  return s;
}

ch::Expect expect() { return ch::Expect{.type = kType, .version_id = 1, .queue_count = 2, .signal_size = 64}; }

const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};
const tcp::Address kLoopback{"127.0.0.1", 0};

std::chrono::milliseconds ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from);
}

// Transport events seen by one endpoint, with when they arrived.
struct Events {
  mutable std::mutex m;
  std::vector<std::pair<tcp::Event, Clock::time_point>> seen;

  tcp::TcpEndpoint::EventHandler handler() {
    return [this](const tcp::Event& e) {
      std::lock_guard lock(m);
      seen.emplace_back(e, Clock::now());
    };
  }
  std::size_t count() const {
    std::lock_guard lock(m);
    return seen.size();
  }
  // The n-th event (0-based), waiting for it until `timeout`.
  std::optional<std::pair<tcp::Event, Clock::time_point>> wait(std::size_t n, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard lock(m);
        if (seen.size() > n) return seen[n];
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(1ms);
    }
  }
};

// Heals whatever a test cut, whatever happens in it: the registry is
// process-wide and the next test must start clean.
struct HealOnExit {
  ~HealOnExit() {
    for (const char* host : {"a", "b", "c"}) LinkFaults::instance().heal(host);
  }
};

// The partition [a, b] as the two agents inject it.
void partition_ab(Clock::time_point lease_until) {
  LinkFaults::instance().cut("b", lease_until);  // agent of a: its endpoints whose peer is on b
  LinkFaults::instance().cut("a", lease_until);  // agent of b: its endpoints whose peer is on a
}

void heal_ab() {
  LinkFaults::instance().heal("b");
  LinkFaults::instance().heal("a");
}

// A guest end on host a and a service end on host b, connected.
struct Link {
  Events guest_events, service_events;
  std::unique_ptr<tcp::TcpEndpoint> guest, service;

  explicit Link(const std::string& name) {
    tcp::LinkOptions on_a, on_b;
    on_a.peer_host = "b";
    on_b.peer_host = "a";
    guest = tcp::TcpEndpoint::serve(kLoopback, name, spec(), tcp::Side::guest, kProducers, on_a,
                                    guest_events.handler());
    service = tcp::TcpEndpoint::attach(guest->address(), name, expect(), tcp::Side::service, kProducers, on_b,
                                       service_events.handler());
    BOOST_REQUIRE(guest->wait_connected(2s));
  }
};

bool insert_until(ch::SignalQueue& q, const Signal& s, Clock::time_point deadline) {
  while (q.insert(&s) != 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

bool remove_until(ch::SignalQueue& q, Signal& s, Clock::time_point deadline) {
  while (q.remove(&s) != 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Nothing arrives on `q` for `how_long` (polled, so pull() is exercised too).
bool stays_empty(ch::SignalQueue& q, std::chrono::milliseconds how_long) {
  Signal s;
  const auto until = Clock::now() + how_long;
  while (Clock::now() < until) {
    if (q.remove(&s) == 0) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// Bounded round trips guest → service → guest, numbered from `from`.
bool round_trips(tcp::TcpEndpoint& guest, tcp::TcpEndpoint& service, std::uint64_t from, std::uint64_t count) {
  const auto deadline = Clock::now() + 10s;
  Signal s;
  for (std::uint64_t i = from; i < from + count; ++i) {
    if (!insert_until(guest.channel().queue(kCmd), make(i), deadline)) return false;
    if (!remove_until(service.channel().queue(kCmd), s, deadline) || s.seq != i || !intact(s)) return false;
    if (!insert_until(service.channel().queue(kRsp), s, deadline)) return false;
    if (!remove_until(guest.channel().queue(kRsp), s, deadline) || s.seq != i || !intact(s)) return false;
  }
  return true;
}

// The service partition of a streaming test: echoes every command back in
// order; after a transport event, re-attaches (waiting out the cut) and goes
// on. Its results are read after join().
struct EchoService {
  EchoService(tcp::TcpEndpoint& e, Events& ev, tcp::Address at, std::uint64_t n)
      : endpoint(e), events(ev), guest_at(std::move(at)), count(n) {}
  tcp::TcpEndpoint& endpoint;
  Events& events;
  tcp::Address guest_at;
  std::uint64_t count;
  std::atomic<std::uint64_t> cut_from{~0ull};  // first command the guest inserted after the cut
  std::atomic<bool> healed{false};             // set just before the heal
  std::atomic<bool> stop{false};
  // Results.
  int failure = 0;  // 0: all echoed
  std::uint64_t echoed = 0, reattaches = 0, crossed_cut = 0;
  std::thread thread;

  void start() {
    thread = std::thread([this] { failure = run(); });
  }
  int run() {
    const auto deadline = Clock::now() + 60s;
    auto& c = endpoint.channel();
    std::size_t events_handled = 0;
    std::optional<Signal> answer;
    Signal s;
    while (echoed < count) {
      if (stop || Clock::now() > deadline) return 2;
      if (events.count() > events_handled) {
        ++events_handled;
        try {
          endpoint.reattach(guest_at, 10s);  // a survivor: keeps its image
          ++reattaches;
        } catch (const std::exception&) {
          return 3;
        }
      }
      if (answer) {
        if (c.queue(kRsp).insert(&*answer) == 0) {
          answer.reset();
          ++echoed;
        } else {
          idle(c);
        }
        continue;
      }
      if (c.queue(kCmd).remove(&s) != 0) {
        idle(c);
        continue;
      }
      if (s.seq != echoed || !intact(s)) return 1;  // lost, duplicated, reordered or torn
      if (s.seq >= cut_from.load() && !healed.load()) ++crossed_cut;
      answer = s;
    }
    return 0;
  }
  // Nothing to do: spin briefly while the link is up (signals come fast),
  // sleep while it is down (the link threads must not starve on 2 cores).
  void idle(ch::Channel&) {
    if (endpoint.connected() && !endpoint.link_cut())
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(200us);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(registry)

BOOST_AUTO_TEST_CASE(cut_renew_heal_expire_and_count) {
  HealOnExit guard;
  auto& f = LinkFaults::instance();
  const auto before = f.counters();
  BOOST_TEST(!f.is_cut("c"));
  f.heal("c");  // nothing to heal: a no-op
  BOOST_TEST(f.counters().heals == before.heals);

  f.cut("c", Clock::now() + 10s);
  BOOST_TEST(f.is_cut("c"));
  BOOST_TEST((f.cut_hosts() == std::vector<std::string>{"c"}));
  f.cut("c", Clock::now() + 20s);  // renewal: still one cut
  BOOST_TEST(f.counters().cuts == before.cuts + 1);
  BOOST_TEST(f.counters().renewals == before.renewals + 1);
  f.heal("c");
  BOOST_TEST(!f.is_cut("c"));
  BOOST_TEST(f.counters().heals == before.heals + 1);
  BOOST_TEST(f.known_hosts().empty());  // no endpoints, no cut: no entry

  // A lease already over is no cut at all, and is counted as expired.
  f.cut("c", Clock::now() - 1ms);
  BOOST_TEST(!f.is_cut("c"));
  const auto deadline = Clock::now() + 2s;
  while (f.counters().expired == before.expired && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  BOOST_TEST(f.counters().expired == before.expired + 1);
  BOOST_TEST(f.known_hosts().empty());

  BOOST_CHECK_THROW(f.cut("", Clock::now() + 1s), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(endpoints_register_under_their_peer_host_and_never_outlive_it) {
  HealOnExit guard;
  auto& f = LinkFaults::instance();
  const auto base = f.endpoint_count();
  {
    Link link("reg");
    BOOST_TEST(f.endpoint_count("b") == 1u);  // the guest's peer lives on b
    BOOST_TEST(f.endpoint_count("a") == 1u);
    BOOST_TEST(f.endpoint_count() == base + 2);
    BOOST_TEST(link.guest->peer_host() == "b");
    // No peer host: never registered, never cut.
    auto plain = tcp::TcpEndpoint::serve(kLoopback, "plain", spec(), tcp::Side::guest, kProducers);
    BOOST_TEST(f.endpoint_count() == base + 2);
    BOOST_TEST(!plain->link_cut());
  }
  BOOST_TEST(f.endpoint_count() == base);
  BOOST_TEST(f.known_hosts().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cuts)

// A stream of numbered commands echoed back; mid-stream the network between
// a and b is cut: both ends hear partner failed within the bound, nothing
// crosses, and after the heal the service end re-attaches and every command
// and response arrives once, in order.
BOOST_AUTO_TEST_CASE(a_cut_mid_stream_is_detected_and_after_the_heal_nothing_is_lost) {
  HealOnExit guard;
  constexpr std::uint64_t kCount = 6000, kCutAt = 2000;
  Link link("g0/vhba0");
  EchoService svc{*link.service, link.service_events, link.guest->address(), kCount};
  svc.start();

  auto& c = link.guest->channel();
  const auto deadline = Clock::now() + 60s;
  std::uint64_t sent = 0, got = 0, errors = 0;
  std::optional<Clock::time_point> cut_at;
  std::uint64_t got_at_detection = 0;
  bool healed = false;
  Signal s;
  while (got < kCount && Clock::now() < deadline) {
    if (!cut_at && got >= kCutAt) {
      cut_at = Clock::now();
      partition_ab(*cut_at + 30s);
      svc.cut_from = sent;  // everything from here on was inserted behind the cut
    }
    if (cut_at && !healed) {
      const bool both = link.guest_events.count() >= 1 && link.service_events.count() >= 1;
      if (both && got_at_detection == 0) got_at_detection = got;
      // Hold the cut well past detection, then heal.
      if (both && Clock::now() - *cut_at > 300ms) {
        BOOST_TEST(got == got_at_detection);  // no response crossed the cut after detection
        svc.healed = true;
        heal_ab();
        healed = true;
      }
    }
    bool progress = false;
    if (sent < kCount) {
      const Signal out = make(sent);
      if (c.queue(kCmd).insert(&out) == 0) {
        ++sent;
        progress = true;
      }
    }
    while (c.queue(kRsp).remove(&s) == 0) {
      if (s.seq != got || !intact(s)) ++errors;  // lost, duplicated, reordered or torn
      ++got;
      progress = true;
    }
    // Idle while the link is cut or down, as a driver would (and the link
    // threads measuring the silence are not starved on a 2-core machine).
    if (!progress && (link.guest->link_cut() || !link.guest->connected())) std::this_thread::sleep_for(200us);
  }
  svc.stop = true;
  svc.thread.join();

  BOOST_REQUIRE(cut_at);
  BOOST_TEST(healed);
  BOOST_TEST(got == kCount);
  BOOST_TEST(errors == 0u);
  BOOST_TEST(svc.failure == 0);
  BOOST_TEST(svc.echoed == kCount);
  BOOST_TEST(svc.reattaches == 1u);
  BOOST_TEST(svc.crossed_cut == 0u);  // no command inserted behind the cut reached the service before the heal

  const auto g = link.guest_events.wait(0, 0ms);
  const auto v = link.service_events.wait(0, 0ms);
  BOOST_REQUIRE(g);
  BOOST_REQUIRE(v);
  BOOST_TEST(static_cast<int>(g->first.code) == static_cast<int>(tcp::EventCode::partner_failed));
  BOOST_TEST(static_cast<int>(v->first.code) == static_cast<int>(tcp::EventCode::partner_failed));
  BOOST_TEST(g->first.reason.find("no heartbeat") != std::string::npos, g->first.reason);
  BOOST_TEST(v->first.reason.find("no heartbeat") != std::string::npos, v->first.reason);
  BOOST_TEST_MESSAGE("cut detected by the guest after " << ms_between(*cut_at, g->second).count()
                                                        << " ms, by the service after "
                                                        << ms_between(*cut_at, v->second).count() << " ms");
  BOOST_TEST(ms_between(*cut_at, g->second) <= kDetectBound);
  BOOST_TEST(ms_between(*cut_at, v->second) <= kDetectBound);
  BOOST_TEST(link.guest_events.count() == 1u);  // one event per side for one cut
  BOOST_TEST(link.service_events.count() == 1u);
  BOOST_TEST(link.guest->connected());
  BOOST_TEST(link.service->connected());
}

// Quiet link, both directions: what each side signals behind the cut does not
// arrive until the heal, and then all of it does, in order (the survivor
// resync re-sends each side's slots and indices). Data-area bytes are not
// part of that resync: written behind a cut that dropped the link, they stay
// local (as with a real cut); see the short cut below for the queued case.
BOOST_AUTO_TEST_CASE(nothing_crosses_a_cut_in_either_direction_until_the_heal) {
  HealOnExit guard;
  auto& f = LinkFaults::instance();
  const auto before = f.counters();
  Link link("g0/vnic0");
  BOOST_REQUIRE(round_trips(*link.guest, *link.service, 0, 3));

  const auto cut_at = Clock::now();
  partition_ab(cut_at + 30s);
  BOOST_TEST(f.is_cut("a"));
  BOOST_TEST(f.is_cut("b"));
  BOOST_TEST(link.guest->link_cut());
  BOOST_TEST(link.service->link_cut());
  const auto deadline = Clock::now() + 5s;
  for (std::uint64_t i = 3; i < 8; ++i) BOOST_REQUIRE(insert_until(link.guest->channel().queue(kCmd), make(i), deadline));
  const char note[] = "written behind the cut";
  BOOST_REQUIRE(link.guest->channel().write(12000, note, sizeof note) == 0);
  for (std::uint64_t i = 100; i < 102; ++i)
    BOOST_REQUIRE(insert_until(link.service->channel().queue(kRsp), make(i), deadline));

  // Before and after detection: nothing arrives on either side.
  BOOST_TEST(stays_empty(link.service->channel().queue(kCmd), 50ms));
  const auto g = link.guest_events.wait(0, 2s);
  const auto v = link.service_events.wait(0, 2s);
  BOOST_REQUIRE(g);
  BOOST_REQUIRE(v);
  BOOST_TEST(static_cast<int>(g->first.code) == static_cast<int>(tcp::EventCode::partner_failed));
  BOOST_TEST(static_cast<int>(v->first.code) == static_cast<int>(tcp::EventCode::partner_failed));
  BOOST_TEST(ms_between(cut_at, g->second) <= kDetectBound);
  BOOST_TEST(ms_between(cut_at, v->second) <= kDetectBound);
  BOOST_TEST(!link.guest->connected());
  BOOST_TEST(!link.service->connected());
  BOOST_TEST(stays_empty(link.service->channel().queue(kCmd), 100ms));
  BOOST_TEST(stays_empty(link.guest->channel().queue(kRsp), 50ms));
  char seen[sizeof note] = {};
  BOOST_REQUIRE(link.service->channel().read(12000, seen, sizeof seen) == 0);
  BOOST_TEST(std::string(seen).empty());

  // Re-attaching behind the cut fails at its deadline, saying why.
  try {
    link.service->reattach(link.guest->address(), 50ms);
    BOOST_FAIL("re-attached through a cut");
  } catch (const tcp::HandshakeError& e) {
    BOOST_TEST(std::string(e.what()).find("is cut") != std::string::npos, e.what());
  }
  BOOST_TEST(!link.guest->connected());  // the guest accepted nobody

  heal_ab();
  BOOST_TEST(!f.is_cut("a"));
  BOOST_TEST(!link.service->link_cut());
  link.service->reattach(link.guest->address(), 5s);
  BOOST_REQUIRE(link.guest->wait_connected(2s));
  Signal s;
  for (std::uint64_t i = 3; i < 8; ++i) {
    BOOST_REQUIRE(remove_until(link.service->channel().queue(kCmd), s, deadline));
    BOOST_TEST(s.seq == i);
    BOOST_TEST(intact(s));
  }
  for (std::uint64_t i = 100; i < 102; ++i) {
    BOOST_REQUIRE(remove_until(link.guest->channel().queue(kRsp), s, deadline));
    BOOST_TEST(s.seq == i);
  }
  BOOST_TEST(stays_empty(link.service->channel().queue(kCmd), 20ms));  // nothing twice
  BOOST_TEST(stays_empty(link.guest->channel().queue(kRsp), 20ms));
  BOOST_TEST(round_trips(*link.guest, *link.service, 8, 50));

  const auto after = f.counters();
  BOOST_TEST(after.cuts == before.cuts + 2);
  BOOST_TEST(after.heals == before.heals + 2);
  BOOST_TEST(after.expired == before.expired);
  BOOST_TEST(link.guest_events.count() == 1u);
  BOOST_TEST(link.service_events.count() == 1u);
}

// Nobody calls heal(): the lease runs out and the link comes back by itself.
BOOST_AUTO_TEST_CASE(an_expired_lease_heals_the_cut_by_itself) {
  HealOnExit guard;
  auto& f = LinkFaults::instance();
  const auto before = f.counters();
  Link link("g0/vhba1");
  BOOST_REQUIRE(round_trips(*link.guest, *link.service, 0, 10));

  const auto cut_at = Clock::now();
  const auto lease_until = cut_at + 400ms;
  partition_ab(lease_until);
  const auto deadline = Clock::now() + 5s;
  for (std::uint64_t i = 10; i < 15; ++i) BOOST_REQUIRE(insert_until(link.guest->channel().queue(kCmd), make(i), deadline));
  const auto g = link.guest_events.wait(0, 2s);
  const auto v = link.service_events.wait(0, 2s);
  BOOST_REQUIRE(g);
  BOOST_REQUIRE(v);
  BOOST_TEST(ms_between(cut_at, g->second) <= kDetectBound);
  BOOST_TEST(ms_between(cut_at, v->second) <= kDetectBound);

  // The service end re-attaches as soon as the lease is over, not before.
  link.service->reattach(link.guest->address(), 5s);
  const auto back_at = Clock::now();
  BOOST_TEST((back_at >= lease_until));
  BOOST_TEST_MESSAGE("re-attached " << ms_between(lease_until, back_at).count() << " ms after the lease ran out");
  BOOST_TEST(ms_between(lease_until, back_at) < 1s);
  BOOST_TEST(!f.is_cut("a"));
  BOOST_TEST(!f.is_cut("b"));
  BOOST_REQUIRE(link.guest->wait_connected(2s));
  Signal s;
  for (std::uint64_t i = 10; i < 15; ++i) {
    BOOST_REQUIRE(remove_until(link.service->channel().queue(kCmd), s, deadline));
    BOOST_TEST(s.seq == i);
    BOOST_REQUIRE(insert_until(link.service->channel().queue(kRsp), s, deadline));
    BOOST_REQUIRE(remove_until(link.guest->channel().queue(kRsp), s, deadline));
    BOOST_TEST(s.seq == i);
  }
  BOOST_TEST(round_trips(*link.guest, *link.service, 15, 50));

  // The timer did the bookkeeping: two expired leases, no heal() counted.
  const auto until = Clock::now() + 2s;
  while (f.counters().expired < before.expired + 2 && Clock::now() < until) std::this_thread::sleep_for(1ms);
  BOOST_TEST(f.counters().expired == before.expired + 2);
  BOOST_TEST(f.counters().heals == before.heals);
  BOOST_TEST(f.cut_hosts().empty());
}

// A cut shorter than the detection bound is a hiccup, not a failure: no
// event, and what was written during it (signals and data-area bytes) was
// queued and arrives afterwards, in order.
BOOST_AUTO_TEST_CASE(a_cut_shorter_than_the_bound_raises_nothing_and_loses_nothing) {
  HealOnExit guard;
  Link link("g0/vhba2");
  BOOST_REQUIRE(round_trips(*link.guest, *link.service, 0, 10));
  partition_ab(Clock::now() + 30s);
  const auto deadline = Clock::now() + 5s;
  const char note[] = "written during a hiccup";
  BOOST_REQUIRE(link.guest->channel().write(12000, note, sizeof note) == 0);
  for (std::uint64_t i = 10; i < 20; ++i) BOOST_REQUIRE(insert_until(link.guest->channel().queue(kCmd), make(i), deadline));
  BOOST_TEST(stays_empty(link.service->channel().queue(kCmd), 20ms));
  heal_ab();
  Signal s;
  for (std::uint64_t i = 10; i < 20; ++i) {
    BOOST_REQUIRE(remove_until(link.service->channel().queue(kCmd), s, deadline));
    BOOST_TEST(s.seq == i);
  }
  char seen[sizeof note] = {};
  BOOST_REQUIRE(link.service->channel().read(12000, seen, sizeof seen) == 0);
  BOOST_TEST(std::string(seen) == note);
  BOOST_TEST(round_trips(*link.guest, *link.service, 20, 100));
  std::this_thread::sleep_for(150ms);  // past the bound: still nothing
  BOOST_TEST(link.guest_events.count() == 0u);
  BOOST_TEST(link.service_events.count() == 0u);
  BOOST_TEST(link.guest->connected());
}

BOOST_AUTO_TEST_CASE(cutting_host_c_leaves_the_a_b_link_alone) {
  HealOnExit guard;
  Link link("g0/vhba3");
  LinkFaults::instance().cut("c", Clock::now() + 30s);
  BOOST_TEST(LinkFaults::instance().is_cut("c"));
  BOOST_TEST(!link.guest->link_cut());
  BOOST_TEST(!link.service->link_cut());
  // Traffic for well past the detection bound.
  const auto until = Clock::now() + 300ms;
  std::uint64_t n = 0;
  for (int round = 0; round < 10000 && Clock::now() < until; ++round, n += 10)
    BOOST_REQUIRE(round_trips(*link.guest, *link.service, n, 10));
  std::this_thread::sleep_for(150ms);  // and idle past it: heartbeats keep flowing
  BOOST_TEST(round_trips(*link.guest, *link.service, n, 10));
  BOOST_TEST(link.guest_events.count() == 0u);
  BOOST_TEST(link.service_events.count() == 0u);
  BOOST_TEST(link.guest->connected());
  BOOST_TEST(link.service->connected());
  LinkFaults::instance().heal("c");
}

// Destroying an endpoint behind a cut: it leaves the registry at once (the cut
// stays, it belongs to the host); its peer hears a silent peer, not a clean
// close, since not even the close crosses the cut.
BOOST_AUTO_TEST_CASE(an_endpoint_destroyed_while_cut_leaves_no_registry_entry) {
  HealOnExit guard;
  auto& f = LinkFaults::instance();
  Link link("g0/vhba4");
  BOOST_REQUIRE(round_trips(*link.guest, *link.service, 0, 5));
  BOOST_TEST(f.endpoint_count("a") == 1u);
  BOOST_TEST(f.endpoint_count("b") == 1u);
  const auto cut_at = Clock::now();
  partition_ab(cut_at + 30s);
  link.service.reset();
  BOOST_TEST(f.endpoint_count("a") == 0u);
  BOOST_TEST(f.is_cut("a"));  // the host stays cut
  const auto g = link.guest_events.wait(0, 2s);
  BOOST_REQUIRE(g);
  BOOST_TEST(static_cast<int>(g->first.code) == static_cast<int>(tcp::EventCode::partner_failed));
  BOOST_TEST(ms_between(cut_at, g->second) <= kDetectBound);
  link.guest.reset();
  BOOST_TEST(f.endpoint_count("b") == 0u);
  heal_ab();
  const auto hosts = f.known_hosts();
  BOOST_TEST((std::find(hosts.begin(), hosts.end(), "a") == hosts.end()));
  BOOST_TEST((std::find(hosts.begin(), hosts.end(), "b") == hosts.end()));
}

// A service end cannot even attach to a guest behind a cut.
BOOST_AUTO_TEST_CASE(attaching_through_a_cut_fails_saying_why) {
  HealOnExit guard;
  tcp::LinkOptions on_a, on_b;
  on_a.peer_host = "b";
  on_b.peer_host = "a";
  on_b.handshake_timeout = 200ms;
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "g0/vhba5", spec(), tcp::Side::guest, kProducers, on_a);
  partition_ab(Clock::now() + 30s);
  try {
    tcp::TcpEndpoint::attach(guest->address(), "g0/vhba5", expect(), tcp::Side::service, kProducers, on_b);
    BOOST_FAIL("attached through a cut");
  } catch (const tcp::HandshakeError& e) {
    BOOST_TEST(std::string(e.what()).find("is cut") != std::string::npos, e.what());
  }
  BOOST_TEST(LinkFaults::instance().endpoint_count("a") == 0u);  // the failed endpoint left no entry
  heal_ab();
  auto service = tcp::TcpEndpoint::attach(guest->address(), "g0/vhba5", expect(), tcp::Side::service, kProducers, on_b);
  BOOST_TEST(guest->wait_connected(2s));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(channel_end)

// The service side re-attaches through ChannelEnd without knowing the backing.
BOOST_AUTO_TEST_CASE(reconnect_brings_a_tcp_end_back_after_a_cut) {
  HealOnExit guard;
  Events guest_events, service_events;
  const ch::Placement p{"a", "b"};
  auto guest = ch::open_guest_end(p, "g1/vhba0", spec(), kProducers, guest_events.handler());
  const auto at = ch::listen_address(*guest);
  BOOST_REQUIRE(at);
  auto service = ch::open_service_end(p, "g1/vhba0", expect(), kProducers, *at, service_events.handler());
  BOOST_TEST(guest->reconnect(2s));  // up: true at once
  BOOST_TEST(service->reconnect(0ms));
  BOOST_TEST(LinkFaults::instance().endpoint_count("a") == 1u);
  BOOST_TEST(LinkFaults::instance().endpoint_count("b") == 1u);

  const auto deadline = Clock::now() + 10s;
  partition_ab(Clock::now() + 300ms);  // healed by the lease
  BOOST_REQUIRE(insert_until(guest->channel().queue(kCmd), make(7), deadline));
  BOOST_REQUIRE(guest_events.wait(0, 2s));
  BOOST_REQUIRE(service_events.wait(0, 2s));
  BOOST_TEST(service->reconnect(5s));
  BOOST_TEST(guest->reconnect(2s));
  Signal s;
  BOOST_REQUIRE(remove_until(service->channel().queue(kCmd), s, deadline));
  BOOST_TEST(s.seq == 7u);
  BOOST_REQUIRE(insert_until(service->channel().queue(kRsp), s, deadline));
  BOOST_REQUIRE(remove_until(guest->channel().queue(kRsp), s, deadline));
  BOOST_TEST(s.seq == 7u);
}

BOOST_AUTO_TEST_CASE(shared_memory_has_nothing_to_reconnect) {
  const std::string name = "g1/lf" + std::to_string(::getpid());
  auto guest = ch::create_shared_end(name, spec());
  BOOST_TEST(!guest->reconnect(10ms));
}

BOOST_AUTO_TEST_SUITE_END()

// Warnings a cut repeats every few milliseconds are logged once a period,
// with how many were left out.
BOOST_AUTO_TEST_CASE(a_log_throttle_lets_one_through_per_period_and_counts_the_rest) {
  visorlab::channel::LogThrottle throttle(std::chrono::milliseconds(50));
  std::uint64_t left_out = 99;
  BOOST_TEST(throttle.allow(left_out));
  BOOST_TEST(left_out == 0u);
  for (int i = 0; i < 3; ++i) BOOST_TEST(!throttle.allow(left_out));
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  BOOST_TEST(throttle.allow(left_out));
  BOOST_TEST(left_out == 3u);
  BOOST_TEST(!throttle.allow(left_out));
}
