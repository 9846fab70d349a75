// `visorlab drill --orchestrator ADDR [FILE]` (or $VISORLAB_ORCHESTRATOR): the
// drill runs inside that orchestrator through its RunDrill call; this side
// streams the progress and receives the report, summary and plot, so the
// outputs and exit codes match a local drill.
#pragma once

#include <functional>
#include <string>

#include "drill/runner.hpp"
#include "topology/model.hpp"

namespace visorlab::cli {

struct RemoteOutcome {
  bool passed = false;
  std::string report_json;  // the DESIGN.md report, pretty-printed
  std::string summary;
  std::string svg;
};

// Sends FILE's text ("" = the built-in default drill) to the orchestrator
// named by `flag` or the environment. Returns kPass with `out` filled when a
// report came back, else the exit code of the failure (message printed).
int run_remote_drill(const std::string& flag, const std::string& file, const topology::Topology& topology,
                     const std::function<void(const drill::DrillProgress&)>& progress, RemoteOutcome& out);

}  // namespace visorlab::cli
