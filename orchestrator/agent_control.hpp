// Starting and killing agent daemons is the infrastructure's job — a local
// cluster's (it started them as processes), or a fleet's service manager's.
// A cluster that owns its agents offers it, so drills can kill one.
#pragma once

#include <string>

namespace visorlab::orchestrator {

class AgentControl {
 public:
  virtual ~AgentControl() = default;
  virtual void kill(const std::string& host) = 0;   // SIGKILL of the agent daemon
  virtual void start(const std::string& host) = 0;  // start it again
};

}  // namespace visorlab::orchestrator
