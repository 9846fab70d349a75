// Test helper: a real process left running in the background (a daemon, or
// `events -f`), its stdout read line by line, its stderr kept in a file. The
// destructor kills and reaps it, so a failing test never leaves one behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace visorlab::test {

class Background {
 public:
  explicit Background(const std::vector<std::string>& argv);
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  pid_t pid() const { return pid_; }
  // The next stdout line, or nullopt on end of file or after `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  void signal(int sig) const;
  // Its exit code once it exits (-1 if a signal ended it), or nullopt if it
  // is still running after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // What it wrote to stderr so far.
  std::string err() const;

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string err_file_;
  std::string buffer_;
  bool reaped_ = false;
  int status_ = 0;
};

// `visorlab orchestrator --listen 127.0.0.1:0 --agent-port 0 …`, started and
// its announcement line read.
struct Orchestrator {
  Orchestrator(std::vector<std::string> extra = {});
  // Stopped as a user stops it (SIGTERM), so it removes its own run dir;
  // killed if it does not stop within 10 s.
  ~Orchestrator();
  Orchestrator(const Orchestrator&) = delete;
  Orchestrator& operator=(const Orchestrator&) = delete;
  Background process;
  std::string address;      // 127.0.0.1:PORT of the gRPC API
  std::uint16_t port = 0;
  std::uint16_t agent_port = 0;
  std::uint16_t metrics_port = 0;  // 0 when it serves no /metrics
};

// The local addresses listening on `port`, from /proc/net/tcp and tcp6
// ("127.0.0.1", "0.0.0.0", "::", …).
std::vector<std::string> listening_addresses(std::uint16_t port);

}  // namespace visorlab::test
