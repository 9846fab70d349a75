// visorinput: the keyboard and mouse function driver. It drains input reports
// from queue 0 of its channel on every poll and hands them on, checking
// seq_no so a lost or reordered report across a recovery is counted, never
// hidden. Pause and resume call back at once; repeating one is -EBUSY.
#pragma once

#include <cstdint>
#include <functional>

#include "actors/bus/device.hpp"
#include "actors/bus/driver.hpp"
#include "channel/input_report.hpp"

namespace visorlab::drivers {

struct InputCounts {
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;          // seq_no gaps
  std::uint64_t out_of_order = 0;  // seq_no at or below one already seen
};

class VisorInput final : public bus::Driver {
 public:
  using Sink = std::function<void(const bus::Device&, const channel::input::Report&)>;
  explicit VisorInput(Sink sink = {}) : sink_(std::move(sink)) {}

  std::string_view name() const override { return "visorinput"; }
  std::span<const channel::ChannelKind> claims() const override;
  int probe(bus::Device& device) override;
  void remove(bus::Device& device) override;
  int pause(bus::Device& device, Done done) override;
  int resume(bus::Device& device, Done done) override;
  void channel_interrupt(bus::Device& device) override;

  // What this device has seen so far (zeros for an unknown device).
  static InputCounts counts(const bus::Device& device);

 private:
  Sink sink_;
};

}  // namespace visorlab::drivers
