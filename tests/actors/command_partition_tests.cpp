// The command partition against a real guest chipset and bus on one
// controlvm channel: unique handles, ACKs, responses matched, timeouts
// reported rather than retried.
#define BOOST_TEST_MODULE actors_command_partition
#include <boost/test/unit_test.hpp>

#include <set>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "channel/channel_types.hpp"
#include "tests/actors/guest_harness.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
using visorlab::command::Answer;
using visorlab::command::CommandPartition;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  Fixture()
      : bus([](const cvm::CreateDevice&, const ch::Expect&) -> std::unique_ptr<ch::ChannelEnd> {
          throw std::runtime_error("no device channels in this test");
        }),
        chipset(pair.guest_end, bus),
        command(pair.command_end, 100ms) {}

  // Send, let the guest run once, collect the answer to that handle.
  Answer round_trip(cvm::Id id, const cvm::Packet& p, std::uint32_t flags = cvm::flag::response_expected) {
    const auto h = command.send(id, p, flags, now);
    BOOST_REQUIRE(h);
    chipset.poll(now);
    for (const auto& a : command.poll(now))
      if (a.handle == *h) return a;
    BOOST_FAIL("no answer");
    return {};
  }

  visorlab::test::ControlvmPair pair;
  visorlab::bus::VirtualBus bus;
  visorlab::chipset::Chipset chipset;
  CommandPartition command;
  CommandPartition::Clock::time_point now = CommandPartition::Clock::now();
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(command_partition, Fixture)

BOOST_AUTO_TEST_CASE(commands_are_acked_answered_and_matched_by_unique_handle) {
  auto a = round_trip(cvm::Id::chipset_init, CommandPartition::init_chipset(cvm::chipset_feature::para_hotplug));
  BOOST_TEST(a.acked);
  BOOST_TEST(!a.failed);
  BOOST_TEST(+a.packet.init_chipset.features == 3u);
  BOOST_TEST(!round_trip(cvm::Id::bus_create, CommandPartition::bus(1)).failed);
  BOOST_TEST(!round_trip(cvm::Id::bus_create, CommandPartition::bus(2)).failed);
  a = round_trip(cvm::Id::bus_create, CommandPartition::bus(2));
  BOOST_TEST(a.failed);
  BOOST_TEST(a.status == static_cast<std::uint32_t>(cvm::Response::already_done));
  a = round_trip(cvm::Id::device_create, CommandPartition::device(7, 0, ch::guids::vhba));
  BOOST_TEST(a.status == static_cast<std::uint32_t>(cvm::Response::bus_invalid));

  std::set<std::uint64_t> handles;
  for (int i = 0; i < 10; ++i) handles.insert(*command.send(cvm::Id::chipset_ready, {}, cvm::flag::response_expected, now));
  BOOST_TEST(handles.size() == 10u);
  chipset.poll(now);
  BOOST_TEST(command.poll(now).size() == 10u);
  BOOST_TEST(command.outstanding() == 0u);
  BOOST_TEST(command.unexpected() == 0u);
}

BOOST_AUTO_TEST_CASE(without_response_expected_the_ack_settles_it_and_test_messages_wait_for_nothing) {
  const auto a = round_trip(cvm::Id::bus_create, CommandPartition::bus(1), 0);
  BOOST_TEST(a.acked);
  BOOST_TEST(!a.timed_out);
  command.send(cvm::Id::bus_create, CommandPartition::bus(3), cvm::flag::test_message, now);
  BOOST_TEST(command.outstanding() == 0u);
  chipset.poll(now);
  BOOST_TEST(command.poll(now).empty());
}

BOOST_AUTO_TEST_CASE(a_guest_that_does_not_answer_is_reported_timed_out_once) {
  const auto h = command.send(cvm::Id::bus_create, CommandPartition::bus(1), cvm::flag::response_expected, now);
  BOOST_REQUIRE(h);
  BOOST_TEST(command.poll(now + 99ms).empty());
  const auto answers = command.poll(now + 100ms);
  BOOST_REQUIRE(answers.size() == 1u);
  BOOST_TEST(answers[0].timed_out);
  BOOST_TEST(answers[0].handle == *h);
  BOOST_TEST(command.outstanding() == 0u);
  // The guest answers late: counted, not mistaken for another command.
  chipset.poll(now);
  BOOST_TEST(command.poll(now + 200ms).empty());
  BOOST_TEST(command.unexpected() == 2u);  // its ACK and its response
}

BOOST_AUTO_TEST_CASE(a_full_event_queue_refuses_instead_of_dropping) {
  int sent = 0;
  while (command.send(cvm::Id::chipset_ready, {}, cvm::flag::response_expected, now)) ++sent;
  BOOST_TEST(sent == 63);  // capacity of a 64-slot queue
  BOOST_TEST(command.outstanding() == 63u);
}

BOOST_AUTO_TEST_SUITE_END()
