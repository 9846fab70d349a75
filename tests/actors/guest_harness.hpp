// Test harness for the actor suites: both ends of one guest's controlvm
// channel in process memory, and one command as the command partition sends
// it — through actors/command, the real thing.
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <vector>

#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "channel/channel_types.hpp"

namespace visorlab::test {

// Formatted in the Linux layout; the command partition's end and the guest's.
struct ControlvmPair {
  ControlvmPair()
      : memory(channel::channel_size(spec())),
        command_end(channel::Channel::format(channel::Mapping::borrow(memory), spec())),
        guest_end(channel::Channel::attach(channel::Mapping::borrow(memory),
                                           channel::type_of(channel::ChannelKind::controlvm).expect())) {}
  static channel::ChannelSpec spec() { return channel::type_of(channel::ChannelKind::controlvm).spec(); }

  std::vector<std::byte> memory;
  channel::Channel command_end;
  channel::Channel guest_end;
};

// Sends one command, lets the guest's chipset poll once, returns the answer.
inline command::Answer run_command(command::CommandPartition& commands, chipset::Chipset& chipset,
                                   channel::controlvm::Id id, const channel::controlvm::Packet& packet) {
  const auto handle = commands.send(id, packet);
  BOOST_REQUIRE(handle);  // the EVENT queue took it
  chipset.poll();
  const auto answers = commands.poll();
  const auto it = std::find_if(answers.begin(), answers.end(), [&](const auto& a) { return a.handle == *handle; });
  BOOST_REQUIRE_MESSAGE(it != answers.end(), "no answer to controlvm command " << static_cast<std::uint32_t>(id));
  BOOST_REQUIRE(!it->timed_out);  // answered, matched by its handle
  return *it;
}

}  // namespace visorlab::test
