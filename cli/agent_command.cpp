// `visorlab agent` and `visorlab partition-host`: the daemons of every host.
// The agent starts the partition host; people start agents (or Ansible does).
#include <filesystem>

#include "agents/agent.hpp"
#include "agents/partition_host.hpp"
#include "cli/commands.hpp"
#include "drill/workload/workload.hpp"

namespace visorlab::cli {

namespace {
std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }
}  // namespace

void add_agent_commands(CLI::App& app, Action& action) {
  auto a = std::make_shared<agents::AgentMain>();
  auto* agent = app.add_subcommand("agent", "Run this host's agent daemon (registers with the orchestrator)");
  agent->add_option("--host", a->host, "This host's name in the topology")->required();
  agent->add_option("--orchestrator", a->orchestrator, "The orchestrator's agent port, HOST:PORT")
      ->required()
      ->envname("VISORLAB_AGENT_ORCHESTRATOR");
  agent->add_option("--run-dir", a->run_dir, "Where disks, logs and state live")->required();
  agent->add_option("--metrics", a->metrics_listen,
                    "Serve the agent's /metrics and /healthz on HOST:PORT (port 0: any; written to "
                    "<run-dir>/hosts/<host>/agent-metrics.port)")
      ->capture_default_str();
  agent->add_option("--partition-metrics", a->partition_metrics_listen,
                    "Where the host's partition process serves /metrics, HOST:PORT (port 0: any; written to "
                    "<run-dir>/hosts/<host>/metrics.port)")
      ->capture_default_str();
  agent->callback([&action, a] {
    action = [a] {
      a->visorlab_bin = self_exe();
      return agents::run_agent(*a);
    };
  });

  auto p = std::make_shared<agents::PartitionHostMain>();
  auto* host = app.add_subcommand("partition-host", "Run a host's partitions (started by its agent)");
  host->add_option("--host", p->host, "This host's name in the topology")->required();
  host->add_option("--orchestrator", p->orchestrator, "The orchestrator's agent port, HOST:PORT")->required();
  host->add_option("--run-dir", p->run_dir, "Where disks, logs and state live")->required();
  host->add_option("--metrics", p->metrics_listen,
                   "Serve /metrics and /healthz on HOST:PORT (port 0: any; written to "
                   "<run-dir>/hosts/<host>/metrics.port)")
      ->capture_default_str();
  host->callback([&action, p] {
    action = [p] {
      p->visorlab_bin = self_exe();
      // A workload its lease stopped keeps its history with the host's files.
      p->workload = [dir = std::filesystem::path(p->run_dir) / "hosts" / p->host / "abandoned"](
                        const actors::GuestSpec& spec) -> std::shared_ptr<guest::Application> {
        return std::make_shared<drill::Workload>(spec.name, dir);
      };
      return agents::run_partition_host(*p);
    };
  });
}

}  // namespace visorlab::cli
