// The orchestrator's core: the cluster it runs — agents that registered,
// the topology applied, every partition's and device's state — and the
// operations on it. The gRPC API (api/) and the drill engine (drill/) call
// these; each call is synchronous and thread-safe — one at a time on a
// service and its devices, side by side on different ones (a drill's
// overlapping faults) — and fails with a ClusterError carrying a visorlab
// error code (actors/runtime/error.hpp).
// It knows nothing of drills: a guest's workload is a handle it hands out.
#pragma once

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/runtime/error.hpp"
#include "actors/runtime/interfaces.hpp"
#include "actors/runtime/messages.hpp"
#include "orchestrator/agent_control.hpp"
#include "topology/model.hpp"

namespace visorlab::metrics {
class Metrics;
}

namespace visorlab::orchestrator {

class ClusterError : public std::runtime_error {
 public:
  using Code = Errc;
  ClusterError(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  // An actor's error reply, as the request for `what` got it.
  ClusterError(const std::string& what, const caf::error& e)
      : std::runtime_error(what + ": " + message_of(e)), code_(code_of(e)) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

struct AgentInfo {
  std::string host;
  std::string address;  // where its CAF node was seen from
  bool up = false;
  std::int64_t since_ns = 0;  // steady-clock time of the last change
};

// Something that happened in the cluster, in order (WatchEvents streams them).
struct ClusterEvent {
  std::uint64_t index = 0;     // 1, 2, … per orchestrator
  std::int64_t at_ns = 0;      // steady clock
  std::string kind;            // agent_up, agent_lost, device_created, device_paused, recovery, transport, …
  std::string target;          // host, device or service name
  std::string detail;
};

struct ClusterOptions {
  std::string bind = "127.0.0.1";  // where agents reach the orchestrator's actor
  std::uint16_t port = 0;          // 0: any
  std::string run_dir;             // disks and logs of the applied topology
  std::chrono::milliseconds agent_wait{10000};  // ApplyTopology waits this long for missing agents
  std::chrono::milliseconds request_timeout{15000};
  // The lease on every fault this orchestrator puts in effect (a pause, a
  // workload): renewed to every partition host a quarter of it apart; a host
  // that hears nothing for this long reverts them by itself
  // (docs/faults-and-leases.md).
  std::chrono::milliseconds lease{2000};
  // Where the cluster keeps what it applied (cluster_state.hpp); empty: kept
  // nowhere. A cluster made on a dir that holds a state re-adopts the
  // running cluster it describes (docs/orchestrator-state.md).
  std::string state_dir = {};
  // Where the cluster serves its /metrics and /healthz (HOST:PORT, port 0:
  // any free one; metrics_port() tells which); empty: not served (metrics()
  // is kept all the same). A bad address is invalid_argument, a port that
  // cannot be had unavailable.
  std::string metrics_listen = {};
};

class Cluster {
 public:
  Cluster(caf::actor_system& sys, ClusterOptions options);
  ~Cluster();

  // The port agents register on (`visorlab agent --orchestrator HOST:PORT`).
  std::uint16_t agent_port() const;

  // Places and starts every partition and device of the topology on the
  // registered agents (waits up to agent_wait for hosts not yet registered).
  void apply(const topology::Topology& topology);
  // Stops everything apply started; nothing applied is not an error.
  void teardown();
  bool applied() const;
  const topology::Topology& topology() const;  // failed_precondition if none

  std::vector<AgentInfo> agents() const;
  // The bus tree of every guest.
  std::vector<actors::DeviceInfo> devices();

  void create_device(const std::string& guest, const topology::Device& device);
  // Every device created on `guest` since the topology was applied, in
  // order, destroyed ones too: their names are never handed out again.
  std::vector<topology::Device> created_devices(const std::string& guest) const;
  void destroy_device(const std::string& device);
  void pause_device(const std::string& device);
  void resume_device(const std::string& device);
  actors::RecoveryTimes recover_service(const std::string& service);
  actors::RecoveryTimes crash_service(const std::string& service, std::chrono::milliseconds restart_after);
  // The lose_writes fault: for `window`, the IO partition acknowledges every
  // `every`th write without writing it. It ends by itself (the partition
  // keeps the deadline), even if this orchestrator is gone by then.
  void lose_writes(const std::string& service, std::uint64_t every, std::chrono::milliseconds window);
  // Input is a workload: every console partition produces `per_s` reports
  // per second per device from now on (0: none, as after apply). A console
  // restarted later produces at the rate set last.
  void set_input_rate(double per_s);

  // Each guest's workload, to drive and watch it (the drill does). Needs no
  // lock on the cluster's operations, so a drill can watch its workload while
  // a recovery runs. not_found for an unknown guest.
  actors::workload_actor workload(const std::string& guest) const;
  std::vector<std::string> guests() const;
  // The actor system the handles live in (to send them requests).
  caf::actor_system& system() const;

  // The agents' daemons, where the cluster owns them (a local cluster sets
  // this); kill_agent and start_agent are failed_precondition otherwise.
  void set_agent_control(AgentControl* agents);
  bool owns_agents() const;
  void kill_agent(const std::string& host);
  void start_agent(const std::string& host);

  // Cuts the network between two hosts until heal or `lease` ends (the
  // partition hosts heal by themselves then, even without this orchestrator).
  void cut(const std::string& a, const std::string& b, std::chrono::milliseconds lease);
  void heal(const std::string& a, const std::string& b);

  // Events with index > `after`, waiting up to `wait` for the first one.
  std::vector<ClusterEvent> events(std::uint64_t after, std::chrono::milliseconds wait) const;

  // The orchestrator's metrics (docs/metrics.md): visorlab_agent_up{host}
  // from registrations and losses, visorlab_partitions and visorlab_devices
  // {host,state} of the applied topology as the orchestrator sees it
  // (a service's devices are "recovering" while it recovers), and
  // visorlab_recovery_phase_seconds of every recovery it ran or was told of.
  metrics::Metrics& metrics();
  // The port /metrics is served on; 0 when options.metrics_listen was empty.
  std::uint16_t metrics_port() const;
  // options.state_dir ("" when none).
  const std::string& state_dir() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace visorlab::orchestrator
