// Test helper: runs a real command, captures stdout and stderr, and kills it
// if it outlives its deadline, so a hang fails the test instead of CI.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace visorlab::test {

struct RunResult {
  int exit_code = -1;  // -1 if killed or signalled
  bool timed_out = false;
  std::string out;
  std::string err;
};

RunResult run(const std::vector<std::string>& argv,
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Starts a real command in the background (stdout and stderr shared with the
// test): its pid, for the caller to signal and reap.
pid_t spawn(const std::vector<std::string>& argv);

// build/bin/<name>, from the VISORLAB_BIN directory CTest sets.
std::string bin(const std::string& name);

}  // namespace visorlab::test
