// Tells when a child process exits, without polling for it: a thread waits
// on the child's pidfd (Linux 5.3) and calls `exited` once, from that thread.
// Destroying the watcher ends the wait.
#pragma once

#include <sys/types.h>

#include <functional>
#include <thread>

#include "net/wake_fd.hpp"

namespace visorlab::service {

class ExitWatcher {
 public:
  // Throws std::system_error if the kernel cannot give a pidfd.
  ExitWatcher(pid_t pid, std::function<void()> exited);
  ~ExitWatcher();
  ExitWatcher(const ExitWatcher&) = delete;
  ExitWatcher& operator=(const ExitWatcher&) = delete;

 private:
  int pidfd_ = -1;
  net::WakeFd cancel_;  // woken by the destructor
  std::thread thread_;
};

}  // namespace visorlab::service
