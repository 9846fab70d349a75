// One guest partition: its chipset polling the controlvm channel, its
// visorbus, and the function drivers (visorhba, visorinput, …). Device
// channels are prepared here before DEVICE_CREATE names them by channel_addr:
// the guest end owns the channel's memory, so it outlives any restart of the
// service partition on the other end.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/bus/virtual_bus.hpp"
#include "actors/guest/application.hpp"
#include "actors/guest/guest_metrics.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/drivers/visorhba.hpp"
#include "actors/drivers/visorinput.hpp"
#include "actors/drivers/visornic.hpp"
#include "actors/runtime/device_channels.hpp"
#include "actors/runtime/messages.hpp"

namespace visorlab::guest {

namespace cvm = visorlab::channel::controlvm;

struct GuestOptions {
  std::string name;         // "g0"
  std::string host = "local";  // the host it runs on (placement of its channels)
  std::chrono::milliseconds hba_timeout{30000};
  bool acknowledge_hotplug = true;  // the guest's udev answers parahotplug requests
  // Where the guest's metrics go (guest_metrics.hpp); null: none kept.
  std::shared_ptr<metrics::Metrics> metrics = nullptr;
};

class Guest {
 public:
  using Clock = std::chrono::steady_clock;
  using EventSink = std::function<void(const actors::TransportEvent&)>;  // called from any thread

  Guest(GuestOptions options, std::unique_ptr<channel::ChannelEnd> controlvm, EventSink on_event = {});
  ~Guest();

  // Prepares a device channel; returns where the service partition attaches.
  actors::Locator offer(const actors::ChannelOffer& offer);

  // Chipset, then every running device. Returns true if anything happened
  // (the caller polls again at once).
  bool poll(Clock::time_point now = Clock::now());
  // The devices and the application only: never the chipset, so no device
  // (nor its channel) goes away in it. A controlvm message waiting shows in
  // has_commands().
  bool poll_devices(Clock::time_point now = Clock::now());
  bool has_commands() const { return chipset_.has_commands(); }
  // After a poll: I/O is in flight with a service partition, so an answer
  // may come any moment (the caller polls again soon, without backing off —
  // but without spinning either: on a small host the spinning guests would
  // starve the partitions they wait for).
  bool waiting() const { return waiting_; }
  // The controlvm channel and every device's: what a sleep waits on.
  std::vector<const channel::Channel*> channels() const;
  // How long such a sleep may last: a doorbell ends it sooner; while the
  // controlvm link is down, poll() re-attaches it at the kernel's idle tick.
  std::chrono::milliseconds sleep_bound() const;
  static constexpr std::chrono::milliseconds kIdleBound{1000};
  static constexpr std::chrono::milliseconds kMendBound{100};

  // Runs `app` after every poll from now on (replacing any before).
  void run(std::shared_ptr<Application> app) { app_ = std::move(app); }
  // What runs on it (null: nothing).
  Application* application() const { return app_.get(); }

  std::vector<actors::DeviceInfo> devices() const;
  bus::Device* find(const std::string& device);  // by "g0/vhba0"
  const GuestOptions& options() const { return options_; }

  drivers::VisorHba& hba() { return hba_; }
  drivers::VisorInput& input() { return input_; }
  drivers::VisorNic& nic() { return nic_; }
  bus::VirtualBus& bus() { return bus_; }

 private:
  struct Prepared {
    actors::ChannelOffer offer;
    actors::Locator locator;
    std::unique_ptr<channel::ChannelEnd> end;  // the channel's memory (owner)
    bool taken = false;                        // a DEVICE_CREATE used it
  };
  std::unique_ptr<channel::ChannelEnd> take(const cvm::CreateDevice& packet, const channel::Expect& expect);
  void forget_destroyed();
  const std::string& device_name(std::uint32_t bus_no, std::uint32_t dev_no) const;

  GuestOptions options_;
  EventSink on_event_;
  std::unique_ptr<channel::ChannelEnd> controlvm_;
  // Before the drivers: their I/O observers live here and outlive them.
  std::unique_ptr<GuestMetrics> metrics_;
  // Drivers outlive the bus that calls them.
  drivers::VisorHba hba_;
  drivers::VisorInput input_;
  drivers::VisorNic nic_;
  bus::VirtualBus bus_;
  chipset::Chipset chipset_;
  std::map<std::uint64_t, Prepared> prepared_;  // by channel_addr
  bool waiting_ = false;
  std::vector<std::uint32_t> hotplug_acks_;     // udev's answers, given on the next poll
  Clock::time_point next_sweep_{};
  Clock::time_point next_metrics_{};
  std::shared_ptr<Application> app_;
};

}  // namespace visorlab::guest
