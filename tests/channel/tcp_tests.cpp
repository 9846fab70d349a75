// TCP-backed channels on loopback: same semantics as shared memory, transport
// events for each way a peer can go, handshake refusals, hostile input.
// Every wait is bounded.
#define BOOST_TEST_MODULE channel_tcp
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "tests/channel/two_queue_channel.hpp"
#include "tests/support/run.hpp"

using namespace visorlab::test::two_queue;
using namespace std::chrono_literals;

namespace {

const tcp::Address kLoopback{"127.0.0.1", 0};

// Transport events seen by one endpoint, waitable from the test thread.
struct Events {
  std::mutex m;
  std::vector<tcp::Event> seen;
  Clock::time_point first_at;
  tcp::TcpEndpoint::EventHandler handler() {
    return [this](const tcp::Event& e) {
      std::lock_guard lock(m);
      if (seen.empty()) first_at = Clock::now();
      seen.push_back(e);
    };
  }
  std::optional<tcp::Event> wait(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      {
        std::lock_guard lock(m);
        if (!seen.empty()) return seen.front();
      }
      std::this_thread::sleep_for(1ms);
    }
    return std::nullopt;
  }
};

// The service end in a process of its own (tcp_peer.cpp), killed and reaped
// whatever way the test ends: a child left running would hold CTest's output
// pipe open until its timeout.
struct Peer {
  pid_t pid;
  explicit Peer(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {visorlab::test::bin("channel_tcp_peer")};
    argv.insert(argv.end(), args.begin(), args.end());
    pid = visorlab::test::spawn(argv);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  ~Peer() {
    if (pid > 0) kill(pid, SIGKILL);
    reap();
  }
  // Waits for it to end: its exit code, -1 if a signal ended it.
  int reap() {
    int status = 0;
    if (pid <= 0 || waitpid(pid, &status, 0) != pid) return -1;
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
};

std::string at(const tcp::Address& a) { return a.host + ":" + std::to_string(a.port); }

}  // namespace

BOOST_AUTO_TEST_SUITE(streaming)

BOOST_AUTO_TEST_CASE(numbered_signals_cross_and_come_back_in_order) {
  constexpr std::uint64_t kCount = 20000;
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "g0/vhba0", spec(), tcp::Side::guest, kProducers);
  auto service = tcp::TcpEndpoint::attach(guest->address(), "g0/vhba0", expect(), tcp::Side::service, kProducers);
  BOOST_REQUIRE(guest->wait_connected(2s));
  const auto deadline = Clock::now() + 60s;

  std::atomic<int> echo_result{-1};
  std::thread server([&] { echo_result = echo(service->channel(), 0, kCount, deadline); });
  std::uint64_t received = 0, errors = 0;
  Signal s;
  for (std::uint64_t sent = 0; (sent < kCount || received < kCount) && Clock::now() < deadline;) {
    if (sent < kCount) {
      const Signal out = make(sent);
      if (guest->channel().queue(kCmd).insert(&out) == 0) ++sent;
    }
    while (guest->channel().queue(kRsp).remove(&s) == 0) {
      if (s.seq != received || !intact(s)) ++errors;
      ++received;
    }
  }
  server.join();
  BOOST_TEST(echo_result == 0);
  BOOST_TEST(received == kCount);
  BOOST_TEST(errors == 0u);
  // Counters converge on both copies once the last index arrived.
  const auto until = Clock::now() + 2s;
  while ((guest->channel().queue_header(kCmd).num_received != kCount ||
          service->channel().queue_header(kRsp).num_received != kCount) &&
         Clock::now() < until)
    std::this_thread::sleep_for(1ms);
  BOOST_TEST(+guest->channel().queue_header(kCmd).num_received == kCount);
  BOOST_TEST(+service->channel().queue_header(kRsp).num_received == kCount);
  BOOST_TEST(+service->channel().queue_header(kCmd).num_sent == kCount);
}

BOOST_AUTO_TEST_CASE(full_and_empty_answer_as_in_shared_memory) {
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "c", spec(8), tcp::Side::guest, kProducers);
  auto service = tcp::TcpEndpoint::attach(guest->address(), "c", expect(), tcp::Side::service, kProducers);
  BOOST_REQUIRE(guest->wait_connected(2s));
  Signal s = make(0);
  BOOST_TEST(service->channel().queue(kCmd).remove(&s) == -EAGAIN);
  for (std::uint64_t i = 0; i < 7; ++i) {
    s = make(i);
    BOOST_REQUIRE(guest->channel().queue(kCmd).insert(&s) == 0);
  }
  BOOST_TEST(guest->channel().queue(kCmd).insert(&s) == -EIO);  // the peer has consumed nothing
  BOOST_TEST(+guest->channel().queue_header(kCmd).num_overflows == 1u);
  Signal got;
  BOOST_REQUIRE(remove_until(service->channel().queue(kCmd), got, Clock::now() + 2s));
  BOOST_TEST(got.seq == 0u);
  // The tail came back: the guest can insert again.
  const auto until = Clock::now() + 2s;
  const Signal marker = make(100);
  while (guest->channel().queue(kCmd).insert(&marker) != 0 && Clock::now() < until) std::this_thread::sleep_for(1ms);
  BOOST_TEST((Clock::now() < until));

  do {  // drain 1..6 and the marker
    BOOST_REQUIRE(remove_until(service->channel().queue(kCmd), got, Clock::now() + 2s));
  } while (got.seq != 100);

  // A data-area write is visible to the peer no later than the next signal.
  const char note[] = "hello";
  BOOST_REQUIRE(guest->channel().write(12000, note, sizeof note) == 0);
  const Signal after = make(101);
  const auto until2 = Clock::now() + 2s;
  while (guest->channel().queue(kCmd).insert(&after) != 0 && Clock::now() < until2) std::this_thread::sleep_for(1ms);
  BOOST_REQUIRE(remove_until(service->channel().queue(kCmd), got, Clock::now() + 2s));
  BOOST_TEST(got.seq == 101u);
  char seen[sizeof note] = {};
  BOOST_REQUIRE(service->channel().read(12000, seen, sizeof seen) == 0);
  BOOST_TEST(std::string(seen) == "hello");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(transport_events)

BOOST_AUTO_TEST_CASE(clean_close_is_deregistered) {
  Events events;
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "c", spec(), tcp::Side::guest, kProducers, {}, events.handler());
  auto service = tcp::TcpEndpoint::attach(guest->address(), "c", expect(), tcp::Side::service, kProducers);
  BOOST_REQUIRE(guest->wait_connected(2s));
  service.reset();
  const auto e = events.wait(2s);
  BOOST_REQUIRE(e);
  BOOST_TEST(static_cast<int>(e->code) == 0x02);
  BOOST_TEST(!guest->connected());
}

// The service partition is another process, killed with SIGKILL mid-stream;
// a restarted one re-attaches, gets the guest's image, and the signals the
// guest had queued and nobody consumed are still there.
BOOST_AUTO_TEST_CASE(killed_peer_is_partner_failed_and_a_restart_reattaches) {
  Events events;
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "g1/vhba0", spec(), tcp::Side::guest, kProducers, {},
                                       events.handler());
  const std::string address = at(guest->address());
  // First service partition echoes 10 commands, then sits until killed.
  Peer first({"--echo", "10", "--then", "stall", address, "g1/vhba0"});
  BOOST_REQUIRE(guest->wait_connected(5s));
  const auto deadline = Clock::now() + 30s;
  Signal s;
  for (std::uint64_t i = 0; i < 10; ++i) BOOST_REQUIRE(insert_until(guest->channel().queue(kCmd), make(i), deadline));
  for (std::uint64_t i = 0; i < 10; ++i) {
    BOOST_REQUIRE(remove_until(guest->channel().queue(kRsp), s, deadline));
    BOOST_REQUIRE(s.seq == i);
  }
  // Five more commands queued that the dying partition never takes.
  for (std::uint64_t i = 10; i < 15; ++i) BOOST_REQUIRE(insert_until(guest->channel().queue(kCmd), make(i), deadline));
  std::this_thread::sleep_for(20ms);
  const auto killed_at = Clock::now();
  kill(first.pid, SIGKILL);
  first.reap();
  const auto e = events.wait(2s);
  BOOST_REQUIRE(e);
  BOOST_TEST(static_cast<int>(e->code) == 0x01);
  const auto detect_ms = std::chrono::duration_cast<std::chrono::milliseconds>(events.first_at - killed_at).count();
  BOOST_TEST_MESSAGE("kill -9 detected after " << detect_ms << " ms: " << e->reason);
  BOOST_TEST(detect_ms < 1000);

  // A restarted partition re-attaches and continues from the guest's image:
  // commands 10..14 were queued before the crash and must still arrive, then 15..19.
  Peer second({"--first", "10", "--echo", "10", "--then", "exit", address, "g1/vhba0"});
  BOOST_REQUIRE(guest->wait_connected(5s));
  for (std::uint64_t i = 15; i < 20; ++i) BOOST_REQUIRE(insert_until(guest->channel().queue(kCmd), make(i), deadline));
  for (std::uint64_t i = 10; i < 20; ++i) {
    BOOST_REQUIRE(remove_until(guest->channel().queue(kRsp), s, deadline));
    BOOST_TEST(s.seq == i);
  }
  BOOST_TEST(second.reap() == 0);
}

// A frozen peer (SIGSTOP) says nothing: the heartbeat timeout declares it failed.
BOOST_AUTO_TEST_CASE(silent_peer_is_partner_failed_after_the_heartbeat_timeout) {
  Events events;
  tcp::LinkOptions options;
  options.detect_timeout = 80ms;
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "c", spec(), tcp::Side::guest, kProducers, options, events.handler());
  Peer child({"--echo", "0", "--then", "stall", at(guest->address()), "c"});
  BOOST_REQUIRE(guest->wait_connected(5s));
  std::this_thread::sleep_for(300ms);  // heartbeats flow: no event yet
  BOOST_TEST(!events.wait(0ms));
  const auto stopped_at = Clock::now();
  kill(child.pid, SIGSTOP);
  const auto e = events.wait(2s);
  BOOST_REQUIRE(e);
  BOOST_TEST(static_cast<int>(e->code) == 0x01);
  BOOST_TEST(e->reason.find("no heartbeat") != std::string::npos, e->reason);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(events.first_at - stopped_at).count();
  BOOST_TEST_MESSAGE("frozen peer detected after " << ms << " ms");
  BOOST_TEST(ms >= 70);  // not before the timeout: no false alarm
}

// A whole machine paused (a stalled VM: both ends stopped at once, 600 ms,
// three times the bound) raises nothing on either end, even when one
// resumes a little before the other: a link thread that did not run does not
// count the peer's silence over that time.
BOOST_AUTO_TEST_CASE(both_ends_paused_together_raise_no_event) {
  tcp::LinkOptions options;
  options.detect_timeout = 200ms;  // loose: a loaded CI machine schedules late after a stop
  int port_pipe[2], ready_pipe[2], verdict_pipe[2];
  BOOST_REQUIRE(pipe(port_pipe) == 0 && pipe(ready_pipe) == 0 && pipe(verdict_pipe) == 0);
  // Each end counts events other than a clean close until 2 s after it
  // connected, says whether it saw any, and stays up until killed: an end
  // that exited first would show its peer a reset inside the peer's window.
  auto exit_after_watching = [&](const std::atomic<int>& raised) {
    std::this_thread::sleep_for(2000ms);  // steady: the stop counts in it
    const char verdict = raised == 0 ? 0 : 1;
    if (write(verdict_pipe[1], &verdict, 1) != 1) _exit(3);
    for (;;) pause();
  };
  const pid_t guest = fork();
  if (guest == 0) {
    std::atomic<int> raised{0};
    auto end = tcp::TcpEndpoint::serve(kLoopback, "p", spec(), tcp::Side::guest, kProducers, options,
                                       [&](const tcp::Event& e) { raised += e.code != tcp::EventCode::deregistered; });
    const std::uint16_t port = end->address().port;
    if (write(port_pipe[1], &port, sizeof port) != sizeof port || !end->wait_connected(5s)) _exit(3);
    exit_after_watching(raised);
  }
  std::uint16_t port = 0;
  BOOST_REQUIRE(read(port_pipe[0], &port, sizeof port) == sizeof port);
  const pid_t service = fork();
  if (service == 0) {
    std::atomic<int> raised{0};
    try {
      auto end = tcp::TcpEndpoint::attach({"127.0.0.1", port}, "p", expect(), tcp::Side::service, kProducers, options,
                                          [&](const tcp::Event& e) { raised += e.code != tcp::EventCode::deregistered; });
      const char ready = 1;
      if (write(ready_pipe[1], &ready, 1) != 1) _exit(3);
      exit_after_watching(raised);
    } catch (...) {
    }
    _exit(3);
  }
  char ready = 0;
  BOOST_REQUIRE(read(ready_pipe[0], &ready, 1) == 1);
  std::this_thread::sleep_for(200ms);  // heartbeats flow
  kill(guest, SIGSTOP);
  kill(service, SIGSTOP);
  std::this_thread::sleep_for(600ms);
  // The service end runs first and finds the guest silent for 600 ms; the
  // guest's heartbeat comes a little later (well within the bound).
  kill(service, SIGCONT);
  std::this_thread::sleep_for(10ms);
  kill(guest, SIGCONT);
  char verdicts[2] = {1, 1};
  for (char& v : verdicts) BOOST_TEST(read(verdict_pipe[0], &v, 1) == 1);
  kill(service, SIGKILL);
  kill(guest, SIGKILL);
  waitpid(service, nullptr, 0);
  waitpid(guest, nullptr, 0);
  BOOST_TEST(verdicts[0] == 0, "an end raised an event");
  BOOST_TEST(verdicts[1] == 0, "an end raised an event");
  for (int fd : {port_pipe[0], port_pipe[1], ready_pipe[0], ready_pipe[1], verdict_pipe[0], verdict_pipe[1]}) close(fd);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(handshake)

BOOST_AUTO_TEST_CASE(wrong_type_name_and_second_peer_are_refused_with_reasons) {
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "g0/vnic0", spec(), tcp::Side::guest, kProducers);
  auto other = expect();
  other.type = ch::guids::vnic;
  try {
    tcp::TcpEndpoint::attach(guest->address(), "g0/vnic0", other, tcp::Side::service, kProducers);
    BOOST_FAIL("attach with the wrong type succeeded");
  } catch (const tcp::HandshakeError& e) {
    BOOST_TEST(std::string(e.what()).find("channel type") != std::string::npos, e.what());
  }
  try {
    tcp::TcpEndpoint::attach(guest->address(), "g9/vnic0", expect(), tcp::Side::service, kProducers);
    BOOST_FAIL("attach by the wrong name succeeded");
  } catch (const tcp::HandshakeError& e) {
    BOOST_TEST(std::string(e.what()).find("no channel named 'g9/vnic0'") != std::string::npos, e.what());
  }
  try {
    tcp::TcpEndpoint::attach(guest->address(), "g0/vnic0", expect(), tcp::Side::guest, kProducers);
    BOOST_FAIL("two guests on one channel");
  } catch (const tcp::HandshakeError& e) {
    BOOST_TEST(std::string(e.what()).find("same side") != std::string::npos, e.what());
  }
  auto first = tcp::TcpEndpoint::attach(guest->address(), "g0/vnic0", expect(), tcp::Side::service, kProducers);
  BOOST_REQUIRE(guest->wait_connected(2s));
  try {
    tcp::TcpEndpoint::attach(guest->address(), "g0/vnic0", expect(), tcp::Side::service, kProducers);
    BOOST_FAIL("a second live peer was accepted");
  } catch (const tcp::HandshakeError& e) {
    BOOST_TEST(std::string(e.what()).find("already has a live peer") != std::string::npos, e.what());
  }
  BOOST_TEST(guest->connected());  // the first peer is untouched
}

BOOST_AUTO_TEST_SUITE_END()

// The kernel's back-off (LinkOptions::idle_after), scaled down: 10 ms beats
// and a 200 ms bound while data moves; after 300 ms without data a 1 s
// bound, and from 1.3 s 50 ms beats — one link per peer process carrying them.
BOOST_AUTO_TEST_SUITE(idle_backoff)

tcp::LinkOptions backoff_options() {
  tcp::LinkOptions o;
  o.heartbeat_interval = 10ms;
  o.detect_timeout = 200ms;  // loose: sanitizers and a loaded CI machine schedule late
  o.idle_heartbeat_interval = 50ms;
  o.idle_after = 300ms;
  return o;
}
constexpr auto kIdleBound = 1000ms;  // 200 ms × 50 / 10

// A peer process that attaches to every channel served at `addresses`, then
// echoes what comes on the last one (polling once a millisecond) until killed.
std::vector<std::string> echo_forever(const std::vector<tcp::Address>& addresses,
                                      const std::vector<std::string>& names,
                                      const tcp::LinkOptions& options = backoff_options()) {
  auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()); };
  std::vector<std::string> args = {"--detect-ms",     ms(options.detect_timeout), "--idle-beat-ms",
                                   ms(options.idle_heartbeat_interval), "--idle-after-ms",
                                   ms(options.idle_after), "--echo", "forever"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    args.push_back(at(addresses[i]));
    args.push_back(names[i]);
  }
  return args;
}

// Voluntary context switches per thread of `pid` over `window`.
std::vector<long> wakes_per_thread(pid_t pid, std::chrono::milliseconds window) {
  auto read_all = [&] {
    std::map<std::string, long> out;
    for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
      std::ifstream in(t.path() / "status");
      for (std::string line; std::getline(in, line);)
        if (line.starts_with("voluntary_ctxt_switches:")) out[t.path().filename()] = std::stol(line.substr(24));
    }
    return out;
  };
  const auto before = read_all();
  std::this_thread::sleep_for(window);
  std::vector<long> wakes;
  for (const auto& [tid, n] : read_all())
    if (const auto it = before.find(tid); it != before.end()) wakes.push_back(n - it->second);
  return wakes;
}

BOOST_AUTO_TEST_CASE(an_idle_link_forgives_a_longer_silence) {
  Events events;
  auto guest = tcp::TcpEndpoint::serve(kLoopback, "c", spec(), tcp::Side::guest, kProducers, backoff_options(),
                                       events.handler());
  const Peer child(echo_forever({guest->address()}, {"c"}));
  BOOST_REQUIRE(guest->wait_connected(5s));
  std::this_thread::sleep_for(1600ms);  // idle: the bound is 1 s, the beat 50 ms
  BOOST_TEST(!events.wait(0ms));
  const auto stopped_at = Clock::now();
  kill(child.pid, SIGSTOP);
  const auto e = events.wait(4s);
  BOOST_REQUIRE(e);
  BOOST_TEST(e->reason.find("no heartbeat") != std::string::npos, e->reason);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(events.first_at - stopped_at).count();
  BOOST_TEST_MESSAGE("frozen idle peer detected after " << ms << " ms");
  BOOST_TEST(ms >= (kIdleBound - 100ms).count());  // the idle bound, not the busy one
  BOOST_TEST(ms <= 3000);                          // and not never
}

// A link that backed off, then lost its peer: the next peer's link starts
// busy on both ends (the new peer judges by the busy bound at once).
BOOST_AUTO_TEST_CASE(a_new_peer_after_an_idle_one_finds_a_busy_link) {
  Events events;
  // Slow beats (200 ms) longer than the busy bound (150 ms), as in the product.
  tcp::LinkOptions options = backoff_options();
  options.detect_timeout = 150ms;
  options.idle_heartbeat_interval = 200ms;
  auto guest =
      tcp::TcpEndpoint::serve(kLoopback, "c", spec(), tcp::Side::guest, kProducers, options, events.handler());
  {
    const Peer first(echo_forever({guest->address()}, {"c"}, options));
    BOOST_REQUIRE(guest->wait_connected(5s));
    std::this_thread::sleep_for(1600ms);  // the guest end beats slowly now
  }
  BOOST_REQUIRE(events.wait(2s));  // the reset
  const Peer second(echo_forever({guest->address()}, {"c"}, options));
  const auto deadline = Clock::now() + 5s;
  while (!guest->connected() && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
  BOOST_REQUIRE(guest->connected());
  std::this_thread::sleep_for(600ms);  // the new peer would have dropped a slow link by now
  BOOST_TEST(guest->connected());
  std::lock_guard lock(events.m);
  BOOST_TEST(events.seen.size() == 1u);
}

BOOST_AUTO_TEST_CASE(links_to_one_process_share_one_beat_and_fall_together) {
  const tcp::LinkOptions options = backoff_options();
  std::array<Events, 3> events;
  std::vector<std::unique_ptr<tcp::TcpEndpoint>> guests;
  std::vector<tcp::Address> addresses;
  const std::vector<std::string> names = {"a", "b", "c"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    guests.push_back(tcp::TcpEndpoint::serve(kLoopback, names[i], spec(), tcp::Side::guest, kProducers,
                                             options, events[i].handler()));
    addresses.push_back(guests.back()->address());
  }
  const Peer child(echo_forever(addresses, names, options));
  for (auto& g : guests) BOOST_REQUIRE(g->wait_connected(5s));
  std::this_thread::sleep_for(1600ms);  // all three back off
  // The child's threads: its main thread polls "c" every millisecond; of
  // the three link threads one beats (~20 wakes a second, a beat and the
  // answer), the other two sleep.
  auto wakes = wakes_per_thread(child.pid, 1000ms);
  std::sort(wakes.begin(), wakes.end(), std::greater<>());
  BOOST_REQUIRE(wakes.size() >= 4);
  BOOST_TEST_MESSAGE("child's wakes per thread in 1 s: " << wakes[0] << " " << wakes[1] << " " << wakes[2] << " "
                                                          << wakes[3]);
  BOOST_TEST(wakes[1] >= 5);   // the beat goes on
  BOOST_TEST(wakes[2] <= 3);   // on one link only
  for (auto& e : events) BOOST_TEST(!e.wait(0ms));

  // Data on a link that shares goes at once, and the link stays up as it
  // speeds up again (the peer end starts beating before the bound tightens).
  ch::Channel& c = guests[2]->channel();
  Signal s;
  std::chrono::microseconds worst{0};
  for (std::uint64_t i = 0; i < 50; ++i) {
    const auto sent = Clock::now();
    BOOST_REQUIRE(insert_until(c.queue(kCmd), make(i), sent + 2s));
    BOOST_REQUIRE(remove_until(c.queue(kRsp), s, sent + 2s));
    BOOST_TEST(s.seq == i);
    worst = std::max(worst, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent));
    std::this_thread::sleep_for(20ms);
  }
  BOOST_TEST_MESSAGE("worst round trip on a link that had backed off: " << worst.count() << " us");
  BOOST_TEST((worst < 200ms));  // going at all (the child pulls every millisecond)
  for (auto& e : events) BOOST_TEST(!e.wait(0ms));  // and staying up as both ends speed up

  std::this_thread::sleep_for(1600ms);  // idle again
  const auto stopped_at = Clock::now();
  kill(child.pid, SIGSTOP);
  for (auto& e : events) {
    const auto got = e.wait(8s);
    BOOST_REQUIRE(got);
    BOOST_TEST(static_cast<int>(got->code) == 0x01);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(e.first_at - stopped_at).count();
    BOOST_TEST_MESSAGE("link dropped " << ms << " ms after the peer froze: " << got->reason);
    BOOST_TEST(ms >= (kIdleBound - 100ms).count());
  }
}

BOOST_AUTO_TEST_SUITE_END()
