// The partition actors' controlvm flows, deterministically: the command
// partition actor and a guest actor share a real controlvm channel; the test
// coordinator runs their messages and poll ticks only when told, so every
// answer below is the chipset's, reached through the actors' interfaces.
#define BOOST_TEST_MODULE actors_flows
#include "tests/actors/caf_fixture.hpp"

#include <unistd.h>

#include <cerrno>

#include "actors/command/command_actor.hpp"
#include "actors/guest/guest_actor.hpp"
#include "channel/channel_types.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
using namespace visorlab::actors;
using visorlab::command::CommandPartition;
using visorlab::command::make_request;

namespace {

std::uint32_t code(cvm::Response r) { return static_cast<std::uint32_t>(r); }

struct Flows : visorlab::test::ActorFixture {
  explicit Flows(bool acknowledge_hotplug = true) {
    guest_name = "flow" + std::to_string(getpid()) + "g" + std::to_string(counter++);
    commands = visorlab::command::spawn_command_partition(sys);
    const auto at = ask<Locator>(commands, guest_atom::value, guest_name);
    visorlab::guest::GuestActorOptions o;
    o.guest.name = guest_name;
    o.guest.acknowledge_hotplug = acknowledge_hotplug;
    o.controlvm = at;
    o.sleep_on_doorbells = false;  // the test coordinator runs every message: no thread may send one
    guest = visorlab::guest::spawn_guest(sys, o);
    sched.run();
  }
  ~Flows() {
    anon_send_exit(guest, caf::exit_reason::user_shutdown);
    anon_send_exit(commands, caf::exit_reason::user_shutdown);
    sched.run();
  }

  CommandResult command(cvm::Id id, const cvm::Packet& p = {}) {
    return ask<CommandResult>(commands, command_atom::value, make_request(guest_name, id, p));
  }
  // Offers a device channel to the guest, then creates the device over it.
  CommandResult create_device(std::uint32_t bus, std::uint32_t dev, ch::ChannelKind kind) {
    const auto& type = ch::type_of(kind);
    ChannelOffer offer;
    offer.addr = next_addr++;
    offer.device = guest_name + "/" + std::string(type.name) + std::to_string(dev);
    offer.kind = type.kind;
    offer.bus_no = bus;
    offer.dev_no = dev;
    offer.service_host = "local";
    ask<Locator>(guest, offer_atom::value, offer);
    return command(cvm::Id::device_create,
                   CommandPartition::device(bus, dev, type.guid, offer.addr, ch::channel_size(type.spec())));
  }
  std::vector<DeviceInfo> devices() { return ask<std::vector<DeviceInfo>>(guest, devices_atom::value); }

  static inline int counter = 0;
  std::string guest_name;
  std::uint64_t next_addr = 0x1000;
  command_actor commands;
  guest_actor guest;
};

}  // namespace

BOOST_FIXTURE_TEST_CASE(chipset_init_then_a_second_one_is_already_done, Flows) {
  auto first = command(cvm::Id::chipset_init, CommandPartition::init_chipset(cvm::chipset_feature::para_hotplug));
  BOOST_TEST(first.acked);
  BOOST_TEST(!first.failed);
  auto second = command(cvm::Id::chipset_init, CommandPartition::init_chipset(0));
  BOOST_TEST(second.status == code(cvm::Response::already_done));
}

BOOST_FIXTURE_TEST_CASE(buses_devices_and_the_bus_tree, Flows) {
  command(cvm::Id::chipset_init);
  BOOST_TEST(command(cvm::Id::bus_create, CommandPartition::bus(1)).status == 0u);  // console partition
  BOOST_TEST(command(cvm::Id::bus_create, CommandPartition::bus(2)).status == 0u);  // IO partition
  BOOST_TEST(create_device(2, 0, ch::ChannelKind::vhba).status == 0u);
  BOOST_TEST(create_device(1, 0, ch::ChannelKind::keyboard).status == 0u);
  BOOST_TEST(create_device(1, 1, ch::ChannelKind::mouse).status == 0u);
  const auto tree = devices();
  BOOST_REQUIRE(tree.size() == 3u);
  BOOST_TEST(tree[0].bus_name == "vbus1:dev0");
  BOOST_TEST(tree[0].driver == "visorinput");
  BOOST_TEST(tree[0].device == guest_name + "/keyboard0");
  BOOST_TEST(tree[2].bus_name == "vbus2:dev0");
  BOOST_TEST(tree[2].driver == "visorhba");
  BOOST_TEST(tree[2].type_name == "vhba");
  BOOST_TEST(visorlab::actors::to_string(tree[2].state) == "running");
  BOOST_TEST(tree[2].nbytes == ch::channel_size(ch::type_of(ch::ChannelKind::vhba).spec()));

  // The same device again is already done; an unknown bus is invalid.
  BOOST_TEST(command(cvm::Id::device_create,
                     CommandPartition::device(2, 0, ch::guids::vhba, 0x1000, 0)).status ==
             code(cvm::Response::already_done));
  BOOST_TEST(command(cvm::Id::device_create, CommandPartition::device(7, 0, ch::guids::vhba)).status ==
             code(cvm::Response::bus_invalid));
  BOOST_TEST(command(cvm::Id::device_destroy, CommandPartition::device(2, 9)).status ==
             code(cvm::Response::device_invalid));

  BOOST_TEST(command(cvm::Id::device_destroy, CommandPartition::device(2, 0)).status == 0u);
  BOOST_TEST(command(cvm::Id::bus_destroy, CommandPartition::bus(1)).status == 0u);
  BOOST_TEST(devices().empty());
  BOOST_TEST(command(cvm::Id::bus_destroy, CommandPartition::bus(1)).status == code(cvm::Response::bus_invalid));
}

BOOST_FIXTURE_TEST_CASE(a_device_no_driver_claims_is_created_unbound, Flows) {
  command(cvm::Id::bus_create, CommandPartition::bus(2));
  const ch::Guid unknown = ch::Guid::make(0x12345678, 0x1, 0x2, {1, 2, 3, 4, 5, 6, 7, 8});
  BOOST_TEST(command(cvm::Id::device_create, CommandPartition::device(2, 3, unknown, 0x99, 4096)).status == 0u);
  const auto tree = devices();
  BOOST_REQUIRE(tree.size() == 1u);
  BOOST_TEST(tree[0].driver == "");
  BOOST_TEST(visorlab::actors::to_string(tree[0].state) == "no_driver");
}

BOOST_FIXTURE_TEST_CASE(a_device_without_its_channel_is_not_probed, Flows) {
  command(cvm::Id::bus_create, CommandPartition::bus(2));
  // vhba's type, but no channel was offered at that address: not probed.
  BOOST_TEST(command(cvm::Id::device_create, CommandPartition::device(2, 0, ch::guids::vhba, 0x4242, 0)).status ==
             0u);
  BOOST_TEST(devices().at(0).driver == "");
}

BOOST_FIXTURE_TEST_CASE(pause_and_resume_through_the_actors, Flows) {
  command(cvm::Id::bus_create, CommandPartition::bus(2));
  create_device(2, 0, ch::ChannelKind::vhba);
  auto paused = command(cvm::Id::device_changestate, CommandPartition::change_state(2, 0, cvm::segment::standby));
  BOOST_TEST(!paused.failed);
  BOOST_TEST(paused.state == cvm::segment::standby);
  BOOST_TEST(visorlab::actors::to_string(devices().at(0).state) == "paused");
  auto resumed = command(cvm::Id::device_changestate, CommandPartition::change_state(2, 0, cvm::segment::running));
  BOOST_TEST(!resumed.failed);
  BOOST_TEST(resumed.state == cvm::segment::running);
  BOOST_TEST(visorlab::actors::to_string(devices().at(0).state) == "running");
  // A change of state of a device that does not exist.
  BOOST_TEST(command(cvm::Id::device_changestate, CommandPartition::change_state(2, 5, cvm::segment::standby))
                 .status == code(cvm::Response::device_invalid));
}

BOOST_FIXTURE_TEST_CASE(unknown_ids_and_test_messages, Flows) {
  BOOST_TEST(command(static_cast<cvm::Id>(0x777)).status == code(cvm::Response::id_unknown));
  // A test message is answered by nobody: the actor replies at once that it
  // was queued and nothing is outstanding afterwards.
  auto r = ask<CommandResult>(commands, command_atom::value,
                              make_request(guest_name, cvm::Id::chipset_init, {}, cvm::flag::test_message));
  BOOST_TEST(!r.acked);
  BOOST_TEST(command(cvm::Id::chipset_init).status == 0u);  // the test message did not initialise it
}

BOOST_FIXTURE_TEST_CASE(parahotplug_disable_is_acknowledged_by_the_guest, Flows) {
  command(cvm::Id::chipset_init, CommandPartition::init_chipset(cvm::chipset_feature::para_hotplug));
  auto disabled =
      command(cvm::Id::device_changestate, CommandPartition::parahotplug(2, 0, false));
  BOOST_TEST(!disabled.failed);
  auto enabled =
      command(cvm::Id::device_changestate, CommandPartition::parahotplug(2, 0, true));
  BOOST_TEST(!enabled.failed);
}

BOOST_AUTO_TEST_CASE(parahotplug_without_acknowledgement_expires_with_udev_timeout) {
  Flows f(false);
  // The chipset's expiry runs on real time: 2000 ms.
  auto r = f.command(cvm::Id::device_changestate, CommandPartition::parahotplug(2, 0, false));
  BOOST_TEST(r.failed);
  BOOST_TEST(r.status == code(cvm::Response::device_udev_timeout));
}

BOOST_AUTO_TEST_CASE(unknown_guest_and_duplicate_controlvm_are_errors) {
  Flows f;
  BOOST_TEST(f.ask_error<CommandResult>(f.commands, command_atom::value, make_request("nobody", cvm::Id::chipset_init, {}))
                 .find("unknown guest") != std::string::npos);
  BOOST_TEST(f.ask_error<Locator>(f.commands, guest_atom::value, f.guest_name).find("already") != std::string::npos);
}
