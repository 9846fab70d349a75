// The pause guard: between pause() and resume() every access through the
// endpoint is refused and recorded; the mapping itself faults on raw access.
#define BOOST_TEST_MODULE channel_pause_guard
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "channel/channel.hpp"

namespace ch = visorlab::channel;

namespace {

ch::ChannelSpec spec() {
  ch::ChannelSpec s;
  s.queues = {ch::QueueSpec{64, 8}};
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_access_while_paused_is_a_recorded_violation) {
  auto region = ch::Region::anonymous(ch::channel_size(spec()));
  auto channel = ch::Channel::format(region.map(), spec());
  std::vector<ch::Violation> seen;
  channel.guard().on_violation([&](const ch::Violation& v) { seen.push_back(v); });

  std::uint8_t signal[64] = {1};
  BOOST_REQUIRE(channel.queue(0).insert(signal) == 0);
  channel.pause();
  BOOST_TEST(channel.paused());
  BOOST_TEST(channel.queue(0).insert(signal) == -EPERM);
  BOOST_TEST(channel.queue(0).remove(signal) == -EPERM);
  BOOST_TEST(channel.queue(0).insert_batch(signal, 1) == 0u);
  BOOST_TEST(channel.queue(0).remove_batch(signal, 1) == 0u);
  BOOST_TEST(channel.queue(0).peek(0, signal) == -EPERM);
  BOOST_TEST(channel.read(0, signal, 8) == -EPERM);
  BOOST_TEST(channel.write(200, signal, 8) == -EPERM);
  BOOST_TEST(channel.queue(0).pending() == 0u);
  BOOST_TEST(channel.guard().violations() == 8u);
  BOOST_REQUIRE(seen.size() == 8u);
  BOOST_TEST(seen[0].operation == "insert");
  BOOST_TEST(seen[0].queue == 0);
  BOOST_TEST(seen[5].operation == "read");
  BOOST_TEST(seen[5].queue == -1);
  BOOST_TEST(seen[6].offset == 200u);

  channel.resume();
  BOOST_TEST(!channel.paused());
  BOOST_TEST(channel.queue(0).remove(signal) == 0);  // nothing was lost
  BOOST_TEST(signal[0] == 1);
  BOOST_TEST(channel.guard().violations() == 8u);
}

BOOST_AUTO_TEST_CASE(pausing_one_endpoint_leaves_the_peer_working) {
  auto region = ch::Region::anonymous(ch::channel_size(spec()));
  auto guest = ch::Channel::format(region.map(), spec());
  auto service = ch::Channel::attach(region.map(), ch::Expect{.queue_count = 1});
  guest.pause();
  std::uint8_t signal[64] = {9};
  BOOST_TEST(service.queue(0).insert(signal) == 0);  // its own mapping stays usable
  guest.resume();
  std::uint8_t out[64] = {};
  BOOST_TEST(guest.queue(0).remove(out) == 0);
  BOOST_TEST(out[0] == 9);
  BOOST_TEST(guest.guard().violations() == 0u);
}

// A raw pointer that escaped the guard still cannot read a paused mapping: the
// view is PROT_NONE and the access faults. Run in a child, which must die of SIGSEGV.
BOOST_AUTO_TEST_CASE(raw_access_to_a_paused_mapping_faults) {
  auto region = ch::Region::anonymous(ch::channel_size(spec()));
  const pid_t child = fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL);
    ch::Mapping mapping = region.map();
    volatile auto* raw = reinterpret_cast<volatile std::uint8_t*>(mapping.bytes().data());
    auto channel = ch::Channel::format(std::move(mapping), spec());
    channel.pause();
    const std::uint8_t value = raw[0];  // must fault
    _exit(value == 0xFF ? 10 : 11);
  }
  int status = 0;
  BOOST_REQUIRE(waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) BOOST_TEST(WTERMSIG(status) == SIGSEGV);
}
