// No false transport event under load: a guest and its service partition
// stream at full speed between two processes for 60 s (VISORLAB_SOAK_SECONDS
// overrides) while a third thread burns CPU, on a 2-core machine, with the
// default detection bound. Any transport event on either side fails it —
// unless a CPU of the machine itself stalled for most of the bound just
// before it (a hypervisor's steal; tests/support/stall_probe.hpp), which no
// design of ours could have ridden out.
#define BOOST_TEST_MODULE channel_tcp_soak
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "channel/tcp/tcp_endpoint.hpp"
#include "tests/support/stall_probe.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};

std::chrono::seconds soak_duration() {
  const char* env = std::getenv("VISORLAB_SOAK_SECONDS");
  return std::chrono::seconds(env ? std::max(1, std::atoi(env)) : 60);
}

}  // namespace

BOOST_AUTO_TEST_CASE(loaded_stream_raises_no_transport_event) {
  const auto duration = soak_duration();
  ch::ChannelSpec spec;
  spec.queues = {{64, 256}, {64, 256}};
  std::atomic<int> events{0};
  std::string first_reason;
  std::atomic<Clock::rep> first_at{0};
  auto guest = tcp::TcpEndpoint::serve({"127.0.0.1", 0}, "soak", spec, tcp::Side::guest, kProducers, {},
                                       [&](const tcp::Event& e) {
                                         if (events++ == 0) {
                                           first_reason = e.reason;
                                           first_at = Clock::now().time_since_epoch().count();
                                         }
                                       });
  const auto at = guest->address();
  const pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::atomic<int> child_events{0};
    std::atomic<int> first_code{0};
    int code = 0;
    try {
      auto service = tcp::TcpEndpoint::attach(at, "soak", ch::Expect{.queue_count = 2}, tcp::Side::service,
                                              kProducers, {}, [&](const tcp::Event& e) {
                                                if (child_events++ == 0) first_code = static_cast<int>(e.code);
                                              });
      auto& c = service->channel();
      std::uint8_t sig[64];
      const auto until = Clock::now() + duration + 10s;
      while (Clock::now() < until && service->connected()) {
        if (c.queue(0).remove(sig) == 0)
          while (c.queue(1).insert(sig) != 0 && Clock::now() < until && service->connected()) {
          }
      }
      // The handler runs just after the link is marked down: give it a moment.
      for (int i = 0; i < 200 && child_events == 0; ++i) std::this_thread::sleep_for(5ms);
      // 0: the only event was the guest's clean close; 1: anything else.
      code = (child_events == 1 && first_code == 0x02) ? 0 : 1;
    } catch (...) {
      code = 2;
    }
    _exit(code);
  }
  BOOST_REQUIRE(guest->wait_connected(10s));

  const visorlab::test::StallProbe machine;
  // A CPU hog beside the stream: the link threads must still get their turn.
  std::atomic<bool> stop{false};
  std::thread hog([&] {
    volatile std::uint64_t x = 0;
    while (!stop) x = x + 1;
  });
  auto& c = guest->channel();
  std::uint64_t sent = 0, got = 0, bad = 0;
  std::uint8_t sig[64] = {};
  const auto until = Clock::now() + duration;
  while (Clock::now() < until && events == 0) {
    std::memcpy(sig, &sent, 8);
    if (c.queue(0).insert(sig) == 0) ++sent;
    while (c.queue(1).remove(sig) == 0) {
      std::uint64_t seq;
      std::memcpy(&seq, sig, 8);
      if (seq != got++) ++bad;
    }
  }
  stop = true;
  hog.join();
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  BOOST_TEST_MESSAGE("soak: " << duration.count() << " s, " << got << " round trips, " << events << " events; "
                              << (machine.realtime() ? "" : "no real-time probe, ") << "worst CPU stall "
                              << duration_cast<milliseconds>(machine.worst()).count() << " ms");
  // A silence the machine made: a CPU stalled for most of the bound in the
  // bound before the event.
  const tcp::LinkOptions defaults;
  const auto event_at = Clock::time_point(Clock::duration(first_at.load()));
  const auto stall = machine.worst_between(event_at - defaults.detect_timeout - defaults.heartbeat_interval, event_at);
  const bool machine_stalled = events > 0 && stall >= defaults.detect_timeout - 3 * defaults.heartbeat_interval;
  if (machine_stalled)
    BOOST_TEST_MESSAGE("the event (" << first_reason << ") followed a " << duration_cast<milliseconds>(stall).count()
                                     << " ms stall of a CPU: the machine's, not the link's");
  BOOST_TEST((events == 0 || machine_stalled), "transport event under load: " << first_reason);
  BOOST_TEST(bad == 0u);
  BOOST_TEST(got > 0u);
  guest.reset();  // deregisters: the child leaves its loop
  int status = 0;
  BOOST_REQUIRE(waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFEXITED(status));
  if (!machine_stalled) BOOST_TEST(WEXITSTATUS(status) == 0);  // it heard exactly the deregistration
}
