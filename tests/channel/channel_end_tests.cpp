// Placement picks the backing; the same driver code runs over either.
#define BOOST_TEST_MODULE channel_end
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstring>
#include <thread>

#include "channel/end/channel_end.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

const ch::Guid kType = ch::Guid::make(0xfeedf00d, 1, 2, {3, 4, 5, 6, 7, 8, 9, 10});
const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};

ch::ChannelSpec spec() {
  ch::ChannelSpec s;
  s.type = kType;
  s.queues = {{64, 32}, {64, 32}};
  return s;
}

// Driver-level code: knows nothing of the backing. Sends n numbered signals
// and expects them echoed in order.
bool round_trip(ch::Channel& guest, ch::Channel& service, std::uint64_t n) {
  const auto deadline = Clock::now() + 20s;
  std::uint8_t buf[64];
  std::uint64_t sent = 0, echoed = 0, got = 0;
  while (got < n) {
    if (Clock::now() > deadline) return false;
    if (sent < n) {
      std::memcpy(buf, &sent, 8);
      if (guest.queue(0).insert(buf) == 0) ++sent;
    }
    if (service.queue(0).remove(buf) == 0) {
      while (service.queue(1).insert(buf) != 0)
        if (Clock::now() > deadline) return false;
      ++echoed;
    }
    while (guest.queue(1).remove(buf) == 0) {
      std::uint64_t seq;
      std::memcpy(&seq, buf, 8);
      if (seq != got++) return false;
    }
  }
  return echoed == n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(same_host_is_shared_memory) {
  const ch::Placement p{"a", "a"};
  auto guest = ch::open_guest_end(p, "g0/test" + std::to_string(getpid()), spec(), kProducers);
  auto service = ch::open_service_end(p, "g0/test" + std::to_string(getpid()),
                                      ch::Expect{.type = kType, .queue_count = 2}, kProducers);
  BOOST_TEST(guest->backing() == "shm");
  BOOST_TEST(service->backing() == "shm");
  BOOST_TEST(!ch::listen_address(*guest));
  BOOST_TEST(round_trip(guest->channel(), service->channel(), 5000));
}

BOOST_AUTO_TEST_CASE(different_hosts_are_tcp) {
  const ch::Placement p{"a", "b"};
  auto guest = ch::open_guest_end(p, "g0/test", spec(), kProducers);
  const auto at = ch::listen_address(*guest);
  BOOST_REQUIRE(at);
  auto service = ch::open_service_end(p, "g0/test", ch::Expect{.type = kType, .queue_count = 2}, kProducers, *at);
  BOOST_TEST(guest->backing() == "tcp");
  BOOST_TEST(round_trip(guest->channel(), service->channel(), 5000));
}

BOOST_AUTO_TEST_CASE(shm_names_are_safe) {
  BOOST_TEST(ch::shm_name("g0/vhba0") == "visorlab-g0_vhba0");
}
