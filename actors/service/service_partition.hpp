// A service partition's devices, whatever its kind: the IO partition serves
// vhba (a SCSI target over a backing file per disk) and vnic (a software
// switch); the console partition serves keyboard and mouse. It attaches to
// channels the guests created, so a restarted partition picks up the same
// channels — with their queued signals — where the old one left them.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <functional>
#include <vector>

#include "actors/runtime/messages.hpp"
#include "actors/service/console_partition.hpp"
#include "actors/service/scsi_target.hpp"
#include "actors/service/software_switch.hpp"
#include "actors/service/vnic_backend.hpp"
#include "actors/service/vhba_backend.hpp"
#include "channel/end/channel_end.hpp"

namespace visorlab::service {

// What a service partition is (the orchestrator's ServiceSpec, as its
// process gets it on the command line).
using ServiceOptions = actors::ServiceSpec;

class ServicePartition {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ServicePartition(ServiceOptions options);
  ~ServicePartition();

  // Serves a device; throws std::invalid_argument / std::runtime_error /
  // channel errors saying why it cannot.
  void attach(const actors::DeviceAttach& device, channel::TransportHandler on_event = {});
  // Serves several devices, their channels opened in parallel (a restarted
  // partition re-attaching all it serves). "" or, per device refused, why.
  std::string attach_many(const std::vector<actors::DeviceAttach>& devices,
                          const std::function<channel::TransportHandler(const std::string& device)>& on_event);
  // false for an unknown device.
  bool detach(const std::string& device);
  bool pause(const std::string& device);
  bool resume(const std::string& device);
  // The lose_writes fault: until `until`, every `every`th write to any disk
  // is acknowledged without being written (a disk that lies). Ends by itself.
  void lose_writes(std::uint64_t every, Clock::time_point until);

  // Serves what is waiting on every channel; true if anything moved. Disks
  // round robin, one command each per pass, at most kDiskPasses each per poll
  // (a guest's usual queue depth), so that control messages (pause, attach)
  // wait at most one poll.
  bool poll(Clock::time_point now = Clock::now());
  static constexpr std::size_t kDiskPasses = 8;

  // Every channel served: what a sleep waits on when nothing moves.
  std::vector<const channel::Channel*> channels() const;
  // How long such a sleep may last: until the next input report is due, or
  // the idle bound (a guest's signal or a transport event ends it sooner).
  std::chrono::milliseconds sleep_bound() const;
  static constexpr std::chrono::milliseconds kIdleBound{100};

  // A console's input reports per second per device from now on; 0 stops
  // them. False (and nothing changes) for a rate below 0 or not finite.
  bool set_input_rate(double per_s);

  actors::ServiceStats stats() const;
  // Devices served (a warm spare serves none until it is promoted).
  std::size_t devices() const { return vhba_.size() + inputs_.size() + vnics_.size(); }
  const ServiceOptions& options() const { return options_; }

 private:
  // Set from a link thread when the channel's transport failed; the poll
  // loop then re-attaches (a cut network healed, the guest end came back).
  using Broken = std::shared_ptr<std::atomic<bool>>;
  struct Vhba {
    Broken broken;
    std::unique_ptr<channel::ChannelEnd> end;
    std::unique_ptr<ScsiTarget> target;
    std::unique_ptr<VhbaBackend> backend;
  };
  struct Vnic {
    Broken broken;
    std::unique_ptr<channel::ChannelEnd> end;
    std::unique_ptr<VnicBackend> backend;
    std::string switch_name;
  };
  struct Input {
    Broken broken;
    std::unique_ptr<channel::ChannelEnd> end;
  };

  static channel::TransportHandler watch(const Broken& broken, channel::TransportHandler also);
  void check(const actors::DeviceAttach& device) const;
  void install(const actors::DeviceAttach& device, Broken broken, std::unique_ptr<channel::ChannelEnd> end);
  static void mend(const Broken& broken, channel::ChannelEnd& end);

  ServiceOptions options_;
  std::map<std::string, Vhba> vhba_;
  std::uint64_t lose_every_ = 0;  // lose_writes, also for disks attached during the window
  Clock::time_point lose_until_{};
  std::map<std::string, Input> inputs_;
  std::map<std::string, Vnic> vnics_;
  std::map<std::string, std::unique_ptr<SoftwareSwitch>> switches_;  // made on first use
  ConsolePartition console_;
  std::uint64_t reports_ = 0;
  Clock::time_point last_produce_{};
  double input_credit_ = 0;
};

}  // namespace visorlab::service
