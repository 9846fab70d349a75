// The guest chipset answers every controlvm message as spec §4 says, on a
// real controlvm channel (the Linux layout). The test plays the command
// partition: it inserts commands into EVENT and reads ACK and REQUEST. The
// device model behind the chipset is a small recording bus: the real bus is
// its own piece (the Linux split), tested on its own.
#define BOOST_TEST_MODULE actors_chipset
#include <boost/test/unit_test.hpp>

#include <cerrno>
#include <map>
#include <set>

#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "channel/channel_types.hpp"
#include "tests/actors/guest_harness.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
using visorlab::chipset::BusModel;
using visorlab::chipset::Chipset;
using visorlab::command::CommandPartition;
using namespace std::chrono_literals;

namespace {

struct RecordingBus : BusModel {
  std::set<std::uint32_t> buses;
  std::set<std::pair<std::uint32_t, std::uint32_t>> devices;
  std::vector<std::pair<bool, Done>> changes;  // pause?, completion
  bool complete_at_once = false;

  int create_bus(const cvm::CreateBus& p) override {
    return buses.insert(p.bus_no).second ? 0 : static_cast<int>(cvm::Response::already_done);
  }
  int destroy_bus(std::uint32_t bus) override {
    if (!buses.erase(bus)) return static_cast<int>(cvm::Response::bus_invalid);
    std::erase_if(devices, [&](const auto& d) { return d.first == bus; });
    return 0;
  }
  int configure_bus(const cvm::ConfigureBus& p) override {
    return buses.contains(p.bus_no) ? 0 : static_cast<int>(cvm::Response::bus_invalid);
  }
  int create_device(const cvm::CreateDevice& p) override {
    if (!buses.contains(p.bus_no)) return static_cast<int>(cvm::Response::bus_invalid);
    return devices.insert({p.bus_no, p.dev_no}).second ? 0 : static_cast<int>(cvm::Response::already_done);
  }
  int destroy_device(std::uint32_t bus, std::uint32_t dev) override {
    return devices.erase({bus, dev}) ? 0 : static_cast<int>(cvm::Response::device_invalid);
  }
  bool bus_exists(std::uint32_t bus) const override { return buses.contains(bus); }
  bool device_exists(std::uint32_t bus, std::uint32_t dev) const override { return devices.contains({bus, dev}); }
  int change_device_state(std::uint32_t, std::uint32_t, bool pause, Done done) override {
    if (complete_at_once) {
      done(0);  // visorinput calls back at once
      return 0;
    }
    changes.emplace_back(pause, std::move(done));
    return 0;
  }
};

struct Fixture {
  Fixture() : chipset(pair.guest_end, bus) {}

  // Sends a command as the command partition does and polls the chipset once.
  void send(cvm::Id id, cvm::Packet packet = {}, std::uint32_t flags = cvm::flag::response_expected) {
    cvm::Message m{};
    m.hdr.id = static_cast<std::uint32_t>(id);
    m.hdr.message_size = sizeof m;
    m.hdr.flags = flags;
    m.hdr.message_handle = ++handle;
    m.cmd = packet;
    BOOST_REQUIRE(channel.queue(cvm::event).insert(&m) == 0);
    chipset.poll(now);
  }
  std::optional<cvm::Message> response() {
    cvm::Message m;
    if (channel.queue(cvm::request).remove(&m) != 0) return std::nullopt;
    return m;
  }
  std::optional<cvm::Message> ack() {
    cvm::Message m;
    if (channel.queue(cvm::ack).remove(&m) != 0) return std::nullopt;
    return m;
  }
  // The single response to the last command: its completion status (0 = success).
  std::uint32_t status() {
    const auto r = response();
    BOOST_REQUIRE(r);
    BOOST_TEST(+r->hdr.message_handle == handle);
    const bool failed = r->hdr.flags & cvm::flag::failed;
    BOOST_TEST(failed == (r->hdr.completion_status != 0));
    return r->hdr.completion_status;
  }

  visorlab::test::ControlvmPair pair;
  ch::Channel& channel = pair.command_end;  // the test plays the command partition
  RecordingBus bus;
  Chipset chipset;
  std::uint64_t handle = 0;
  Chipset::Clock::time_point now = Chipset::Clock::now();
};

constexpr auto kSuccess = 0u;
constexpr auto kAlreadyDone = static_cast<std::uint32_t>(cvm::Response::already_done);

}  // namespace

BOOST_FIXTURE_TEST_SUITE(chipset, Fixture)

BOOST_AUTO_TEST_CASE(chipset_init_replies_features_and_a_second_init_is_already_done) {
  cvm::Packet p{};
  p.init_chipset.features = cvm::chipset_feature::para_hotplug | 0x80;
  send(cvm::Id::chipset_init, p);
  const auto r = response();
  BOOST_REQUIRE(r);
  BOOST_TEST(+r->hdr.id == 0x301u);
  BOOST_TEST(+r->hdr.completion_status == 0u);
  BOOST_TEST(+r->cmd.init_chipset.features == (cvm::chipset_feature::para_hotplug | cvm::chipset_feature::reply));
  send(cvm::Id::chipset_init, p);
  BOOST_TEST(status() == kAlreadyDone);
}

BOOST_AUTO_TEST_CASE(every_command_is_acked_before_dispatch_with_the_header_copied) {
  send(cvm::Id::bus_create, CommandPartition::bus(2), cvm::flag::response_expected | cvm::flag::server);
  const auto a = ack();
  BOOST_REQUIRE(a);
  BOOST_TEST(+a->hdr.id == 0x101u);
  BOOST_TEST(+a->hdr.message_handle == handle);
  BOOST_TEST(+a->hdr.flags == (cvm::flag::response_expected | cvm::flag::server));
  BOOST_TEST(+a->cmd.create_bus.bus_no == 0u);  // payload zeroed
  BOOST_TEST(status() == kSuccess);
  // Without response_expected: acked, done, no response.
  send(cvm::Id::bus_create, CommandPartition::bus(1), 0);
  BOOST_TEST(ack().has_value());
  BOOST_TEST(!response().has_value());
  BOOST_TEST(bus.buses.contains(1u));
}

BOOST_AUTO_TEST_CASE(test_messages_get_no_ack_and_no_response) {
  send(cvm::Id::bus_create, CommandPartition::bus(5), cvm::flag::response_expected | cvm::flag::test_message);
  BOOST_TEST(!ack().has_value());
  BOOST_TEST(!response().has_value());
  BOOST_TEST(!bus.buses.contains(5u));
}

BOOST_AUTO_TEST_CASE(bus_and_device_errors) {
  send(cvm::Id::bus_create, CommandPartition::bus(2));
  BOOST_TEST(status() == kSuccess);
  send(cvm::Id::bus_create, CommandPartition::bus(2));
  BOOST_TEST(status() == kAlreadyDone);
  send(cvm::Id::device_create, CommandPartition::device(9, 0, ch::guids::vhba));
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::bus_invalid));
  send(cvm::Id::device_create, CommandPartition::device(2, 0, ch::guids::vhba));
  BOOST_TEST(status() == kSuccess);
  send(cvm::Id::device_create, CommandPartition::device(2, 0, ch::guids::vhba));
  BOOST_TEST(status() == kAlreadyDone);  // duplicate device
  send(cvm::Id::device_destroy, CommandPartition::device(2, 7, ch::guids::vhba));
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::device_invalid));
  send(cvm::Id::device_configure, CommandPartition::device(2, 7, ch::guids::vhba));
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::device_invalid));
  send(cvm::Id::bus_destroy, CommandPartition::bus(9));
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::bus_invalid));
  send(cvm::Id::bus_destroy, CommandPartition::bus(2));
  BOOST_TEST(status() == kSuccess);
  BOOST_TEST(!bus.device_exists(2, 0));  // its devices went with it
}

BOOST_AUTO_TEST_CASE(unknown_id_is_id_unknown) {
  cvm::Message m{};
  m.hdr.id = 0x999;
  m.hdr.flags = cvm::flag::response_expected;
  m.hdr.message_handle = handle = 42;
  BOOST_REQUIRE(channel.queue(cvm::event).insert(&m) == 0);
  chipset.poll(now);
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::id_unknown));
}

BOOST_AUTO_TEST_CASE(pause_answers_when_the_driver_calls_back_and_overlaps_are_refused) {
  send(cvm::Id::bus_create, CommandPartition::bus(2));
  status();
  send(cvm::Id::device_create, CommandPartition::device(2, 1, ch::guids::vhba));
  status();
  send(cvm::Id::device_changestate, CommandPartition::change_state(2, 1, cvm::segment::standby));
  BOOST_TEST(!response().has_value());  // pending until the driver finishes
  BOOST_REQUIRE(bus.changes.size() == 1u);
  BOOST_TEST(bus.changes[0].first);  // a pause
  const auto pause_handle = handle;

  send(cvm::Id::device_changestate, CommandPartition::change_state(2, 1, cvm::segment::running));
  BOOST_TEST(status() == static_cast<std::uint32_t>(EBUSY));  // resume while pause in flight
  send(cvm::Id::device_destroy, CommandPartition::device(2, 1, ch::guids::vhba));
  BOOST_TEST(status() == static_cast<std::uint32_t>(EIO));  // another command meanwhile

  bus.changes[0].second(0);  // the driver paused
  const auto r = response();
  BOOST_REQUIRE(r);
  BOOST_TEST(+r->hdr.message_handle == pause_handle);
  BOOST_TEST(+r->hdr.completion_status == 0u);
  BOOST_TEST(+r->cmd.device_change_state.state == cvm::segment::standby);
  BOOST_TEST(+r->cmd.device_change_state.dev_no == 1u);

  send(cvm::Id::device_changestate, CommandPartition::change_state(2, 1, cvm::segment::running));
  BOOST_REQUIRE(bus.changes.size() == 2u);
  BOOST_TEST(!bus.changes[1].first);  // a resume
  bus.changes[1].second(0);
  const auto resumed = response();
  BOOST_REQUIRE(resumed);
  BOOST_TEST(+resumed->cmd.device_change_state.state == cvm::segment::running);
}

BOOST_AUTO_TEST_CASE(a_driver_that_calls_back_at_once_and_bad_states) {
  bus.complete_at_once = true;
  send(cvm::Id::bus_create, CommandPartition::bus(1));
  status();
  send(cvm::Id::device_create, CommandPartition::device(1, 0, ch::guids::vhba));
  status();
  send(cvm::Id::device_changestate, CommandPartition::change_state(1, 0, cvm::segment::standby));
  BOOST_TEST(status() == kSuccess);
  send(cvm::Id::device_changestate, CommandPartition::change_state(1, 0, cvm::segment::paused));  // alive, not operating
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::payload_invalid));
  send(cvm::Id::device_changestate, CommandPartition::change_state(1, 5, cvm::segment::standby));
  BOOST_TEST(status() == static_cast<std::uint32_t>(cvm::Response::device_invalid));
}

BOOST_AUTO_TEST_CASE(parahotplug_enable_at_once_disable_waits_or_expires) {
  std::vector<std::pair<std::uint32_t, bool>> raised;
  chipset.on_parahotplug([&](std::uint32_t id, bool enable, std::uint32_t, std::uint32_t) { raised.push_back({id, enable}); });
  const std::uint16_t active = 1u << 1;
  send(cvm::Id::device_changestate, CommandPartition::change_state(2, 3, active, true));  // enable
  auto r = response();
  BOOST_REQUIRE(r);
  BOOST_TEST(+r->hdr.completion_status == 0u);
  BOOST_TEST((r->cmd.device_change_state.flags & cvm::change_flag::phys_device) != 0u);

  send(cvm::Id::device_changestate, CommandPartition::change_state(2, 3, 0, true));  // disable: waits for the guest
  BOOST_TEST(!response().has_value());
  BOOST_REQUIRE(raised.size() == 2u);
  BOOST_TEST(raised[0].first == 1u);  // ids count from 1
  BOOST_TEST(raised[1].second == false);
  BOOST_TEST(chipset.parahotplug_done(raised[1].first));
  BOOST_TEST(status() == kSuccess);
  BOOST_TEST(!chipset.parahotplug_done(raised[1].first));  // only once

  send(cvm::Id::device_changestate, CommandPartition::change_state(2, 3, 0, true));  // disable, never acknowledged
  chipset.poll(now + 1999ms);
  BOOST_TEST(!response().has_value());
  chipset.poll(now + 2000ms);
  r = response();
  BOOST_REQUIRE(r);
  BOOST_TEST(+r->hdr.completion_status == static_cast<std::uint32_t>(cvm::Response::device_udev_timeout));
  BOOST_TEST((r->hdr.flags & cvm::flag::failed) != 0u);  // the kernel forgets this bit; visorlab does not
}

BOOST_AUTO_TEST_CASE(responses_sent_into_request_and_response_queue_is_drained) {
  cvm::Message stray{};
  stray.hdr.id = 0x101;
  BOOST_REQUIRE(channel.queue(cvm::response).insert(&stray) == 0);
  chipset.poll(now);
  BOOST_TEST(channel.queue(cvm::response).pending() == 0u);
  BOOST_TEST(channel.queue(cvm::request).pending() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
