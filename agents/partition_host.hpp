// A host's partitions: one process per host (`visorlab partition-host`)
// running the command partition, the guests and the service keepers the
// orchestrator places there. It registers with the orchestrator on its own,
// so the agent daemon that started it can die and come back without a guest
// noticing.
#pragma once

#include <caf/actor_system.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "actors/guest/application.hpp"
#include "actors/runtime/interfaces.hpp"

namespace visorlab::metrics {
class Metrics;
}

namespace visorlab::agents {

// Makes the drill workload for a guest (injected: agents do not know drills).
using WorkloadFactory = std::function<std::shared_ptr<guest::Application>(const actors::GuestSpec&)>;

struct HostOptions {
  std::string host;          // this host's name in the topology
  std::string visorlab_bin;  // for service partition processes
  std::string run_dir;
  caf::actor events;         // the orchestrator's: (event_atom, TransportEvent|RecoveryTimes); may be null
  WorkloadFactory workload;  // may be empty: no workload
  // What the command partition, guests and keepers it spawns export; null: no metrics.
  std::shared_ptr<metrics::Metrics> metrics = nullptr;
};

actors::host_actor spawn_partition_host(caf::actor_system& sys, HostOptions options);

struct PartitionHostMain {
  std::string host;
  std::string orchestrator;  // HOST:PORT of the orchestrator's agent port
  std::string run_dir;
  std::string visorlab_bin;
  WorkloadFactory workload;
  // Where /metrics and /healthz are served (HOST:PORT, port 0: any free one);
  // the port is written to metrics_port_file(run_dir, host).
  std::string metrics_listen = "127.0.0.1:0";
};

// The process body: registers with the orchestrator, serves until SIGTERM.
int run_partition_host(const PartitionHostMain& options);

// Where a host's daemons say which port their /metrics listens on ("<port>\n"):
// <run-dir>/hosts/<host>/metrics.port (partition host) and
// <run-dir>/hosts/<host>/agent-metrics.port (agent).
std::filesystem::path metrics_port_file(const std::string& run_dir, const std::string& host);
std::filesystem::path agent_metrics_port_file(const std::string& run_dir, const std::string& host);
// Writes "<port>\n" atomically (written aside, then renamed): a reader sees
// the whole file or none. Throws std::filesystem::filesystem_error.
void write_port_file(const std::filesystem::path& path, std::uint16_t port);

// A port file its process removes when it stops (not after SIGKILL: the next
// process overwrites it).
class PortFile {
 public:
  explicit PortFile(std::filesystem::path path) : path_(std::move(path)) {}
  PortFile(const PortFile&) = delete;
  PortFile& operator=(const PortFile&) = delete;
  ~PortFile();
  void write(std::uint16_t port);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool written_ = false;
};

}  // namespace visorlab::agents
