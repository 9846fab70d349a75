// Runs one drill on a cluster: applies the topology if it is not applied,
// starts the workload, runs the fault schedule, stops, collects the history
// and judges it. Used by `visorlab drill` and by the gRPC RunDrill call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "drill/history.hpp"
#include "orchestrator/cluster.hpp"
#include "topology/model.hpp"

namespace visorlab::drill {

struct DrillProgress {
  double elapsed_s = 0;
  std::string step;        // the last step started, e.g. "crash io0"
  double iops = 0;         // disk IOPS over the last interval
  unsigned paused = 0;     // devices paused now
  std::string line() const;
};

struct DrillOutcome {
  bool passed = false;
  nlohmann::ordered_json report;  // the DESIGN.md report, in its field order
  std::string summary;     // the human table
  std::string svg;         // the timeline plot
  std::uint64_t events = 0;  // history events recorded and judged
  // Disk ops the workloads completed during the drill, counted by the
  // workloads themselves (so also when they record no history), and the
  // drill's length: drill_bench's IOPS with recording on and off.
  double disk_ops = 0;
  double disk_seconds = 0;
  // Stopped early because `cancelled` said so: the fault under way was
  // reverted at once, later steps never ran; not passed.
  bool cancelled = false;
};

// Where a drill keeps its history (every event goes to disk as the drill
// runs; memory holds what is in flight).
struct DrillFiles {
  std::filesystem::path spool;    // the history while the drill runs, removed after; empty: a temporary dir
  std::filesystem::path history;  // write the whole history here (JSON lines, drill/history_file.hpp); empty: none
};

// Throws orchestrator::ClusterError when the cluster cannot run it — a
// kill_agent step on a cluster that does not own its agents is
// failed_precondition before anything runs. `cancelled`, asked about twice a
// second, stops the drill early when true (a gRPC client gone, the
// orchestrator stopping).
DrillOutcome run_drill(orchestrator::Cluster& cluster, const topology::Topology& topology,
                       const std::function<void(const DrillProgress&)>& progress,
                       const std::function<bool()>& cancelled = {}, const DrillFiles& files = {});

}  // namespace visorlab::drill
