// A host's partitions: one process per host (`visorlab partition-host`)
// running the command partition, the guests and the service keepers the
// orchestrator places there. It registers with the orchestrator on its own,
// so the agent daemon that started it can die and come back without a guest
// noticing.
#pragma once

#include <caf/actor_system.hpp>

#include <functional>
#include <memory>
#include <string>

#include "actors/guest/application.hpp"
#include "actors/runtime/interfaces.hpp"

namespace visorlab::agents {

// Makes the drill workload for a guest (injected: agents do not know drills).
using WorkloadFactory = std::function<std::shared_ptr<guest::Application>(const actors::GuestSpec&)>;

struct HostOptions {
  std::string host;          // this host's name in the topology
  std::string visorlab_bin;  // for service partition processes
  std::string run_dir;
  caf::actor events;         // the orchestrator's: (event_atom, TransportEvent|RecoveryTimes); may be null
  WorkloadFactory workload;  // may be empty: no workload
};

actors::host_actor spawn_partition_host(caf::actor_system& sys, HostOptions options);

struct PartitionHostMain {
  std::string host;
  std::string orchestrator;  // HOST:PORT of the orchestrator's agent port
  std::string run_dir;
  std::string visorlab_bin;
  WorkloadFactory workload;
};

// The process body: registers with the orchestrator, serves until SIGTERM.
int run_partition_host(const PartitionHostMain& options);

// "HOST:PORT" → parts; throws std::invalid_argument naming the text.
std::pair<std::string, std::uint16_t> split_address(const std::string& text);

}  // namespace visorlab::agents
