// A controlvm channel between hosts: the command partition on one, the
// guest on another, over TCP on loopback. Commands are answered as over
// shared memory; a cut of the network between the two hosts drops the link,
// and once it heals the guest attaches again and the next command goes
// through — none answered twice, none lost from before the cut.
#define BOOST_TEST_MODULE actors_controlvm_tcp
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <thread>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "actors/runtime/device_channels.hpp"
#include "channel/tcp/link_faults.hpp"

namespace cvm = visorlab::channel::controlvm;
using visorlab::command::CommandPartition;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Hosts {
  Hosts()
      : command_end(visorlab::actors::create_controlvm("g0", locator, {"cmdhost", "guesthost", "127.0.0.1"})),
        guest_end(visorlab::actors::attach_controlvm(locator, "cmdhost")),
        bus([](const cvm::CreateDevice&, const visorlab::channel::Expect&) -> std::unique_ptr<visorlab::channel::ChannelEnd> {
          throw std::runtime_error("no devices in this test");
        }),
        chipset(guest_end->channel(), bus),
        commands(command_end->channel(), 2000ms) {}

  // Sends one command; polls both sides (the guest re-attaching if its link
  // is down) until it is answered, for at most `patience`.
  std::optional<visorlab::command::Answer> command(cvm::Id id, const cvm::Packet& p, std::chrono::milliseconds patience = 3s) {
    const auto handle = commands.send(id, p);
    if (!handle) return std::nullopt;
    const auto until = Clock::now() + patience;
    while (Clock::now() < until) {
      if (!guest_end->link_up()) guest_end->reconnect(2ms);
      chipset.poll();
      for (const auto& a : commands.poll())
        if (a.handle == *handle) return a;
      std::this_thread::sleep_for(200us);
    }
    return std::nullopt;
  }

  visorlab::actors::Locator locator;
  std::unique_ptr<visorlab::channel::ChannelEnd> command_end, guest_end;
  visorlab::bus::VirtualBus bus;
  visorlab::chipset::Chipset chipset;
  CommandPartition commands;
};

}  // namespace

BOOST_AUTO_TEST_CASE(across_hosts_the_channel_is_tcp_and_commands_are_answered) {
  Hosts h;
  BOOST_TEST(h.locator.rfind("tcp:127.0.0.1:", 0) == 0u, h.locator);
  BOOST_TEST(h.locator.find("/controlvm/g0") != std::string::npos, h.locator);
  BOOST_TEST(h.command_end->backing() == "tcp");
  const auto init = h.command(cvm::Id::chipset_init, CommandPartition::init_chipset(0));
  BOOST_REQUIRE(init);
  BOOST_TEST(!init->timed_out);
  BOOST_TEST(init->status == 0u);
  const auto again = h.command(cvm::Id::chipset_init, CommandPartition::init_chipset(0));
  BOOST_REQUIRE(again);
  BOOST_TEST(again->status != 0u);  // ALREADY_DONE, as over shared memory
}

BOOST_AUTO_TEST_CASE(on_one_host_it_stays_shared_memory) {
  visorlab::actors::Locator at;
  auto end = visorlab::actors::create_controlvm("g1-" + std::to_string(::getpid()), at, {"h", "h"});
  BOOST_TEST(at.rfind("shm:", 0) == 0u, at);
  BOOST_TEST(end->backing() == "shm");
}

BOOST_AUTO_TEST_CASE(after_a_cut_heals_the_guest_attaches_again_and_commands_flow) {
  Hosts h;
  BOOST_REQUIRE(h.command(cvm::Id::chipset_init, CommandPartition::init_chipset(0)));
  auto& faults = visorlab::channel::tcp::LinkFaults::instance();
  faults.cut("cmdhost", Clock::now() + 5s);  // the guest's side of the cut
  faults.cut("guesthost", Clock::now() + 5s);
  const auto until = Clock::now() + 3s;
  while ((h.guest_end->link_up() || h.command_end->link_up()) && Clock::now() < until) std::this_thread::sleep_for(5ms);
  BOOST_TEST(!h.guest_end->link_up());  // noticed within the detection bound
  // A command sent during the cut waits in the stream; it is answered after the heal.
  const auto handle = h.commands.send(cvm::Id::bus_create, CommandPartition::bus(2));
  BOOST_REQUIRE(handle);
  faults.heal("cmdhost");
  faults.heal("guesthost");
  std::optional<visorlab::command::Answer> answer;
  for (const auto stop = Clock::now() + 3s; !answer && Clock::now() < stop;) {
    if (!h.guest_end->link_up()) h.guest_end->reconnect(2ms);
    h.chipset.poll();
    for (const auto& a : h.commands.poll())
      if (a.handle == *handle) answer = a;
  }
  BOOST_REQUIRE(answer);
  BOOST_TEST(!answer->timed_out);
  BOOST_TEST(answer->status == 0u);
  BOOST_TEST(h.guest_end->link_up());
  const auto next = h.command(cvm::Id::bus_create, CommandPartition::bus(1));
  BOOST_REQUIRE(next);
  BOOST_TEST(next->status == 0u);
}
