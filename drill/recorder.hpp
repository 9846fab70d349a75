// Records one thread's share of a drill history. One Recorder per recording
// thread (a guest's workload, the console producer, the nemesis…): appends
// take no lock and, once set up, allocate nothing but a new chunk every few
// thousand records, so recording costs a few ns per event. A drill drains a
// recorder as it goes (slice, then forget_before what it has safely stored);
// a small one is read whole (history(), merged by drill/history.hpp: merge).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "drill/append_log.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

// The drill's time base: steady-clock nanoseconds since `start`. Processes on
// one host share it by passing start_ns() (steady_clock is system-wide there).
struct DrillClock {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  Nanos now() const noexcept { return at(std::chrono::steady_clock::now()); }
  Nanos at(std::chrono::steady_clock::time_point t) const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - start).count();
  }
  std::int64_t start_ns() const noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
  }
  static DrillClock from_start_ns(std::int64_t ns) {
    return DrillClock{std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns))};
  }
};

class Recorder {
 public:
  // `expected_events` are allocated and touched now; beyond, chunks of that
  // size (each a page-faulting pause on the recording thread). Size it for
  // the whole drill — rate × duration — so none falls inside it.
  explicit Recorder(std::size_t expected_events = 1 << 16);

  // Set-up, before recording: the id to record `name` under.
  DeviceId device(std::string_view name);

  // Disk: one invoke per op, then exactly one ok or fail; retried in between
  // for a command reissued after a DID_RESET. Reads that verify pass what each
  // block held (decode_block), in LBA order.
  void disk_invoke(Nanos at, DeviceId device, std::uint64_t op_id, DiskOp op, std::uint64_t lba,
                   std::uint32_t blocks, std::uint64_t gen = 0) {
    Event e;
    e.at = at;
    e.device = device;
    e.kind = EventKind::disk_invoke;
    e.invoke = DiskInvoke{op_id, lba, gen, blocks, op};
    events_.push(e);
  }
  void disk_ok(Nanos at, DeviceId device, std::uint64_t op_id, std::span<const BlockSeen> seen = {}) {
    Event e;
    e.at = at;
    e.device = device;
    e.kind = EventKind::disk_ok;
    e.ok = DiskOk{op_id, seen.empty() ? 0 : blocks_.end(), static_cast<std::uint32_t>(seen.size())};
    for (const BlockSeen& b : seen) blocks_.push(b);
    events_.push(e);
  }
  void disk_retried(Nanos at, DeviceId device, std::uint64_t op_id) {
    Event e;
    e.at = at;
    e.device = device;
    e.kind = EventKind::disk_retried;
    e.retried = DiskRetried{op_id};
    events_.push(e);
  }
  // Rare: the reason's text is kept (an allocation the first time it is seen).
  void disk_fail(Nanos at, DeviceId device, std::uint64_t op_id, std::string_view reason);

  void frame_sent(Nanos at, DeviceId device, DeviceId destination, std::uint64_t seq) {
    frame(at, device, EventKind::frame_sent, destination, seq);
  }
  void frame_received(Nanos at, DeviceId device, DeviceId source, std::uint64_t seq) {
    frame(at, device, EventKind::frame_received, source, seq);
  }

  // Input: the producer (console partition) records each report it makes; the
  // guest records each one its driver delivers.
  void input_produced(Nanos at, DeviceId device, std::uint64_t seq_no) {
    input(at, device, EventKind::input_produced, seq_no);
  }
  void input_delivered(Nanos at, DeviceId device, std::uint64_t seq_no) {
    input(at, device, EventKind::input_delivered, seq_no);
  }

  // The nemesis and observers: rare, so plain structs.
  void fault(FaultWindow window) { faults_.push_back(std::move(window)); }
  void recovery(RecoveryPhases phases) { recoveries_.push_back(std::move(phases)); }
  void violation(Violation violation) { violations_.push_back(std::move(violation)); }

  // Events ever recorded (drained ones included).
  std::uint64_t events() const noexcept { return events_.end(); }

  // What is kept, as a history in time order.
  History history() const;

  // Events [first, first + max_events) in the order recorded (each index
  // below events(); those forgotten are skipped), with every device name,
  // failure text and violation: a self-contained piece of the history.
  History slice(std::uint64_t first, std::size_t max_events) const;
  // Forgets the events below `first` and the blocks their reads saw.
  void forget_before(std::uint64_t first);
  // The index of the first event kept.
  std::uint64_t first_kept() const noexcept { return events_.begin(); }

 private:
  void frame(Nanos at, DeviceId device, EventKind kind, DeviceId peer, std::uint64_t seq) {
    Event e;
    e.at = at;
    e.device = device;
    e.kind = kind;
    e.frame = Frame{peer, seq};
    events_.push(e);
  }
  void input(Nanos at, DeviceId device, EventKind kind, std::uint64_t seq_no) {
    Event e;
    e.at = at;
    e.device = device;
    e.kind = kind;
    e.input = InputReport{seq_no};
    events_.push(e);
  }

  AppendLog<Event> events_;
  AppendLog<BlockSeen> blocks_;
  std::vector<std::string> devices_;
  std::vector<std::string> texts_;  // distinct: a reason fails many ops
  std::vector<FaultWindow> faults_;
  std::vector<RecoveryPhases> recoveries_;
  std::vector<Violation> violations_;
};

}  // namespace visorlab::drill
