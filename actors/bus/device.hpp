// A device on a virtual bus: vbus<B>:dev<D>, with the attributes the kernel
// shows in sysfs and visorlab's driver and state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "channel/end/channel_end.hpp"
#include "channel/guid.hpp"
#include "actors/runtime/messages.hpp"

namespace visorlab::bus {

class Driver;

using actors::DeviceState;

class Device {
 public:
  Device(std::uint32_t bus_no, std::uint32_t dev_no, channel::Guid type, std::uint64_t nbytes)
      : bus_no_(bus_no), dev_no_(dev_no), type_(type), nbytes_(nbytes) {}

  std::uint32_t bus_no() const { return bus_no_; }
  std::uint32_t dev_no() const { return dev_no_; }
  std::string name() const { return "vbus" + std::to_string(bus_no_) + ":dev" + std::to_string(dev_no_); }

  // sysfs-style attributes.
  const channel::Guid& typeguid() const { return type_; }
  std::uint64_t nbytes() const { return nbytes_; }
  std::string type_name() const;  // "vhba", … or "" for an unknown type
  channel::Guid zoneguid() const;
  std::uint64_t clientpartition() const;
  std::string_view driver_name() const;  // "" when no driver is bound
  DeviceState state() const { return state_; }

  // The device's channel; null when none could be attached.
  channel::Channel* channel() { return end_ ? &end_->channel() : nullptr; }
  const channel::Channel* channel() const { return end_ ? &end_->channel() : nullptr; }

  // Per-device state a driver keeps (its private data, as dev_set_drvdata).
  std::shared_ptr<void> driver_data;

 private:
  friend class VirtualBus;
  std::uint32_t bus_no_, dev_no_;
  channel::Guid type_;
  std::uint64_t nbytes_;
  std::unique_ptr<channel::ChannelEnd> end_;
  Driver* driver_ = nullptr;
  DeviceState state_ = DeviceState::no_driver;
};

}  // namespace visorlab::bus
