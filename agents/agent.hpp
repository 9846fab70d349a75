// The agent daemon (`visorlab agent`): one per host. It starts — or, after a
// restart of its own, adopts — the host's partition process, registers with
// the orchestrator (reconnecting when it loses it), and on SIGTERM stops the
// partitions it started, leaving no process and no shared memory behind.
#pragma once

#include <string>

namespace visorlab::agents {

struct AgentMain {
  std::string host;
  std::string orchestrator;  // HOST:PORT
  std::string run_dir;
  std::string visorlab_bin;
};

int run_agent(const AgentMain& options);

}  // namespace visorlab::agents
