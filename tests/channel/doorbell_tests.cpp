// Doorbells: a consumer asleep on its channel's doorbell is woken by the
// peer's publish — through shared memory on one host, through the link
// thread's apply over TCP — and never misses one published while it was
// getting ready to sleep. Every sleep here is bounded by 10 s; a wake-up
// that comes from the bound instead of the publish fails the test.
#define BOOST_TEST_MODULE channel_doorbell
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "channel/doorbell_waiter.hpp"
#include "channel/end/channel_end.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const ch::Guid kType = ch::Guid::make(0xd00b, 1, 2, {3, 4, 5, 6, 7, 8, 9, 10});
const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};
constexpr auto kBound = 10s;  // no test here waits this long unless a ring was missed

ch::ChannelSpec spec() {
  ch::ChannelSpec s;
  s.type = kType;
  s.queues = {{64, 32}, {64, 32}};
  return s;
}

struct Ends {
  explicit Ends(const ch::Placement& p) : name("g0/bell" + std::to_string(::getpid()) + p.service_host) {
    guest = ch::open_guest_end(p, name, spec(), kProducers);
    const auto at = ch::listen_address(*guest);
    service = ch::open_service_end(p, name, ch::Expect{.type = kType, .queue_count = 2}, kProducers,
                                   at.value_or(tcp::Address{}));
  }
  std::string name;
  std::unique_ptr<ch::ChannelEnd> guest, service;
};

// The service end sleeps on its doorbell; the guest publishes 50 ms later.
// Returns how long the sleep lasted.
Clock::duration sleep_until_the_guest_publishes(Ends& e) {
  ch::Doorbell* bell = e.service->channel().doorbell();
  BOOST_REQUIRE(bell != nullptr);
  ch::Doorbell own;
  auto sleep = std::make_unique<ch::DoorbellSleep>(std::vector<ch::Doorbell*>{bell});
  std::uint8_t sig[64] = {};
  BOOST_REQUIRE(e.service->channel().queue(0).remove(sig) != 0);  // nothing yet: sleep
  // Boost.Test is not thread-safe: the sleeping thread only reports back.
  auto slept = std::async(std::launch::async, [&] {
    const auto from = Clock::now();
    const bool could = sleep->wait(own, own.rings.load(), kBound);
    return std::make_pair(could, Clock::now() - from);
  });
  std::this_thread::sleep_for(50ms);
  BOOST_REQUIRE(e.guest->channel().queue(0).insert(sig) == 0);
  const auto [could, took] = slept.get();
  BOOST_TEST(could);
  sleep.reset();
  const auto until = Clock::now() + 5s;  // over TCP the signal is applied just before the ring
  while (e.service->channel().queue(0).remove(sig) != 0 && Clock::now() < until) std::this_thread::yield();
  BOOST_TEST((Clock::now() < until), "the signal that rang never arrived");
  return took;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_sleeper_wakes_on_the_peers_publish_through_shared_memory) {
  BOOST_REQUIRE(ch::DoorbellSleep::available());
  Ends e({"a", "a"});
  BOOST_TEST(e.service->backing() == "shm");
  BOOST_TEST((sleep_until_the_guest_publishes(e) < kBound / 2));
}

BOOST_AUTO_TEST_CASE(a_sleeper_wakes_on_the_peers_publish_over_tcp) {
  Ends e({"a", "b"});
  BOOST_TEST(e.service->backing() == "tcp");
  BOOST_TEST((sleep_until_the_guest_publishes(e) < kBound / 2));
}

// Announced, then the publish, then the sleep: it returns at once.
BOOST_AUTO_TEST_CASE(a_publish_before_the_sleep_begins_is_not_missed) {
  Ends e({"a", "a"});
  ch::Doorbell own;
  ch::DoorbellSleep sleep({e.service->channel().doorbell()});
  std::uint8_t sig[64] = {};
  BOOST_REQUIRE(e.guest->channel().queue(0).insert(sig) == 0);
  const auto from = Clock::now();
  BOOST_TEST(sleep.wait(own, own.rings.load(), kBound));
  BOOST_TEST((Clock::now() - from < kBound / 2));
}

// With nobody asleep a publish writes nothing into the doorbell.
BOOST_AUTO_TEST_CASE(with_nobody_asleep_a_publish_leaves_the_doorbell_alone) {
  Ends e({"a", "a"});
  std::uint8_t sig[64] = {};
  for (int i = 0; i < 10; ++i) BOOST_REQUIRE(e.guest->channel().queue(0).insert(sig) == 0);
  BOOST_TEST(e.service->channel().doorbell()->rings.load() == 0u);
  BOOST_TEST(e.service->channel().doorbell()->sleepers.load() == 0u);
}

// The waiter: woken once per sleep, by a ring or by interrupt(), which
// returns only once the doorbells are let go.
BOOST_AUTO_TEST_CASE(the_waiter_calls_back_once_per_sleep_and_lets_go_on_interrupt) {
  Ends e({"a", "a"});
  std::atomic<int> woken{0};
  ch::DoorbellWaiter waiter([&] { ++woken; });
  ch::Doorbell* bell = e.service->channel().doorbell();
  waiter.sleep(std::make_unique<ch::DoorbellSleep>(std::vector<ch::Doorbell*>{bell}), kBound);
  std::this_thread::sleep_for(20ms);
  BOOST_TEST(bell->sleepers.load() == 1u);
  const auto from = Clock::now();
  waiter.interrupt();
  BOOST_TEST((Clock::now() - from < kBound / 2));
  BOOST_TEST(bell->sleepers.load() == 0u);  // let go before interrupt() returned
  for (int i = 0; i < 500 && woken == 0; ++i) std::this_thread::sleep_for(1ms);
  BOOST_TEST(woken == 1);

  waiter.sleep(std::make_unique<ch::DoorbellSleep>(std::vector<ch::Doorbell*>{bell}), kBound);
  std::this_thread::sleep_for(20ms);
  std::uint8_t sig[64] = {};
  BOOST_REQUIRE(e.guest->channel().queue(0).insert(sig) == 0);
  for (int i = 0; i < 5000 && woken < 2; ++i) std::this_thread::sleep_for(1ms);
  BOOST_TEST(woken == 2);
}

// Both ends asleep over TCP (both link threads then wake on what arrives):
// an idle link carries a heartbeat an interval, not acknowledgements of
// acknowledgements at full speed. Measured as the CPU this process spends in
// a quiet second: the ping-pong took a whole core; an idle link needs ~1 %.
BOOST_AUTO_TEST_CASE(an_idle_link_with_both_ends_asleep_stays_quiet) {
  Ends e({"a", "b"});
  BOOST_REQUIRE(e.service->backing() == "tcp");
  ch::DoorbellSleep guest_asleep({e.guest->channel().doorbell()});
  ch::DoorbellSleep service_asleep({e.service->channel().doorbell()});
  std::this_thread::sleep_for(100ms);  // the link settles
  auto cpu = [] {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
  };
  const auto before = cpu();
  std::this_thread::sleep_for(1s);
  const auto used = cpu() - before;
  BOOST_TEST_MESSAGE("an idle second cost " << std::chrono::duration_cast<std::chrono::milliseconds>(used).count()
                                            << " ms of CPU");
  BOOST_TEST((used < 400ms));  // room for a sanitizer's slowdown; the ping-pong burnt 800+
  BOOST_TEST(e.service->link_up());
}
