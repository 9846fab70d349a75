// The command partition's end of one guest's controlvm channel: it sends
// commands (unique message handles) into the EVENT queue and reads the
// guest's ACKs (ACK queue) and responses (REQUEST queue — where the Linux
// guest writes them). A command whose response does not come within the
// timeout is reported as timed out, never retried silently.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "channel/channel.hpp"
#include "channel/controlvm.hpp"

namespace visorlab::command {

namespace cvm = visorlab::channel::controlvm;

struct Answer {
  std::uint64_t handle = 0;
  std::uint32_t id = 0;
  bool acked = false;      // the guest acknowledged it before dispatching
  bool timed_out = false;  // no response within the timeout
  bool failed = false;
  std::uint32_t status = 0;  // completion_status
  cvm::Packet packet{};      // the response's packet (state, features, …)
};

class CommandPartition {
 public:
  using Clock = std::chrono::steady_clock;

  explicit CommandPartition(channel::Channel& controlvm, std::chrono::milliseconds timeout = std::chrono::seconds(2))
      : controlvm_(controlvm), timeout_(timeout) {}

  // Queues a command; its handle, or nullopt if the EVENT queue is full.
  std::optional<std::uint64_t> send(cvm::Id id, const cvm::Packet& packet = {}, std::uint32_t flags =
                                                                                  cvm::flag::response_expected,
                                    Clock::time_point now = Clock::now());

  // Reads ACKs and responses; returns every command answered or timed out
  // since the last poll, in the order they were settled.
  std::vector<Answer> poll(Clock::time_point now = Clock::now());

  std::size_t outstanding() const { return outstanding_.size(); }
  // Responses for handles we never sent or already settled.
  std::uint64_t unexpected() const { return unexpected_; }

  // The spec's commands, as packets.
  static cvm::Packet init_chipset(std::uint32_t features);
  static cvm::Packet bus(std::uint32_t bus_no, std::uint32_t dev_count = 0);
  static cvm::Packet device(std::uint32_t bus_no, std::uint32_t dev_no, const channel::Guid& type = {},
                            std::uint64_t channel_addr = 0, std::uint64_t channel_bytes = 0);
  static cvm::Packet change_state(std::uint32_t bus_no, std::uint32_t dev_no, std::uint16_t state,
                                  bool phys_device = false);
  // Parahotplug (SR-IOV) around a recovery: the guest sees only the active bit.
  static cvm::Packet parahotplug(std::uint32_t bus_no, std::uint32_t dev_no, bool enable) {
    return change_state(bus_no, dev_no, enable ? cvm::segment::running : 0, true);
  }

 private:
  struct Outstanding {
    std::uint32_t id;
    bool acked;
    bool wants_response;
    Clock::time_point deadline;
  };

  channel::Channel& controlvm_;
  std::chrono::milliseconds timeout_;
  std::uint64_t next_handle_ = 1;
  std::map<std::uint64_t, Outstanding> outstanding_;
  std::uint64_t unexpected_ = 0;
};

}  // namespace visorlab::command
