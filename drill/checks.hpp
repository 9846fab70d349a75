// The checks drill/checker.cpp runs over a history, one file per invariant
// family (check_disk, check_net, check_input, check_faults), each counting its
// offences and keeping the first. Internal to the checker.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "drill/checker.hpp"
#include "drill/history.hpp"

namespace visorlab::drill::checks {

constexpr Nanos kNever = std::numeric_limits<Nanos>::max();
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

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

// ---------------------------------------------------------------------------
// Disk: every issued I/O completes exactly once; acknowledged writes stay
// readable; what reads see is intact.

struct OpState {
  std::size_t invoke = kNone;  // event index
  Nanos invoked_at = 0;
  Nanos completed_at = kNever;  // first completion, ok or failed
  Nanos ok_at = kNever;         // first completion, if it was ok
  std::uint32_t completions = 0;
};

// A block an acknowledged write covered.
struct AckedBlock {
  std::uint64_t lba;
  Nanos acked_at;
  Nanos invoked_at;
  std::uint64_t op_id;
  std::uint64_t gen;
  std::size_t latest;  // index of the entry with the latest invoke among this LBA's entries up to here
};

struct DiskDevice {
  bool active = false;  // any disk op recorded
  std::unordered_map<std::uint64_t, OpState> ops;
  std::unordered_map<std::uint64_t, std::uint64_t> write_by_gen;  // gen → op id
  std::vector<AckedBlock> acked;  // by (lba, acked_at)
  std::vector<Nanos> ok_times;    // successful completions, in time order
  Nanos last_invoke = -1;
  std::set<std::uint64_t> lost_writes;  // op ids already counted
};

struct DiskCheck {
  DiskTotals totals;
  Tally lost, duplicated, verify, io_errors, final_read;
  std::vector<DiskDevice> devices;
  // Per device: blocks the final read saw → whether each held its latest write.
  std::vector<std::unordered_map<std::uint64_t, bool>> final_seen;
  std::vector<Violation> io_error_violations;  // per device: the first failure outside the fault windows
};

DiskCheck check_disk(const History& h, const CheckOptions& options);

// ---------------------------------------------------------------------------
// Net: frames drop only inside a fault window affecting them.

struct NetCheck {
  NetTotals totals;
  Tally outside, duplicated;
};

NetCheck check_net(const History& h, const CheckOptions& options);

// ---------------------------------------------------------------------------
// Input: no report lost or out of order, per device.

struct InputCheck {
  InputTotals totals;
  Tally lost, out_of_order;
};

InputCheck check_input(const History& h);

// ---------------------------------------------------------------------------
// Faults: each recovery's phases and the disk stall around it; recoveries that
// failed; recovery phases without a fault window.

struct FaultCheck {
  std::vector<FaultResult> faults;
  Tally failed, history;
};

FaultCheck check_faults(const History& h, const DiskCheck& disk);

// The devices each of history.faults may disturb, as ids; nullopt: every device.
std::vector<std::optional<std::unordered_set<DeviceId>>> affected_ids(const History& h);

}  // namespace visorlab::drill::checks
