// A cluster on this machine (`visorlab up`/`drill` without --orchestrator):
// the orchestrator core in this process, one agent process per host of the
// topology on loopback, each host's channels to other hosts over TCP and its
// own over shared memory. Torn down on destruction — agents stop their
// partitions — and, on Ctrl-C, by stop_on_signal(). Its cluster owns the
// agents (Cluster::kill_agent works), and it supervises them: an agent that
// dies (but one kill_agent stopped) is started again, backing off while it
// keeps dying, and adopts its host's running partitions.
#pragma once

#include <sys/types.h>

#include <caf/actor_system.hpp>

#include <filesystem>
#include <map>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agents/restart_backoff.hpp"
#include "orchestrator/agent_control.hpp"
#include "orchestrator/cluster.hpp"

namespace visorlab::orchestrator {

struct LocalClusterOptions {
  std::string visorlab_bin;
  std::filesystem::path run_dir;  // disks, logs, agents' state
  // The orchestrator core's /metrics (ClusterOptions::metrics_listen); empty:
  // not served. Every agent and partition host serves its own on a port of
  // its choosing, written to <run_dir>/hosts/<host>/{agent-metrics,metrics}.port.
  std::string metrics_listen = {};
  // Where agents reach the orchestrator's actor (ClusterOptions::bind).
  std::string bind = "127.0.0.1";
  // Per host, what an agent's command line starts with — e.g. {"ip", "netns",
  // "exec", "ns0"} runs host ns0's agent in that network namespace (it then
  // needs the topology's `address` for that host and a reachable `bind`).
  // Looked up in PATH. None: the agent runs here.
  std::map<std::string, std::vector<std::string>> launch_prefix = {};
};

class LocalCluster {
 public:
  LocalCluster(caf::actor_system& sys, const topology::Topology& topology, LocalClusterOptions options);
  ~LocalCluster();

  Cluster& cluster() { return *cluster_; }
  const std::filesystem::path& run_dir() const { return options_.run_dir; }

  void kill_agent(const std::string& host);   // SIGKILL: its partitions live on, it stays down
  void start_agent(const std::string& host);  // up again (and supervised)
  pid_t agent_pid(const std::string& host) const;  // 0: none running

  // When an orderly stop hangs (a watchdog): SIGTERM to every agent any
  // LocalCluster of this process started, up to 3 s for them to stop their
  // partitions, then force_stop() and _exit(code). From any thread.
  [[noreturn]] static void stop_agents_and_exit(int code);
  // Now, without asking (a second Ctrl-C): SIGKILL to those agents and to the
  // partition hosts and service partitions they started, and their shared
  // memory removed. From any thread, while other threads still run.
  static void force_stop();

 private:
  struct Agents final : AgentControl {
    explicit Agents(LocalCluster& c) : local(c) {}
    void kill(const std::string& host) override { local.kill_agent(host); }
    void start(const std::string& host) override { local.start_agent(host); }
    LocalCluster& local;
  };

  void launch_locked(const std::string& host);
  void supervise_locked();
  void stop_orphaned_partitions();

  LocalClusterOptions options_;
  std::vector<std::string> hosts_;
  std::unique_ptr<Cluster> cluster_;
  mutable std::mutex mu_;  // agents_, held_, restarts_, stopping_: the supervisor's thread and the callers'
  std::condition_variable_any changed_;  // an agent is wanted, or was started
  bool stopping_ = false;
  bool wanted_ = false;  // start_agent asked: the supervisor looks at once
  std::map<std::string, pid_t> agents_;
  std::set<std::string> held_;  // killed by kill_agent: down until start_agent
  struct Restart {
    agents::RestartBackoff backoff;
    std::optional<std::chrono::steady_clock::time_point> at;
  };
  std::map<std::string, Restart> restarts_;
  std::jthread supervisor_;
  Agents control_{*this};
};

}  // namespace visorlab::orchestrator
