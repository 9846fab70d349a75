// Judges a drill history against the invariants of DESIGN.md ("Invariants a
// drill checks") and the drill file's `expect` block:
//   disk   every issued I/O completes exactly once (lost_io, duplicated_io);
//          every acknowledged write stays readable (a stale read is a lost
//          write, counted in lost_io); what reads see is intact (verify_errors);
//          no I/O fails outside a fault window that may disturb its device
//          (io_errors); the final read covers every block with an
//          acknowledged write (final_read; devices destroyed by a step aside)
//   input  no report lost or out of order, per device
//   net    frames drop only inside a fault window (dropped_outside_faults)
//   pause  violations recorded as they happened are carried through
//   faults every recovery succeeds; its phases and the I/O stall are timed
//          (max_recovery_ms, max_stall_ms)
// Invariants hold with limit 0 unless `expect` sets that key's limit.
// Each failure names the invariant or limit and the first offender.
//
// The checker streams: it is given the history's summary (everything but
// its events) first, then each event in time order, and keeps only what a
// later event can still need — about 100 bytes per disk sector written, plus
// the ops and frames in flight — so an hour-long drill is judged in the
// memory of a minute-long one.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "drill/history.hpp"
#include "topology/model.hpp"

namespace visorlab::drill {

struct CheckOptions {
  // Frames sent up to this long after a fault window ends may still drop:
  // queues drain and links come back after the fault is lifted.
  Nanos net_grace = 100'000'000;
  // …and frames sent this long before it began were in flight when it struck.
  Nanos net_in_flight = 10'000'000;
  // Disk I/O failing up to this long after a fault window ends is still the
  // fault's (a command that timed out during it, a queue draining).
  Nanos disk_grace = 1'000'000'000;
  // The workload read back every written block after the drill's end
  // (history.end): judge that every one was (off when it does not verify).
  bool final_read = false;
  // The timeline's bucket (the plot's IOPS and p99), widened so that a drill
  // has at most kMaxTimelineBuckets.
  Nanos timeline_bucket = 100'000'000;
};

inline constexpr std::size_t kMaxTimelineBuckets = 1000;

// Disk I/O over the drill, per bucket of time: ops that completed ok, and
// the p99 of their latency (none in a bucket where none completed).
struct Timeline {
  Nanos bucket = 0;
  std::vector<std::uint64_t> ops;
  std::vector<std::optional<double>> p99_us;
};

// The final read (Jepsen's): every 512-byte block with an acknowledged write,
// read again after the workload stopped.
struct FinalRead {
  bool checked = false;      // CheckOptions::final_read
  std::uint64_t blocks = 0;  // blocks with an acknowledged write (devices destroyed by a step aside)
  std::uint64_t ok = 0;      // …read back after the drill's end, holding their latest write
  std::uint64_t bad = 0;     // …not read back, or read back stale or damaged
};

struct LatencyUs {
  double p50 = 0;
  double p99 = 0;
  double max = 0;
};

struct DiskTotals {
  std::uint64_t issued = 0;      // ops invoked
  std::uint64_t completed = 0;   // ops completed (ok or failed) at least once
  std::uint64_t failed = 0;      // …of which with an error
  std::uint64_t retried = 0;     // reissues after DID_RESET
  std::uint64_t lost = 0;        // lost_ops + lost_writes
  std::uint64_t lost_ops = 0;    // invoked, never completed
  std::uint64_t lost_writes = 0; // acknowledged writes a later read did not see
  std::uint64_t duplicated = 0;  // completions beyond the first, or of ops never issued
  std::uint64_t verify_errors = 0;  // blocks read bad: checksum, LBA, device or generation
  std::uint64_t io_errors = 0;      // ops failed outside every fault window that may disturb them
  FinalRead final_read;
  double iops = 0;               // completed / duration
  LatencyUs latency_us;          // invoke → first successful completion
};

struct NetTotals {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;                 // sent, never received
  std::uint64_t dropped_outside_faults = 0;  // …sent outside every fault window affecting it
  std::uint64_t duplicated = 0;              // received twice, or never sent
};

struct InputTotals {
  std::uint64_t sent = 0;       // highest seq_no produced, summed over devices
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;       // produced (or skipped over), never delivered
  std::uint64_t out_of_order = 0;  // delivered after a higher seq_no (or again)
};

// One fault as judged: when its phases ended (0: not applicable) and how long each took.
struct FaultResult {
  std::size_t step = 0;
  std::string kind;
  std::string target;
  Nanos start = 0;
  Nanos end = 0;  // the fault lifted (the drill's end if it never was)
  Nanos detect_at = 0, pause_at = 0, restart_at = 0, resume_at = 0;
  double detect_ms = 0;   // detect − start
  double pause_ms = 0;    // pause − the previous phase that applies (or start)
  double restart_ms = 0;  // restart − …
  double resume_ms = 0;   // resume − …
  // resume − start (held faults: resume − end, the hold being deliberate);
  // without a resume, up to the last phase or the fault's end.
  double total_ms = 0;
  // Longest time no disk I/O completed on an affected device around the fault.
  double stall_ms = 0;
  bool has_recovery = false;  // recovery phases were recorded
  bool recovered = true;      // …and ok
};

struct ExpectResult {
  std::string what;  // lost_io, max_recovery_ms, or a kOtherExpectations key
  double limit = 0;
  double value = 0;
  bool ok = true;
};

struct Failure {
  std::string what;    // the expect key, or the invariant: recovery_failed, net_duplicated, history
  std::uint64_t count = 0;  // how many offended
  double limit = 0;
  // The first offender (by time).
  std::string device;
  std::uint64_t id = 0;  // op id, frame seq, seq_no or step index
  Nanos at = 0;
  std::string detail;    // one sentence naming it

  std::string message() const;  // "lost_io: 2 > 0; first: …"
};

struct CheckResult {
  bool pass = true;
  double duration_s = 0;
  DiskTotals disk;
  NetTotals net;
  InputTotals input;
  std::vector<FaultResult> faults;   // by start
  // As recorded, then one io_error per device with failed I/O outside the
  // fault windows (its first op, and how many).
  std::vector<Violation> violations;
  std::vector<ExpectResult> expect;  // the file's expect block, in order (lost_io, max_recovery_ms, others)
  std::vector<Failure> failures;     // empty iff pass
  Timeline timeline;
};

class Checker {
 public:
  // `summary`: the history's name, end, devices, texts, faults, recoveries
  // and violations — all but its events (ignored), which come through add.
  Checker(History summary, const topology::Expect& expect, const CheckOptions& options = {});
  ~Checker();
  Checker(const Checker&) = delete;
  Checker& operator=(const Checker&) = delete;

  // The next event in time order, with the blocks it saw if it is a read's
  // completion (History::seen). Device and text ids are the summary's.
  void add(const Event& event, std::span<const BlockSeen> seen = {});
  // The verdict, once every event was added.
  CheckResult finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A history in memory, judged: every event added to a Checker in turn.
CheckResult check(const History& history, const topology::Expect& expect, const CheckOptions& options = {});

}  // namespace visorlab::drill
