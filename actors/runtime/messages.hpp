// The values actors exchange across folder boundaries. Each has inspect() so
// CAF can carry it between processes (agent ↔ service partition, later
// orchestrator ↔ agent); runtime/config.hpp announces them.
#pragma once


#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "actors/runtime/inspect.hpp"

#include "channel/channel_types.hpp"
#include "topology/model.hpp"

namespace visorlab::actors {

// Kinds and states travel as enums, named only where people read them.
using channel::ChannelKind;
using topology::ServiceKind;

// A device on a guest's bus, as its driver left it.
enum class DeviceState : std::uint8_t { probed, running, pausing, paused, resuming, no_driver };
std::string_view to_string(DeviceState state);

// A recovery: planned (recover) or after the process died (crash).
enum class RecoveryKind : std::uint8_t { recover, crash };
std::string_view to_string(RecoveryKind kind);

// Who registers with the orchestrator for a host: its agent daemon, or the
// partition host that runs its partitions.
enum class HostRole : std::uint8_t { agent, partitions };
std::string_view to_string(HostRole role);

// What registers: (register_atom, Registration, the actor).
struct Registration {
  std::string host;
  HostRole role = HostRole::agent;
};

// A device's channel, prepared on the guest's side before DEVICE_CREATE names
// it by `addr` (in s-Par the channel is guest memory the command partition
// hands out; here the guest end creates it where placement says).
struct ChannelOffer {
  std::uint64_t addr = 0;      // DEVICE_CREATE's channel_addr
  std::string device;          // "g0/vhba0"
  std::string channel;         // the channel's name on the machine (shm); "" = device
  ChannelKind kind = ChannelKind::vhba;  // vhba, vnic, keyboard, mouse
  std::uint32_t bus_no = 0;
  std::uint32_t dev_no = 0;
  std::string service_host;    // where the service partition's end lives
  std::string listen_host = "127.0.0.1";  // TCP: where the guest end listens
};

// Where a service partition finds a channel: "shm:<channel name>" or
// "tcp:<ip>:<port>".
using Locator = std::string;

// What a service partition needs to serve one device.
struct DeviceAttach {
  std::string device;  // "g0/vhba0"
  ChannelKind kind = ChannelKind::vhba;  // vhba, vnic, keyboard, mouse
  Locator channel;
  std::string disk_path;  // vhba: the backing file
  std::uint64_t disk_bytes = 0;
  std::string switch_name;  // vnic
  std::string guest_host;   // where the guest end lives (a cut of that host concerns this channel)
  // A re-attach after every device was paused: the guest failed what it had
  // queued with DID_RESET and re-issues it, so the service skips what waits
  // in the queue instead of running it twice (as a SCSI target aborts every
  // task at a reset). vhba only.
  bool reset = false;
  // Attach it paused: an operator paused it, and a recovery of its service
  // does not end that pause (only resume does).
  bool paused = false;
};

// A device a service partition serves, with what recovery needs to pause,
// re-attach and resume it.
struct ServedDevice {
  std::string guest;
  std::uint32_t bus_no = 0;
  std::uint32_t dev_no = 0;
  bool sriov = false;  // parahotplug around recovery
  DeviceAttach attach;
};

// A device as the guest's bus shows it (sysfs attributes plus visorlab's).
struct DeviceInfo {
  std::string guest;
  std::string device;  // "g0/vhba0", "" if the offer is unknown
  std::string bus_name;  // "vbus2:dev0"
  std::uint32_t bus_no = 0;
  std::uint32_t dev_no = 0;
  std::string typeguid;
  std::string type_name;
  std::uint64_t nbytes = 0;
  std::string driver;
  DeviceState state = DeviceState::probed;
};

// One controlvm command for a guest, and what came back.
struct CommandRequest {
  std::string guest;
  std::uint32_t id = 0;     // controlvm::Id
  std::uint32_t flags = 1;  // controlvm::flag::response_expected
  std::vector<std::uint8_t> packet;  // a controlvm::Packet's bytes (≤ its size)
};

struct CommandResult {
  std::uint64_t handle = 0;
  bool acked = false;
  bool timed_out = false;
  bool failed = false;
  std::uint32_t status = 0;  // completion_status
  std::uint16_t state = 0;   // device_change_state.state of the response
};

// A transport event seen by one end of a device channel.
struct TransportEvent {
  std::string device;
  std::uint32_t code = 0;  // tcp::EventCode: 1 partner failed, 2 deregistered
  std::string reason;
};

// One recovery of a service partition, phase by phase (steady-clock ns; 0 =
// the phase did not happen).
struct RecoveryTimes {
  std::string service;
  RecoveryKind kind = RecoveryKind::recover;
  std::int64_t start_ns = 0;     // recover requested, or the process killed
  std::int64_t detect_ns = 0;    // crash noticed (crash only)
  std::int64_t paused_ns = 0;    // every served device paused
  std::int64_t restarted_ns = 0; // the new process serves every device again
  std::int64_t resumed_ns = 0;   // every device resumed
  std::uint32_t devices = 0;
  bool ok = false;
  std::string error;  // why not ok
};

// A guest to run on a partition host.
struct GuestSpec {
  std::string name;
  Locator controlvm;
  std::string command_host;  // where the controlvm channel's other end is (for cuts)
  bool acknowledge_hotplug = true;
  bool workload = false;  // run a workload (its handle is the guest's; started by workload_actor's start)
};

// A service partition to run on a partition host.
struct ServiceSpec {
  std::string name;
  ServiceKind kind = ServiceKind::io;
  double input_rate = 0;  // console: reports per second per device
};

// What a service partition process serves and has done.
struct ServiceStats {
  std::string name;
  ServiceKind kind = ServiceKind::io;
  std::int64_t pid = 0;
  std::uint32_t devices = 0;
  std::uint64_t commands = 0;  // SCSI commands executed
  std::uint64_t frames = 0;    // vnic frames forwarded
  std::uint64_t reports = 0;   // input reports delivered
};

VISORLAB_MESSAGE(Registration, x.host, x.role)
VISORLAB_MESSAGE(GuestSpec, x.name, x.controlvm, x.command_host, x.acknowledge_hotplug, x.workload)
VISORLAB_MESSAGE(ServiceSpec, x.name, x.kind, x.input_rate)

// A console's input rate is a finite number of reports per second, ≥ 0.
inline bool valid_input_rate(double per_s) { return per_s >= 0 && std::isfinite(per_s); }
VISORLAB_MESSAGE(ServiceStats, x.name, x.kind, x.pid, x.devices, x.commands, x.frames, x.reports)
VISORLAB_MESSAGE(ChannelOffer, x.addr, x.device, x.channel, x.kind, x.bus_no, x.dev_no, x.service_host, x.listen_host)
VISORLAB_MESSAGE(DeviceAttach, x.device, x.kind, x.channel, x.disk_path, x.disk_bytes, x.switch_name, x.guest_host,
                 x.reset, x.paused)
VISORLAB_MESSAGE(ServedDevice, x.guest, x.bus_no, x.dev_no, x.sriov, x.attach)
VISORLAB_MESSAGE(DeviceInfo, x.guest, x.device, x.bus_name, x.bus_no, x.dev_no, x.typeguid, x.type_name, x.nbytes,
                 x.driver, x.state)
VISORLAB_MESSAGE(CommandRequest, x.guest, x.id, x.flags, x.packet)
VISORLAB_MESSAGE(CommandResult, x.handle, x.acked, x.timed_out, x.failed, x.status, x.state)
VISORLAB_MESSAGE(TransportEvent, x.device, x.code, x.reason)
VISORLAB_MESSAGE(RecoveryTimes, x.service, x.kind, x.start_ns, x.detect_ns, x.paused_ns, x.restarted_ns,
                 x.resumed_ns, x.devices, x.ok, x.error)

}  // namespace visorlab::actors
