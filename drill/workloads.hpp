// The drill's side of every guest's workload on a cluster: the handles the
// orchestrator hands out (Cluster::workload), driven with typed requests
// fanned out to all guests at once (one round trip, not one per guest).
// Errors are orchestrator::ClusterError, as the cluster's own.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/runtime/workload_messages.hpp"
#include "drill/history.hpp"
#include "drill/history_spool.hpp"
#include "orchestrator/cluster.hpp"
#include "topology/model.hpp"

namespace visorlab::drill {

// What the topology's `workload` block asks every guest to do.
actors::WorkloadSpec workload_spec(const topology::Topology& topology);

class Workloads {
 public:
  explicit Workloads(orchestrator::Cluster& cluster,
                     std::chrono::milliseconds timeout = std::chrono::seconds(15));

  // Starts every guest's workload on the drill clock that began at steady
  // `start_ns`; `peers`: guest → the vnics its vnics send to.
  void start(const actors::WorkloadSpec& spec, std::int64_t start_ns,
             const std::map<std::string, std::vector<std::string>>& peers);
  void stop();
  // True once no guest has a disk op in flight.
  bool idle();
  // Disk ops completed so far, summed; a guest that does not answer in time
  // (busy in a recovery) is left out.
  double completed();
  // Summed over the guests that answered in time: only `completed` and
  // `frames_received` (what the drill watches).
  actors::WorkloadStats stats();
  // Moves what every guest's workload recorded since the last drain into
  // `spool` (each guest a source named after it), and lets the workloads
  // forget it. A guest that does not answer in time (busy in a recovery) is
  // left for the next drain, unless `every_guest` (then it is an error).
  void drain(HistorySpool& spool, bool every_guest);
  // Stops the device's guest using it and waits (up to the timeout) until
  // nothing is in flight on it; unavailable if it never drains.
  void quiesce(const std::string& device);

 private:
  orchestrator::Cluster& cluster_;
  std::chrono::milliseconds timeout_;
  std::map<std::string, std::uint64_t> drained_;  // guest → events spooled so far
};

}  // namespace visorlab::drill
