// visorhba: the vhba function driver, a SCSI initiator. Commands go into the
// cmd queue with their data in a buffer of the channel's data area; responses
// are matched by handle. At most 128 commands are pending; more wait in order.
//
// Pause fails every pending command with DID_RESET; the guest's SCSI layer
// (here: the driver's upper half) reissues them, in order, after resume, so a
// recovery loses nothing and each request completes exactly once. A buffer
// whose command may still be executing in the IO partition stays out of use
// until its stale response or the answer to a later command arrives (when
// every buffer is held, a no-data TEST UNIT READY asks for one). A command that outlives its timeout gets
// a task-management ABORT and completes with DID_TIME_OUT.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "actors/bus/device.hpp"
#include "actors/bus/driver.hpp"
#include "channel/iochannel.hpp"

namespace visorlab::drivers {

inline constexpr std::int32_t kDidTimeOut = 0x03;
inline constexpr std::int32_t kDidNoConnect = 0x01;

struct ScsiResult {
  std::int32_t linuxstat = 0;  // 0: good; DID_* << 16 for host errors; the SCSI status byte otherwise
  std::uint8_t scsistat = 0;
  std::array<std::uint8_t, 18> sense{};
  std::vector<std::uint8_t> data;  // data-in
  std::uint32_t resets = 0;        // times it was failed with DID_RESET and reissued
};

struct ScsiRequest {
  std::array<std::uint8_t, 16> cdb{};
  channel::io::DataDir dir = channel::io::DataDir::none;
  std::vector<std::uint8_t> data;  // data-out for writes
  std::uint32_t data_in = 0;       // bytes expected back for reads
  std::function<void(const ScsiResult&)> done;
};

struct HbaCounts {
  std::uint64_t issued = 0;     // inserted into the cmd queue (reissues included)
  std::uint64_t completed = 0;  // completions handed to the requester
  std::uint64_t resets = 0;     // commands failed with DID_RESET at a pause
  std::uint64_t aborts = 0;     // ABORTs sent on timeout
  std::uint64_t stale = 0;      // responses for commands already failed
};

// Watches one device's I/O for metrics (the guest's IoRecorder): asked once
// per request, at submit, whether to time it — `write` is data to the device;
// requests with no data are not asked — answering 0 (no) or a token; told,
// for each request it gave a token, how long it took from submit to
// completion (a reissue after a pause included), with the token back (many
// timed requests may be in flight). idle() when the device has nothing
// pending or waiting. Called on the thread driving the device, never
// re-entering the driver; an untimed request costs one virtual call.
class IoObserver {
 public:
  virtual ~IoObserver() = default;
  virtual std::uint32_t sample(bool write) noexcept = 0;
  virtual void done(bool write, std::chrono::nanoseconds latency, std::uint32_t token) noexcept = 0;
  virtual void idle() noexcept {}
};

class VisorHba final : public bus::Driver {
 public:
  using Clock = std::chrono::steady_clock;
  explicit VisorHba(std::chrono::milliseconds timeout = std::chrono::seconds(30)) : timeout_(timeout) {}

  std::string_view name() const override { return "visorhba"; }
  std::span<const channel::ChannelKind> claims() const override;
  int probe(bus::Device& device) override;
  void remove(bus::Device& device) override;
  int pause(bus::Device& device, Done done) override;
  int resume(bus::Device& device, Done done) override;
  void channel_interrupt(bus::Device& device) override;

  // Queues a request on a bound device (also while paused: it waits).
  // Returns -ENODEV for a device this driver does not hold, -EINVAL for a
  // request larger than one buffer.
  int submit(bus::Device& device, ScsiRequest request);

  // Finds the observer of a device being probed (null: none). It must stay
  // valid while the device is bound (until remove()).
  using ObserverLookup = std::function<IoObserver*(const bus::Device&)>;
  void set_observers(ObserverLookup lookup) { observers_ = std::move(lookup); }

  static HbaCounts counts(const bus::Device& device);
  static std::size_t pending(const bus::Device& device);

 private:
  std::chrono::milliseconds timeout_;
  ObserverLookup observers_;
};

}  // namespace visorlab::drivers
