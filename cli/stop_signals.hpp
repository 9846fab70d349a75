// Ctrl-C, SIGTERM and SIGHUP for a command that starts processes. A thread
// takes them, not a handler, so stopping can do real work: tear a cluster
// down in order, remove its shared memory and run dir. The first signal asks
// for an orderly stop; a second one forces.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <thread>

namespace visorlab::cli {

class StopSignals {
 public:
  // Blocks the three signals in the calling thread, so construct it before
  // any other thread starts (they inherit the mask; child processes reset
  // theirs). `on_stop(signal)` runs on the first, on the watcher thread;
  // `on_force()` on the second, after which the process exits 130.
  StopSignals(std::function<void(int)> on_stop, std::function<void()> on_force);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  bool stopping() const { return signal_.load() != 0; }
  int signal() const { return signal_.load(); }  // the first one taken; 0: none

  static const char* name(int signal);  // "SIGINT"

 private:
  void watch();

  sigset_t set_{};
  std::function<void(int)> on_stop_;
  std::function<void()> on_force_;
  std::atomic<int> signal_{0};
  std::atomic<bool> done_{false};
  std::thread watcher_;
};

}  // namespace visorlab::cli
