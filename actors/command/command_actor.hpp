// The command partition as a CAF actor: it creates each guest's controlvm
// channel (guest_atom) and sends controlvm commands into it, answering each
// request with the guest's response — or with timed_out, never a silent
// retry. It polls only while commands are outstanding.
#pragma once

#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "actors/command/command_partition.hpp"
#include "actors/runtime/interfaces.hpp"

namespace visorlab::metrics {
class Metrics;
}

namespace visorlab::command {

struct CommandActorOptions {
  // Longer than the guest's 2000 ms parahotplug expiry, so that expiry is
  // answered by the guest rather than cut short here.
  std::chrono::milliseconds timeout{5000};
  std::chrono::microseconds poll_interval{100};
  // visorlab_controlvm_messages_total{host,partition="command",id,result} for
  // every command answered (ok), failed or refused (error), or timed out, and
  // the command partition's share of visorlab_partitions. Null: none kept.
  std::shared_ptr<metrics::Metrics> metrics = nullptr;
  std::string host = "local";
};

actors::command_actor spawn_command_partition(caf::actor_system& sys, CommandActorOptions options = {});

// Packets for the usual commands, as CommandRequests.
actors::CommandRequest make_request(const std::string& guest, cvm::Id id, const cvm::Packet& packet,
                                    std::uint32_t flags = cvm::flag::response_expected);

}  // namespace visorlab::command
