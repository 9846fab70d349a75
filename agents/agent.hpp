// The agent daemon (`visorlab agent`): one per host. It starts — or, after a
// restart of its own, adopts — the host's partition process, registers with
// the orchestrator (reconnecting when it loses it), and on SIGTERM stops the
// partitions it started, leaving no process and no shared memory behind.
#pragma once

#include <filesystem>
#include <string>

namespace visorlab::agents {

// Where the agent of `host` records the pid of the partition host it started
// (that process leads its own session, its service partitions in it).
std::filesystem::path partitions_pid_file(const std::filesystem::path& run_dir, const std::string& host);

// How a child process ended (a waitpid status), for the log: a crash must
// not read like a clean exit. "exited with status 3", "was killed by signal 9 (Killed)".
std::string how_it_ended(int status);

struct AgentMain {
  std::string host;
  std::string orchestrator;  // HOST:PORT
  std::string run_dir;
  std::string visorlab_bin;
  // The agent's /metrics (visorlab_agent_up{host} 1) and /healthz, HOST:PORT
  // (port 0: any free one); the port goes to <run-dir>/hosts/<host>/agent-metrics.port.
  std::string metrics_listen = "127.0.0.1:0";
  // Passed to the partition host it starts (`partition-host --metrics`); its
  // port goes to <run-dir>/hosts/<host>/metrics.port.
  std::string partition_metrics_listen = "127.0.0.1:0";
};

int run_agent(const AgentMain& options);

}  // namespace visorlab::agents
