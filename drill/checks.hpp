// The checks drill/checker.cpp runs over a history, one file per invariant
// family (check_disk, check_net, check_input, check_faults). Each is fed the
// events in time order, one at a time, and keeps only what a later event can
// still need — ops in flight, each disk block's recent writes, frames not yet
// received — so its memory is bounded by the cluster (its disks, its queue
// depths), not by the drill's length. Each counts its offences and keeps the
// first. Internal to the checker.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "drill/checker.hpp"
#include "drill/history.hpp"

namespace visorlab::drill::checks {

constexpr Nanos kNever = std::numeric_limits<Nanos>::max();

std::string seconds(Nanos t);  // "2.103s"
std::string number(double v);  // "%g", for limits and values in messages
inline double to_ms(Nanos d) { return static_cast<double>(d) / 1e6; }

// An offence, and the earliest one of its kind.
struct Offence {
  std::string device;
  std::uint64_t id = 0;
  Nanos at = 0;
  std::string detail;
};

struct Tally {
  std::uint64_t count = 0;
  std::optional<Offence> first;

  // `describe` builds the Offence only when it is the new first: cheap when thousands offend.
  template <class Describe>
  void add(Nanos at, Describe describe) {
    ++count;
    if (!first || at < first->at) first = describe();
  }
};

// The devices each of history.faults may disturb, as ids; nullopt: every device.
using Affected = std::vector<std::optional<std::unordered_set<DeviceId>>>;
Affected affected_ids(const History& h);
// Does fault `f` of `affected` disturb device `d`?
inline bool disturbs(const Affected& affected, std::size_t f, DeviceId d) {
  return !affected[f] || affected[f]->contains(d);
}

// A set of ids kept as runs: ids a workload hands out one after another
// (op ids, write generations) cost a run, not an entry each.
class IdSet {
 public:
  // False if `id` was in already.
  bool insert(std::uint64_t id);
  bool contains(std::uint64_t id) const;

 private:
  std::map<std::uint64_t, std::uint64_t> runs_;  // first → last
};

// Percentiles of many latencies in bounded memory: exact for the first
// kExact values, then from log-spaced buckets 1% wide.
class LatencySketch {
 public:
  void add(double value);
  std::uint64_t count() const noexcept { return count_; }
  double max() const noexcept { return max_; }
  // The nearest-rank q-quantile (0 < q ≤ 1); 0 when empty.
  double quantile(double q) const;
  void clear();

 private:
  static constexpr std::size_t kExact = 1 << 16;
  void bucket(double value);
  std::vector<double> exact_;
  std::vector<std::uint64_t> buckets_;  // once past kExact
  std::uint64_t count_ = 0;
  double min_ = 0, max_ = 0;
};

// ---------------------------------------------------------------------------
// Disk: every issued I/O completes exactly once; acknowledged writes stay
// readable; what reads see is intact; no I/O fails outside a fault window.

// An op's first completion: what latency, stalls and the plot are made of.
struct Completion {
  DeviceId device = 0;
  std::uint64_t op_id = 0;
  Nanos at = 0;       // completed
  Nanos latency = 0;  // since invoked
  bool ok = true;
};

class DiskCheck {
 public:
  DiskCheck(const History& summary, const CheckOptions& options, const Affected& affected);
  // One disk event; the op's first completion, if this is it.
  std::optional<Completion> add(const Event& e, std::span<const BlockSeen> seen);
  // Ops still in flight are lost; the final read is judged.
  void finish();

  DiskTotals totals;
  Tally lost, duplicated, verify, io_errors, final_read;
  LatencySketch latency;  // µs, invoke → first completion, of ops that completed ok
  std::vector<Violation> io_error_violations;  // per device: the first failure outside the fault windows, by device

 private:
  struct InFlight {
    Nanos invoked_at = 0;
    std::uint64_t lba = 0, gen = 0;
    std::uint32_t blocks = 0;
    DiskOp op = DiskOp::read;
  };
  // A write that covered a block and completed: what reads of it may see.
  struct Write {
    std::uint64_t gen = 0, op_id = 0;
    Nanos invoked_at = 0, completed_at = 0;
    bool acked = false;  // completed ok (a failed write may still have landed)
  };
  // A sector's writes, oldest dropped (prune). The sectors one write covers
  // share one list until another write splits them: an aligned workload's
  // 4 KiB blocks cost one list for eight sectors.
  using Writes = std::vector<Write>;
  struct Sector {
    std::shared_ptr<const Writes> writes;  // null: no write completed on it
    std::uint8_t final = 0;  // the final read: 0 not seen, 1 held its latest write, 2 did not
  };
  // Sectors by LBA, in pages allocated as they are first written.
  class Sectors {
   public:
    Sector* find(std::uint64_t lba);
    Sector& at(std::uint64_t lba);
    template <class F>
    void for_each(F f) const {
      for (const auto& [page, sectors] : pages_)
        for (std::uint64_t i = 0; i < kPage; ++i) f(page * kPage + i, (*sectors)[i]);
    }

   private:
    static constexpr std::uint64_t kPage = 4096;
    std::unordered_map<std::uint64_t, std::unique_ptr<std::array<Sector, kPage>>> pages_;
  };
  struct Device {
    std::unordered_map<std::uint64_t, InFlight> in_flight;  // by op id
    std::unordered_map<std::uint64_t, std::uint64_t> writing;  // gen → op id, of writes in flight
    std::multiset<Nanos> reads_from;  // when each read in flight was invoked
    Sectors sectors;
    IdSet ops, gens;  // op ids and write generations ever issued
    std::set<std::uint64_t> lost_writes;  // op ids already counted
    std::uint64_t io_errors = 0;
  };

  void invoke(const Event& e, Device& d);
  std::optional<Completion> complete(const Event& e, Device& d, std::span<const BlockSeen> seen);
  void judge_read(const Event& e, Device& d, const InFlight& read, std::span<const BlockSeen> seen);
  void io_error(const Event& e, const Device& d);
  // The acknowledged write a read invoked at `t` must not see older than: of
  // those on `b` acknowledged before `t`, the one invoked last.
  static const Write* must_see(const Writes& w, Nanos t);
  // Forgets writes no read can need any more: those superseded before every
  // read in flight began.
  static void prune(Writes& w, Nanos horizon);
  std::string describe(const InFlight& op) const;

  const History& h_;
  const CheckOptions& options_;
  const Affected& affected_;
  std::vector<Device> devices_;
  std::map<DeviceId, Violation> io_error_firsts_;
};

// ---------------------------------------------------------------------------
// Net: frames drop only inside a fault window affecting them.

class NetCheck {
 public:
  NetCheck(const History& summary, const CheckOptions& options, const Affected& affected);
  void add(const Event& e);
  void finish();

  NetTotals totals;
  Tally outside, duplicated;

 private:
  using Pair = std::uint64_t;  // src << 32 | dst
  struct Key {
    Pair pair;
    std::uint64_t seq;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept { return std::hash<std::uint64_t>()(k.seq * 0x9E3779B97F4A7C15ull ^ k.pair); }
  };
  void snapshot_until(Nanos t);
  void dropped(const Key& k, Nanos sent_at);
  void evict(Nanos now);

  const History& h_;
  const CheckOptions& options_;
  const Affected& affected_;
  std::unordered_map<Key, Nanos, KeyHash> pending_;  // sent, not received yet
  std::unordered_map<Key, Nanos, KeyHash> early_;    // received before its send was seen
  std::unordered_map<Pair, std::uint64_t> max_sent_, max_received_;
  // Per fault (by index): the highest seq received per pair before it began,
  // so "was this frame still in flight when it struck?" has an answer — a
  // link is FIFO, so if nothing sent after it had arrived, it had not either.
  std::vector<std::optional<std::unordered_map<Pair, std::uint64_t>>> received_by_start_;
  std::vector<std::size_t> by_start_;  // fault indices by start
  std::size_t next_start_ = 0;
  Nanos next_evict_ = 0;
};

// ---------------------------------------------------------------------------
// Input: no report lost or out of order, per device.

class InputCheck {
 public:
  explicit InputCheck(const History& summary) : h_(summary) {}
  void add(const Event& e);
  void finish(Nanos end);

  InputTotals totals;
  Tally lost, out_of_order;

 private:
  struct Gap {
    std::uint64_t last;      // the gap is [first, last]
    std::uint64_t after;     // the seq_no whose arrival opened it…
    Nanos at;                // …and when
  };
  struct Device {
    std::uint64_t highest = 0;        // highest seq_no delivered
    std::uint64_t produced_max = 0;
    std::uint64_t distinct = 0;       // seq_nos ≥ 1 delivered, each once
    std::map<std::uint64_t, Gap> gaps;  // by first: seq_nos below `highest` not delivered yet
    std::map<std::uint64_t, Nanos> produced_at;  // produced, not delivered yet
  };
  const History& h_;
  std::map<DeviceId, Device> devices_;
};

// ---------------------------------------------------------------------------
// Faults: each recovery's phases and the disk stall around it; recoveries that
// failed; recovery phases without a fault window.

class FaultCheck {
 public:
  FaultCheck(const History& summary, const Affected& affected);
  void invoked(DeviceId device, Nanos at);
  void completed_ok(DeviceId device, Nanos at);
  void finish(Nanos drill_end);

  std::vector<FaultResult> faults;
  Tally failed, history;

 private:
  // The longest time without a successful completion on a device around a
  // fault: from the last completion at or before its start to the first after
  // the recovery.
  struct Stall {
    bool started = false, done = false;
    Nanos previous = 0, longest = 0;
  };
  struct Device {
    std::optional<Nanos> last_ok;
    Nanos last_invoke = -1;
    std::map<std::size_t, Stall> stalls;  // by fault
  };
  const History& h_;
  const Affected& affected_;
  std::vector<Nanos> around_to_;  // per fault: the stall is looked for up to here
  std::map<DeviceId, Device> devices_;
};

}  // namespace visorlab::drill::checks
