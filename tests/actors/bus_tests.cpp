// The device model end to end: the test plays the command partition (controlvm
// messages) and the console partition (it creates the keyboard channel in
// shared memory and produces reports); the guest's chipset, bus and visorinput
// driver do the rest, on real channels.
#define BOOST_TEST_MODULE actors_bus
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "actors/drivers/visorinput.hpp"
#include "channel/channel_types.hpp"
#include "tests/actors/guest_harness.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
using visorlab::bus::DeviceState;
using visorlab::bus::VirtualBus;
using visorlab::chipset::Chipset;
using visorlab::command::CommandPartition;
using visorlab::drivers::VisorInput;

namespace {

// channel_addr → a shared-memory channel name unique to this test process.
std::string channel_name(std::uint64_t addr) { return "test" + std::to_string(getpid()) + "-ch" + std::to_string(addr); }

struct Guest {
  Guest()
      : input([this](const visorlab::bus::Device&, const ch::input::Report& r) { seen.push_back(r.seq_no); }),
        bus([](const cvm::CreateDevice& p, const ch::Expect& expect) {
          return ch::attach_shared_end(channel_name(p.channel_addr), expect);
        }),
        chipset(controlvm.guest_end, bus),
        commands(controlvm.command_end) {
    bus.register_driver(input);
  }

  // One controlvm command from the command partition; its completion status.
  std::uint32_t command(cvm::Id id, cvm::Packet p) {
    return visorlab::test::run_command(commands, chipset, id, p).status;
  }
  std::uint32_t create_device(std::uint32_t bus_no, std::uint32_t dev_no, ch::Guid type, std::uint64_t addr) {
    return command(cvm::Id::device_create, CommandPartition::device(bus_no, dev_no, type, addr, 4096));
  }
  std::uint32_t change_state(std::uint32_t bus_no, std::uint32_t dev_no, std::uint16_t state) {
    return command(cvm::Id::device_changestate, CommandPartition::change_state(bus_no, dev_no, state));
  }

  visorlab::test::ControlvmPair controlvm;
  std::vector<std::uint64_t> seen;
  VisorInput input;  // drivers outlive the bus that calls them
  VirtualBus bus;
  Chipset chipset;
  CommandPartition commands;
};

void produce(ch::Channel& keyboard, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t seq = from; seq < to; ++seq) {
    ch::input::Report r{seq, {ch::input::Action::key_down_up, 30, 0, 0}};
    BOOST_REQUIRE(keyboard.queue(0).insert_signal(r) == 0);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(keyboard_is_probed_and_its_reports_keep_seq_no_across_a_pause) {
  // The console partition's end of the keyboard channel.
  auto console = ch::create_shared_end(channel_name(1), ch::type_of(ch::ChannelKind::keyboard).spec());
  Guest g;
  BOOST_TEST(g.command(cvm::Id::bus_create, CommandPartition::bus(1)) == 0u);  // bus 1: the console partition's
  BOOST_TEST(g.create_device(1, 0, ch::guids::keyboard, 1) == 0u);

  auto* dev = g.bus.find(1, 0);
  BOOST_REQUIRE(dev);
  BOOST_TEST(dev->name() == "vbus1:dev0");
  BOOST_TEST(dev->driver_name() == "visorinput");
  BOOST_TEST(dev->type_name() == "keyboard");
  BOOST_TEST((dev->state() == DeviceState::running));
  BOOST_TEST(g.bus.bus_names() == std::vector<std::string>{"visorbus1"});

  produce(console->channel(), 0, 10);
  g.bus.poll();
  BOOST_TEST(g.seen.size() == 10u);

  // Pause: the driver calls back at once; the answer carries standby.
  BOOST_TEST(g.change_state(1, 0, cvm::segment::standby) == 0u);
  BOOST_TEST((dev->state() == DeviceState::paused));
  BOOST_TEST(dev->channel()->paused());
  BOOST_TEST(g.change_state(1, 0, cvm::segment::standby) == static_cast<std::uint32_t>(EBUSY));  // repeated
  BOOST_TEST((dev->state() == DeviceState::paused));  // still paused after the refusal
  produce(console->channel(), 10, 15);  // the console keeps them while the guest is paused
  g.bus.poll();                         // a paused device is not polled
  BOOST_TEST(g.seen.size() == 10u);
  BOOST_TEST(dev->channel()->guard().violations() == 0u);

  BOOST_TEST(g.change_state(1, 0, cvm::segment::running) == 0u);
  g.bus.poll();
  BOOST_REQUIRE(g.seen.size() == 15u);
  for (std::uint64_t i = 0; i < 15; ++i) BOOST_TEST(g.seen[i] == i);
  const auto counts = VisorInput::counts(*dev);
  BOOST_TEST(counts.delivered == 15u);
  BOOST_TEST(counts.lost == 0u);
  BOOST_TEST(counts.out_of_order == 0u);

  BOOST_TEST(g.command(cvm::Id::device_destroy, CommandPartition::device(1, 0)) == 0u);
  BOOST_TEST(!g.bus.find(1, 0));
}

BOOST_AUTO_TEST_CASE(a_driver_touching_a_paused_channel_is_a_recorded_violation) {
  auto console = ch::create_shared_end(channel_name(2), ch::type_of(ch::ChannelKind::mouse).spec());
  Guest g;
  g.command(cvm::Id::bus_create, CommandPartition::bus(1));
  g.create_device(1, 1, ch::guids::mouse, 2);
  auto* dev = g.bus.find(1, 1);
  BOOST_REQUIRE(dev);
  BOOST_TEST(g.change_state(1, 1, cvm::segment::standby) == 0u);
  g.input.channel_interrupt(*dev);  // a misbehaving driver polls anyway
  BOOST_TEST(dev->channel()->guard().violations() >= 1u);
}

BOOST_AUTO_TEST_CASE(unclaimed_types_and_channels_failing_the_check_are_created_without_a_driver) {
  Guest g;
  g.command(cvm::Id::bus_create, CommandPartition::bus(2));
  // No driver for vhba is registered here: created, no driver, success.
  BOOST_TEST(g.create_device(2, 0, ch::guids::vhba, 3) == 0u);
  BOOST_TEST(g.bus.find(2, 0)->driver_name().empty());
  BOOST_TEST((g.bus.find(2, 0)->state() == DeviceState::no_driver));
  BOOST_TEST(g.bus.last_unbound_reason().find("no driver claims") != std::string::npos);

  // A keyboard whose channel carries the wrong type GUID: not probed.
  auto wrong = ch::create_shared_end(channel_name(4), ch::type_of(ch::ChannelKind::mouse).spec());
  BOOST_TEST(g.create_device(2, 1, ch::guids::keyboard, 4) == 0u);
  BOOST_TEST(g.bus.find(2, 1)->driver_name().empty());
  BOOST_TEST(g.bus.last_unbound_reason().find("chtype") != std::string::npos, g.bus.last_unbound_reason());

  // A keyboard whose channel does not exist at all.
  BOOST_TEST(g.create_device(2, 2, ch::guids::keyboard, 99) == 0u);
  BOOST_TEST(g.bus.find(2, 2)->driver_name().empty());

  // Pausing a device with no driver is refused.
  BOOST_TEST(g.change_state(2, 0, cvm::segment::standby) == static_cast<std::uint32_t>(ENODEV));
}
