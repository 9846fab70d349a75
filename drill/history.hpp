// The history of a drill, Jepsen-style: what the workload did and saw, what
// the nemesis injected and how each recovery went, and violations observed
// directly — all stamped with steady-clock nanoseconds since the drill began.
// The workload and nemesis record it (drill/recorder.hpp); the checker judges
// it (drill/checker.hpp) knowing nothing else about them.
//
// High-rate things (disk ops, frames, input reports) are POD Events; rare
// things (fault windows, recovery phases, violations) carry text and are kept
// as plain structs beside them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "drill/block_format.hpp"

namespace visorlab::drill {

using Nanos = std::int64_t;       // steady-clock ns since the drill began
using DeviceId = std::uint32_t;   // index into History::devices (per recorder until merged)

enum class EventKind : std::uint8_t {
  disk_invoke,      // an I/O issued by the guest
  disk_ok,          // …completed successfully (reads: with what each block held)
  disk_fail,        // …completed with an error the guest saw
  disk_retried,     // …failed with DID_RESET at a pause and reissued: the same op
  frame_sent,       // a vnic frame sent to another device
  frame_received,   // a vnic frame received from another device
  input_produced,   // the console partition produced an input report
  input_delivered,  // the guest's driver delivered it
};

enum class DiskOp : std::uint8_t { read, write };

// Payloads, one per kind (no default member initialisers: they live in a union).
struct DiskInvoke {
  std::uint64_t op_id;   // unique per device
  std::uint64_t lba;
  std::uint64_t gen;     // writes: the generation written into every block (≥ 1)
  std::uint32_t blocks;
  DiskOp op;
};
struct DiskOk {
  std::uint64_t op_id;
  std::uint64_t first_block;  // reads: History::blocks[first_block, first_block + block_count)
  std::uint32_t block_count;  // 0: writes, or reads not verified
};
struct DiskFail {
  std::uint64_t op_id;
  std::uint32_t reason;  // index into History::texts
};
struct DiskRetried {
  std::uint64_t op_id;
};
struct Frame {
  DeviceId peer;  // sent: the destination; received: the source
  std::uint64_t seq;
};
struct InputReport {
  std::uint64_t seq_no;  // from 1, continuous per device
};

struct Event {
  Nanos at = 0;
  DeviceId device = 0;
  EventKind kind = EventKind::disk_invoke;
  union {
    DiskInvoke invoke;
    DiskOk ok;
    DiskFail fail;
    DiskRetried retried;
    Frame frame;
    InputReport input;
  };

  Event() : invoke{} {}
};
static_assert(std::is_trivially_copyable_v<Event>);

// A fault the nemesis injected: drill step `step` held between start and end.
struct FaultWindow {
  std::size_t step = 0;
  std::string kind;    // the step kind: recover, crash, pause, partition, …
  std::string target;  // a service, device, guest or host; "a,b" for a partition
  Nanos start = 0;
  Nanos end = 0;       // the fault lifted; 0: never (the drill's end)
  // A deliberately held fault (`for:`): its recovery is timed from `end`, not `start`.
  bool held = false;
  // Device names it can disturb (drill/affected.hpp); empty: every device.
  std::vector<std::string> affected;

  bool operator==(const FaultWindow&) const = default;
};

// How the recovery of step `step` went. Each timestamp is when that phase
// ended; 0: the phase does not apply (a planned recover detects nothing).
struct RecoveryPhases {
  std::size_t step = 0;
  Nanos detect = 0;   // the failure noticed
  Nanos pause = 0;    // every affected device paused
  Nanos restart = 0;  // the service partition serves again
  Nanos resume = 0;   // every affected device resumed
  bool ok = false;
  std::string error;  // why not ok

  bool operator==(const RecoveryPhases&) const = default;
};

// Something wrong seen as it happened, e.g. a channel touched while paused.
struct Violation {
  std::string kind;  // "pause_guard", …
  std::string device;
  Nanos at = 0;
  std::string detail;

  bool operator==(const Violation&) const = default;
};

struct History {
  std::string name;        // the drill's name
  std::uint64_t seed = 0;
  Nanos end = 0;           // when the drill ended; 0: at the last record

  std::vector<std::string> devices;  // DeviceId → name
  std::vector<std::string> texts;    // failure reasons
  std::vector<Event> events;         // in time order
  std::vector<BlockSeen> blocks;     // what reads saw, referenced by DiskOk
  std::vector<FaultWindow> faults;   // in start order
  std::vector<RecoveryPhases> recoveries;
  std::vector<Violation> violations; // in time order

  const std::string& device_name(DeviceId id) const { return devices.at(id); }
  std::optional<DeviceId> find_device(std::string_view name) const;
  // The id of `name`, added if new.
  DeviceId device_id(std::string_view name);
  // `end`, or the latest timestamp recorded.
  Nanos end_time() const;
  // The blocks a read saw (empty for writes and unverified reads).
  std::span<const BlockSeen> seen(const Event& ok) const;
  // Sorts events, faults and violations by time, keeping the recorded order of ties.
  void sort_by_time();

  // The same drill recorded: equal events (by device name, blocks seen and
  // failure text, wherever those are kept), faults, recoveries and violations.
  bool operator==(const History&) const;
};

// One history from several recorders' (or processes'): device names unified,
// failure reasons and block references renumbered, everything in time order.
History merge(std::vector<History> parts);

std::string_view to_string(EventKind kind);
std::string_view to_string(DiskOp op);

}  // namespace visorlab::drill
