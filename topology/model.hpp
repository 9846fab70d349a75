// The topology and drill as plain C++: what a YAML `version: 1` file says,
// with guests and devices already expanded (`count: 4` → g0…g3, devices named
// `<guest>/<kind><n>` and numbered on their guest's buses). Built by parse,
// checked by validate; nothing here touches YAML.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/host_port.hpp"
#include "topology/source_map.hpp"

namespace visorlab::topology {

using Bytes = std::uint64_t;
using Duration = std::chrono::microseconds;

// The buses of a guest's bus tree (spec: bus 1 = console partition, bus 2 =
// IO partition). A device is `vbus<bus>:dev<dev>`.
inline constexpr std::uint32_t kConsoleBus = 1;
inline constexpr std::uint32_t kIoBus = 2;

using Address = net::HostPort;  // a remote host's agent: a port to connect to

// What one topology may hold. Past these a file is refused where it says so
// (an alias bomb is a located error, not an allocation failure); each is well
// above what one orchestrator drives (1,000 devices is the scale target).
inline constexpr std::size_t kMaxListItems = 16384;  // items in any one YAML list
inline constexpr std::size_t kMaxHosts = 256;
inline constexpr std::size_t kMaxGuests = 4096;
inline constexpr std::size_t kMaxDevicesPerGuest = 64;
inline constexpr std::size_t kMaxDevices = 16384;     // in guests, in total
inline constexpr std::uint64_t kMaxDiskSize = std::uint64_t{64} << 30;  // 64 GiB: the workload keeps a bit per block
inline constexpr std::uint64_t kMaxBlockSize = 64 << 10;  // one visorhba buffer: a command's data fits in it
inline constexpr double kMaxNetRate = 100'000;   // frames/s per vnic (a vnic's channel carries ~200k/s)
inline constexpr double kMaxInputRate = 10'000;  // reports/s per input device

struct Host {
  std::string name;
  std::optional<Address> address;  // absent: the agent is a local process
};

struct Command {
  std::string host;  // where the command partition runs
};

enum class ServiceKind { io, console };

struct Disk {
  std::string name;
  Bytes size_bytes = 0;
  std::optional<std::filesystem::path> path;  // absent: a file in the run dir
};

struct Switch {
  std::string name;
};

struct Service {
  std::string name;
  ServiceKind kind = ServiceKind::io;
  std::string host;
  std::vector<Disk> disks;        // io only
  std::vector<Switch> switches;   // io only
};

enum class DeviceKind { vhba, vnic, keyboard, mouse };

struct Device {
  std::string name;  // `<guest>/<kind><n>`, n counting per kind within the guest
  DeviceKind kind = DeviceKind::vhba;
  std::string service;
  std::optional<Bytes> disk_size;  // vhba: a fresh disk of this size…
  std::vector<std::string> disks;  // …or named disks of its service
  std::string switch_name;         // vnic: a switch of its service
  bool sriov = false;              // vnic: an SR-IOV VF (parahotplug on recovery)
  std::uint32_t bus = 0;           // kConsoleBus or kIoBus, from the kind
  std::uint32_t dev = 0;           // per guest and bus, in order of appearance
  std::string source;              // its field path, e.g. `guests[0].devices[1]`
};

struct Guest {
  std::string name;
  std::string host;
  std::vector<Device> devices;
  std::string source;       // `guests[i]`: one entry may expand to many guests
  std::string host_source;  // `guests[i].host` or `guests[i].host[k]`
};

struct DiskWorkload {
  Bytes block_size = 4096;
  std::uint32_t queue_depth = 8;
  double read_ratio = 0.5;
  bool verify = true;
};

struct NetWorkload {
  Bytes frame_size = 1500;
  double rate_per_s = 1000;
};

struct InputWorkload {
  double rate_per_s = 200;
};

struct Workload {
  DiskWorkload disk;
  NetWorkload net;
  InputWorkload input;
  // Record the history the checker judges. Not a YAML key: only drill_bench
  // turns it off, to measure what recording costs (docs/benchmarks.md).
  bool record = true;
};

enum class StepKind { recover, crash, pause, resume, destroy, create, partition, kill_agent, lose_writes };

struct Step {
  std::size_t index = 0;  // position in drill.steps (reports name steps by it)
  Duration at{0};
  StepKind kind = StepKind::recover;
  // recover/crash: a service; pause/resume/destroy: a device `guest/kindN`;
  // create: a guest; partition: two hosts; kill_agent: a host; lose_writes:
  // an IO service.
  std::vector<std::string> targets;
  std::optional<Duration> restart_after;  // crash, kill_agent (absent: at once)
  std::optional<Duration> for_duration;   // YAML `for`: partition, pause, lose_writes
  std::optional<std::uint64_t> every;     // lose_writes: every Nth write is acknowledged unwritten
  std::optional<Device> created;          // create: the new device, named and numbered

  const std::string& target() const { return targets.front(); }
};

struct Drill {
  std::uint64_t seed = 1;
  Duration duration = std::chrono::seconds(10);
  std::vector<Step> steps;
};

// Expectation keys besides lost_io and max_recovery_ms. Counts and max_* are
// upper limits, min_* lower limits; the drill engine judges them against the
// report.
inline constexpr std::array<std::string_view, 10> kOtherExpectations{
    "duplicated_io",           // io.disk.duplicated
    "verify_errors",           // io.disk.verify_errors
    "io_errors",               // io.disk.io_errors
    "lost_input",              // io.input.lost
    "out_of_order_input",      // io.input.out_of_order
    "dropped_outside_faults",  // io.net.dropped_outside_faults
    "violations",              // number of violations
    "max_stall_ms",            // largest faults[].stall_ms
    "max_disk_p99_us",         // io.disk.latency_us.p99
    "min_disk_iops",           // io.disk.iops
};

struct Expectation {
  std::string what;  // one of kOtherExpectations
  double limit = 0;
};

struct Expect {
  std::optional<std::uint64_t> lost_io;
  std::optional<Duration> max_recovery;  // YAML max_recovery_ms
  std::vector<Expectation> others;       // in file order
};

struct Topology {
  int version = 1;
  std::string name;
  std::vector<Host> hosts;
  Command command;
  std::vector<Service> services;
  std::vector<Guest> guests;
  Workload workload;
  Drill drill;
  Expect expect;
  SourceMap source;  // positions of every field, for validation messages
  std::string text;  // the YAML it was loaded from (an orchestrator's state dir keeps it)

  const Host* find_host(std::string_view name) const;
  const Service* find_service(std::string_view name) const;
  const Guest* find_guest(std::string_view name) const;
  const Device* find_device(std::string_view name) const;  // `guest/kindN`, as first declared
};

std::string_view to_string(ServiceKind kind);
std::string_view to_string(DeviceKind kind);
std::string_view to_string(StepKind kind);
std::optional<ServiceKind> service_kind_from(std::string_view text);
std::optional<DeviceKind> device_kind_from(std::string_view text);
std::optional<StepKind> step_kind_from(std::string_view text);

// Which partition serves a kind of device: io for vhba/vnic, console for
// keyboard/mouse.
ServiceKind served_by(DeviceKind kind);
// The bus a kind of device sits on: kIoBus or kConsoleBus.
std::uint32_t bus_for(DeviceKind kind);
// `vbus<B>:dev<D>`, as the bus tree shows it.
std::string bus_address(const Device& device);

// Devices are named `<guest>/<kind><n>` (DESIGN.md); the one place that
// makes and reads those names.
struct DeviceName {
  std::string guest;
  DeviceKind kind;
  std::uint32_t n;
};
std::string device_name(const std::string& guest, DeviceKind kind, std::uint32_t n);
// nullopt when the text is not shaped like a device name.
std::optional<DeviceName> parse_device_name(std::string_view text);

}  // namespace visorlab::topology
