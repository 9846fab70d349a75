// The messages of a guest's workload (workload_actor in interfaces.hpp): what
// it is told to do, what it counts, and the history it hands back. The drill
// fills and reads them (drill/workload, drill/history_wire.hpp); they live
// here because every process that carries them announces them (config.cpp).
#pragma once


#include <cstdint>
#include <string>
#include <vector>

#include "actors/runtime/inspect.hpp"

namespace visorlab::actors {

// What the workload does inside one guest (the topology's `workload` block).
struct WorkloadSpec {
  std::uint64_t seed = 1;
  std::uint32_t block_size = 4096;
  std::uint32_t queue_depth = 8;
  double read_ratio = 0.5;
  bool verify = true;
  std::uint32_t frame_size = 1500;
  double net_rate = 0;    // frames/s per vnic
  double input_rate = 0;  // reports/s per input device (produced by the console partition)
  bool record = true;     // record the history (off only in drill_bench's overhead runs)
};

// Begin issuing I/O: the drill's clock starts at steady-clock `start_ns`;
// `peers` are the vnics this guest's vnics send to. A start after a stop
// with the same start_ns resumes.
struct WorkloadStart {
  WorkloadSpec spec;
  std::int64_t start_ns = 0;
  std::vector<std::string> peers;
};

// What a workload did so far (counted whether or not it records a history).
struct WorkloadStats {
  // Disk.
  std::uint64_t invoked = 0;        // ops issued (capacity probes not counted)
  std::uint64_t completed = 0;      // ops completed, ok or failed
  std::uint64_t failed = 0;         // …with an error (submit refused, or a non-zero linuxstat)
  std::uint64_t reads = 0;          // ops issued that read
  std::uint64_t writes = 0;         // ops issued that write
  std::uint64_t retried = 0;        // DID_RESET reissues of completed ops
  std::uint64_t bad_sectors = 0;    // sectors a read saw with a bad checksum or the wrong LBA/device
  std::uint64_t in_flight = 0;      // disk ops and capacity probes now
  std::uint64_t disks = 0;          // vhba devices in use now
  // Net.
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t frames_busy = 0;      // transmits refused by the throttle (-EBUSY)
  std::uint64_t frames_down = 0;      // transmits refused while paused or the link is down (-EAGAIN)
  std::uint64_t frames_refused = 0;   // transmits refused otherwise (-EMSGSIZE, -ENODEV, …)
  std::uint64_t frames_foreign = 0;   // received frames that are not the workload's: ignored
  std::uint64_t frames_bad = 0;       // received workload frames corrupt or for another device
  std::uint64_t frames_reordered = 0; // received with a seq not above the last from that sender
  std::uint64_t frames_skipped = 0;   // sequence numbers skipped over (dropped on the way)
  std::uint64_t nics = 0;             // vnic devices in use now
  // Input.
  std::uint64_t inputs = 0;
  // History.
  std::uint64_t events = 0;  // recorded so far
};

// One recorded event, as drill::Event has it (drill/history.hpp), field by
// field: `kind` is drill::EventKind's value, the payload fields that kind uses
// are set and the rest are 0.
struct HistoryRecord {
  std::int64_t at = 0;
  std::uint32_t device = 0;  // index into HistoryChunk::devices
  std::uint8_t kind = 0;
  std::uint64_t id = 0;      // disk: op_id; frames: seq; input: seq_no
  std::uint64_t lba = 0;     // disk_invoke
  std::uint64_t gen = 0;     // disk_invoke
  std::uint32_t count = 0;   // disk_invoke: sectors; disk_ok: blocks seen (the chunk's next `count` blocks)
  std::uint32_t ref = 0;     // disk_fail: reason (HistoryChunk::texts); frames: the peer device
  std::uint8_t op = 0;       // disk_invoke: drill::DiskOp
};

// What a verified read saw in one block (drill::BlockSeen).
struct HistoryBlock {
  std::uint64_t lba = 0;
  std::uint64_t gen = 0;
  std::uint64_t device_tag = 0;
  bool checksum_ok = false;
};

// Something wrong the workload saw as it happened (drill::Violation).
struct HistoryViolation {
  std::string kind;
  std::string device;
  std::int64_t at = 0;
  std::string detail;
};

// A bounded piece of a workload's history: records [first, first + size)
// of its events, the blocks those reads saw, and — in every chunk, since they
// are few — the device names and failure texts records refer to and the
// violations. `more`: ask again from first + records.size().
struct HistoryChunk {
  std::string name;
  std::uint64_t seed = 0;
  std::uint64_t first = 0;
  std::vector<std::string> devices;
  std::vector<std::string> texts;
  std::vector<HistoryRecord> records;
  std::vector<HistoryBlock> blocks;
  std::vector<HistoryViolation> violations;
  bool more = false;
};

VISORLAB_MESSAGE(WorkloadSpec, x.seed, x.block_size, x.queue_depth, x.read_ratio, x.verify, x.frame_size,
                 x.net_rate, x.input_rate, x.record)
VISORLAB_MESSAGE(WorkloadStart, x.spec, x.start_ns, x.peers)
VISORLAB_MESSAGE(WorkloadStats, x.invoked, x.completed, x.failed, x.reads, x.writes, x.retried, x.bad_sectors,
                 x.in_flight, x.disks, x.frames_sent, x.frames_received, x.frames_busy, x.frames_down,
                 x.frames_refused, x.frames_foreign, x.frames_bad, x.frames_reordered, x.frames_skipped, x.nics,
                 x.inputs, x.events)
VISORLAB_MESSAGE(HistoryRecord, x.at, x.device, x.kind, x.id, x.lba, x.gen, x.count, x.ref, x.op)
VISORLAB_MESSAGE(HistoryBlock, x.lba, x.gen, x.device_tag, x.checksum_ok)
VISORLAB_MESSAGE(HistoryViolation, x.kind, x.device, x.at, x.detail)
VISORLAB_MESSAGE(HistoryChunk, x.name, x.seed, x.first, x.devices, x.texts, x.records, x.blocks, x.violations, x.more)

}  // namespace visorlab::actors
