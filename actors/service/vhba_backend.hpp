// The IO partition's end of one vhba channel: takes commands from the cmd
// queue (IOCHAN_TO_IOPART), executes SCSI ones on the device's SCSI target,
// answers task management, and puts every response on the rsp queue
// (IOCHAN_FROM_IOPART). A response that does not fit waits, in order.
#pragma once

#include <cstdint>
#include <deque>

#include "actors/service/scsi_target.hpp"
#include "channel/channel.hpp"

namespace visorlab::service {

class VhbaBackend {
 public:
  VhbaBackend(channel::Channel& channel, ScsiTarget& target) : channel_(channel), target_(target) {}

  // Serves what is waiting; returns how many commands were executed.
  std::size_t poll(std::size_t max_commands = 64);

  std::uint64_t executed() const { return executed_; }

  // After a reset (DeviceAttach::reset): takes every queued command without
  // running or answering it — the guest re-issues them. Returns how many.
  std::size_t skip_queued();

  // The lose_writes fault: until `until`, acknowledge every `every`th WRITE
  // without writing it (every 0: off) — how a drill proves its checker sees
  // data loss. Ends by itself at `until`, whoever dies meanwhile.
  void lose_writes(std::uint64_t every, std::chrono::steady_clock::time_point until) {
    lose_every_ = every;
    lose_until_ = until;
  }
  std::uint64_t lost_writes() const { return lost_; }

 private:
  channel::Channel& channel_;
  ScsiTarget& target_;
  std::deque<channel::io::CmdRsp> backlog_;  // responses the rsp queue had no room for
  std::uint64_t executed_ = 0;
  std::uint64_t lose_every_ = 0, writes_ = 0, lost_ = 0;
  std::chrono::steady_clock::time_point lose_until_{};
};

}  // namespace visorlab::service
