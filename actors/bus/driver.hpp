// A function driver as visorbus sees it (vhba, vnic, keyboard, mouse): it
// claims channel types, and must supply probe, remove, pause and resume; the
// bus polls channel_interrupt while the device runs.
#pragma once

#include <functional>
#include <span>
#include <string_view>

#include "channel/channel_types.hpp"

namespace visorlab::bus {

class Device;

class Driver {
 public:
  using Done = std::function<void(int status)>;
  virtual ~Driver() = default;

  virtual std::string_view name() const = 0;  // "visorhba", "visorinput", …
  // The channel kinds this driver claims (matched by type GUID, then checked).
  virtual std::span<const channel::ChannelKind> claims() const = 0;

  virtual int probe(Device& device) = 0;  // 0: bound
  virtual void remove(Device& device) = 0;
  // Stop touching the channel, then call done(0); maybe later. After done the
  // channel's pause guard is revoked until resume.
  virtual int pause(Device& device, Done done) = 0;
  virtual int resume(Device& device, Done done) = 0;
  // Polled while the device runs (spec §4: every 10 jiffies in the kernel).
  virtual void channel_interrupt(Device& device) = 0;
};

}  // namespace visorlab::bus
