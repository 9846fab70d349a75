#include "cli/remote_drill.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/client.hpp"
#include "cli/exit_codes.hpp"

namespace visorlab::cli {
namespace {

// The drill's own duration plus room for applying the topology (agents may
// still be registering), draining the workload and judging: never a hang.
constexpr auto kOverhead = std::chrono::seconds(600);

}  // namespace

int run_remote_drill(const std::string& flag, const std::string& file, const topology::Topology& topology,
                     const std::function<void(const drill::DrillProgress&)>& progress, RemoteOutcome& out) {
  return with_orchestrator("drill", flag, [&](OrchestratorClient& client) -> int {
    visorlab::v1::RunDrillRequest request;
    if (!file.empty()) {
      // Already loaded and validated by the caller: the orchestrator sees the
      // same text, so its errors name the same lines.
      std::ifstream in(file, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        std::cerr << "visorlab drill: " << file << ": cannot read\n";
        return kBadInput;
      }
      request.set_topology_yaml(text.str());
      request.set_file_label(file);
    }
    const auto limit = std::chrono::duration_cast<std::chrono::seconds>(topology.drill.duration) + kOverhead;
    const auto context = client.context(limit);
    auto reader = client.stub().RunDrill(context.get(), request);
    visorlab::v1::DrillEvent event;
    bool reported = false;
    while (reader->Read(&event)) {
      if (event.has_progress()) {
        drill::DrillProgress p;
        p.elapsed_s = event.progress().elapsed_s();
        p.step = event.progress().step();
        p.iops = event.progress().iops();
        p.paused = event.progress().paused();
        if (progress) progress(p);
      } else if (event.has_report()) {
        out.passed = event.report().passed();
        out.report_json = event.report().json();
        out.summary = event.report().summary();
        out.svg = event.report().svg();
        reported = true;
      }
    }
    const auto status = reader->Finish();
    if (!status.ok()) return client.fail(status);
    if (!reported) {
      std::cerr << "visorlab drill: the orchestrator at " << client.address() << " ended the drill without a report\n";
      return int{kInfrastructure};
    }
    return int{kPass};
  });
}

}  // namespace visorlab::cli
