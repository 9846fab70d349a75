// One owner's share of a by-state gauge (visorlab_partitions{host,state},
// visorlab_devices{host,state}). Several owners on one host — every guest
// actor, every keeper, the command partition — count into the same series;
// each does so through its own StateShare, which adds only the change since
// its last set() (atomic gauge increments, so the owners need no lock among
// themselves) and takes its whole share back when destroyed.
//
// A StateShare belongs to one thread at a time (its owner); the Metrics must
// outlive it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <prometheus/gauge.h>

#include "metrics/registry.hpp"

namespace visorlab::metrics {

class StateShare {
 public:
  enum class Family { partitions, devices };

  StateShare(Metrics& metrics, Family family, std::string host);
  StateShare(const StateShare&) = delete;
  StateShare& operator=(const StateShare&) = delete;
  ~StateShare() { clear(); }

  // This owner's counts now, by state; a state left out counts 0.
  void set(const std::map<std::string, std::int64_t, std::less<>>& counts);
  // Exactly one thing, in `state` (a partition that changed state).
  void set_one(std::string_view state);
  // Nothing any more.
  void clear();

 private:
  struct Share {
    prometheus::Gauge* gauge;
    std::int64_t count = 0;
  };
  Share& share(std::string_view state);

  Metrics& metrics_;
  Family family_;
  std::string host_;
  std::map<std::string, Share, std::less<>> shares_;  // by state
};

}  // namespace visorlab::metrics
