// The agent's handle on one service partition process: start it (fork, exec
// `visorlab service-partition`, wait for its port, connect to its actor),
// kill it with SIGKILL as a crash drill does, stop it cleanly, restart it.
// The child gets PDEATHSIG so that it never outlives its agent.
#pragma once

#include <sys/types.h>

#include <caf/actor_system.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "actors/runtime/interfaces.hpp"
#include "actors/service/service_partition.hpp"

namespace visorlab::service {

struct ProcessOptions {
  std::string visorlab_bin;  // the visorlab executable
  ServiceOptions service;
  std::chrono::milliseconds start_timeout{5000};
};

class ServiceProcess {
 public:
  ServiceProcess(caf::actor_system& sys, ProcessOptions options) : sys_(sys), options_(std::move(options)) {}
  ~ServiceProcess();  // stops the child if it still runs
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  // Starts the process and connects to its actor; throws std::runtime_error
  // saying why it could not (exec failed, no port in time, no connection).
  actors::service_actor start();
  // SIGKILL, then reaps it. Returns false if it was not running.
  bool kill9();
  // SIGTERM, waits up to `grace`, then SIGKILL. Returns false if not running.
  bool stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  // SIGTERM without waiting (an actor watches alive() instead). Returns false
  // if not running.
  bool terminate();
  // Reaps the child if it died; true while it runs.
  bool alive();

  pid_t pid() const { return pid_; }
  std::uint16_t port() const { return port_; }
  const actors::service_actor& handle() const { return handle_; }
  const ProcessOptions& options() const { return options_; }

 private:
  std::vector<std::string> argv() const;
  void reap(bool block);

  caf::actor_system& sys_;
  ProcessOptions options_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  actors::service_actor handle_;
};

}  // namespace visorlab::service
