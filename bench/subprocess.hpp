// Runs another program for a bench (fio as a baseline, `ip` for network
// namespaces): no shell, output captured, bounded by a deadline, and the
// child dies with the bench (PR_SET_PDEATHSIG survives exec).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace visorlab::bench {

struct CommandResult {
  int exit_code = -1;  // -1: killed at the deadline or died of a signal
  bool timed_out = false;
  std::string out, err;
};

// argv[0] must be a path (see find_program). Kills the command (SIGKILL) when
// `timeout` runs out. Throws std::system_error if it cannot be started.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A program left running while the bench works (a daemon): its stdout and
// stderr go to `log`; it dies with the bench (PR_SET_PDEATHSIG) and with
// this object (SIGKILL, reaped). Throws std::system_error if it cannot start.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& argv, const std::string& log);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  pid_t pid() const { return pid_; }
  // Sends `sig` and, for SIGKILL or when `reap`, waits for it to end (≤ 10 s).
  void signal(int sig, bool reap = false);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// The executable `name` in PATH or, failing that, in the sbin directories a
// non-login root shell may lack; nullopt if none.
std::optional<std::string> find_program(const std::string& name);

// "fio --a --b" for messages.
std::string command_line(const std::vector<std::string>& argv);

}  // namespace visorlab::bench
