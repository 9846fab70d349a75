// The drill engine an orchestrator daemon serves through RunDrill. A daemon
// that owns its agents (`visorlab up`, local) passes them, so kill_agent steps
// work; a plain `visorlab orchestrator` does not own them (people or Ansible
// start agents), so it refuses a drill with kill_agent steps before anything
// runs — FAILED_PRECONDITION, exit 2 at the client — instead of failing the
// step halfway through the drill.
#pragma once

#include <string>

#include "drill/nemesis.hpp"
#include "drill/runner.hpp"
#include "orchestrator/grpc_service.hpp"

namespace visorlab::cli {

inline orchestrator::DrillFunction daemon_drill(drill::AgentControl* agents) {
  return [agents](orchestrator::Cluster& cluster, const topology::Topology& t,
                  const std::function<void(const drill::DrillProgress&)>& progress,
                  const std::function<bool()>& cancelled) {
    if (!agents) {
      for (const auto& s : t.drill.steps)
        if (s.kind == topology::StepKind::kill_agent)
          throw orchestrator::ClusterError(
              orchestrator::ClusterError::Code::failed_precondition,
              "drill.steps[" + std::to_string(s.index) + "] (kill_agent " + s.target() +
                  "): this orchestrator does not own its agents, so it cannot kill and restart one; run the "
                  "drill against a cluster started with `visorlab up FILE`, or locally with `visorlab drill "
                  "FILE`");
    }
    return drill::run_drill(cluster, t, progress, agents, cancelled);
  };
}

}  // namespace visorlab::cli
