// Test helper: what a run of visorlab may leave behind on this machine —
// its processes (found in /proc) and its shared-memory channels (/dev/shm).
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace visorlab::test {

// "a\0b\0" → {"a", "b"} (/proc/<pid>/cmdline and environ).
std::vector<std::string> split_nul(const std::string& text);

// Running `visorlab` processes for which `ours(argv, environ)` holds: pid →
// their command line.
using ProcessFilter = std::function<bool(const std::vector<std::string>& argv, const std::vector<std::string>& environ)>;
std::map<pid_t, std::string> visorlab_processes(const ProcessFilter& ours);

// Shared memory of the orchestrator in process `pid`: every name carries its
// tag "o<pid>." ("visorlab-o<pid>.g0_vhba0", "visorlab-controlvm_o<pid>.g0").
std::vector<std::string> shm_of_orchestrator(pid_t pid);

}  // namespace visorlab::test
