// The guest's chipset: controlvm handling as the Linux guest does it (spec §3,
// §4; docs/dev/visorchipset-behaviour.md). Each poll() reads commands from the
// EVENT queue, writes an ACK to the ACK queue before dispatching, and writes
// every response into the REQUEST queue; the RESPONSE queue is drained.
//
// Answers: a second CHIPSET_INIT → ALREADY_DONE; unknown bus → BUS_INVALID;
// existing bus or device → ALREADY_DONE; unknown device → DEVICE_INVALID;
// unknown id → ID_UNKNOWN; DEVICE_CHANGESTATE while a change is in flight →
// -EBUSY; any other command to a device with a change in flight → -EIO; test
// messages get no ACK and no response. A response goes out only when the
// request has response_expected; errors set failed and completion_status.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "actors/chipset/bus_model.hpp"
#include "channel/channel.hpp"

namespace visorlab::chipset {

class Chipset {
 public:
  using Clock = std::chrono::steady_clock;
  // Raised for parahotplug requests (the guest's udev event): id, enable, bus, dev.
  using HotplugHandler = std::function<void(std::uint32_t id, bool enable, std::uint32_t bus_no, std::uint32_t dev_no)>;

  Chipset(channel::Channel& controlvm, BusModel& bus);

  void on_parahotplug(HotplugHandler handler) { on_hotplug_ = std::move(handler); }

  // Handles every command waiting now; expires parahotplug requests. Returns
  // how many commands were handled.
  std::size_t poll(Clock::time_point now = Clock::now());
  // A command or event waits to be handled (a look that changes nothing).
  bool has_commands() const;

  // The guest acknowledges a parahotplug request (sysfs devicedisabled /
  // deviceenabled). Returns false for an unknown id.
  bool parahotplug_done(std::uint32_t id);

  bool initialized() const { return initialized_; }
  std::uint32_t features() const { return features_; }
  // Responses that could not be queued (REQUEST full): never silently lost.
  std::uint64_t dropped_responses() const { return dropped_; }

  static constexpr std::chrono::milliseconds kParahotplugExpiry{2000};

 private:
  using DeviceKey = std::pair<std::uint32_t, std::uint32_t>;
  struct Hotplug {
    cvm::MessageHeader request;
    cvm::DeviceChangeState packet;
    Clock::time_point expires;
  };

  void dispatch(const cvm::Message& in, Clock::time_point now);
  void change_state(const cvm::Message& in, Clock::time_point now);
  // Sends the response shaped from `request`: status 0 success, >0 a Response
  // code, <0 -errno; `packet` (optional) fills the response's packet.
  void respond(const cvm::MessageHeader& request, int status, const cvm::Packet* packet = nullptr);
  void ack(const cvm::MessageHeader& request);

  channel::Channel& controlvm_;
  BusModel& bus_;
  HotplugHandler on_hotplug_;
  bool initialized_ = false;
  std::uint32_t features_ = 0;
  std::uint64_t dropped_ = 0;
  std::map<DeviceKey, bool> in_flight_;  // device → pause (true) or resume in flight
  std::uint32_t next_hotplug_id_ = 1;
  std::map<std::uint32_t, Hotplug> hotplugs_;
};

}  // namespace visorlab::chipset
