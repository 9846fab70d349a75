// The agent processes of a LocalCluster as a drill's AgentControl: kill_agent
// steps SIGKILL one and start it again. Used by `drill` (local) and by the
// orchestrator that `up` (local) serves, because both own their agents.
#pragma once

#include <string>

#include "drill/nemesis.hpp"
#include "orchestrator/local_cluster.hpp"

namespace visorlab::cli {

class LocalAgents final : public drill::AgentControl {
 public:
  explicit LocalAgents(orchestrator::LocalCluster& cluster) : cluster_(cluster) {}
  void kill(const std::string& host) override { cluster_.kill_agent(host); }
  void start(const std::string& host) override { cluster_.start_agent(host); }

 private:
  orchestrator::LocalCluster& cluster_;
};

}  // namespace visorlab::cli
