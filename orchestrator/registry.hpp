// Who is in the cluster: the registry actor agents and partition hosts
// register with (published on the orchestrator's agent port), the directory
// it keeps, and the event log every part of the orchestrator appends to. The
// directory and the log are thread-safe so that gRPC threads can read them.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "actors/runtime/interfaces.hpp"
#include "orchestrator/cluster.hpp"

namespace visorlab::orchestrator {

class EventLog {
 public:
  void append(std::string kind, std::string target, std::string detail);
  std::vector<ClusterEvent> since(std::uint64_t after, std::chrono::milliseconds wait) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<ClusterEvent> events_;
};

struct HostEntry {
  std::string host;
  caf::actor agent;                // the agent daemon (null until it registers)
  actors::host_actor partitions;   // its partition host
  bool agent_up = false;
  bool partitions_up = false;
  std::int64_t since_ns = 0;
};

class Directory {
 public:
  void update(const std::string& host, const std::function<void(HostEntry&)>& change);
  std::optional<HostEntry> find(const std::string& host) const;
  std::vector<HostEntry> all() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, HostEntry> hosts_;
};

// What the registry tells besides the directory and the log (the cluster's
// metrics); each may be empty. Called on the registry actor's thread.
struct RegistryHooks {
  // A host's agent registered (up) or the last one registered was lost.
  std::function<void(const std::string& host, bool up)> agent;
  // A host's partition process registered (before anything is placed on it).
  std::function<void(const actors::host_actor&)> partitions;
  // A recovery a keeper ran on its own (an unannounced crash).
  std::function<void(const actors::RecoveryTimes&)> recovery;
};

// The registry actor: takes (register_atom, host, "agent"|"partitions",
// actor) and the partitions' events, and watches every registrant.
caf::actor spawn_registry(caf::actor_system& sys, Directory& directory, EventLog& log, RegistryHooks hooks = {});

std::int64_t steady_ns();

}  // namespace visorlab::orchestrator
