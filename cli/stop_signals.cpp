#include "cli/stop_signals.hpp"

#include <unistd.h>

#include <ctime>
#include <iostream>

#include "cli/exit_codes.hpp"

namespace visorlab::cli {

StopSignals::StopSignals(std::function<void(int)> on_stop, std::function<void()> on_force)
    : on_stop_(std::move(on_stop)), on_force_(std::move(on_force)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGHUP);  // the terminal went away: stop rather than orphan what we started
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  watcher_ = std::thread([this] { watch(); });
}

StopSignals::~StopSignals() {
  done_ = true;
  watcher_.join();
}

const char* StopSignals::name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
  }
}

void StopSignals::watch() {
  // Woken every 100 ms to notice the destructor; a signal is taken at once.
  const timespec tick{0, 100'000'000};
  while (!done_) {
    const int received = sigtimedwait(&set_, nullptr, &tick);
    if (received <= 0) continue;
    int none = 0;
    if (signal_.compare_exchange_strong(none, received)) {
      std::cerr << "\nvisorlab: " << name(received)
                << ": stopping — the cluster is torn down and its files removed (Ctrl-C again to force)" << std::endl;
      if (on_stop_) on_stop_(received);
      continue;
    }
    std::cerr << "\nvisorlab: " << name(received) << " again: forcing the stop" << std::endl;
    if (on_force_) on_force_();
    std::cerr << "visorlab: stopped by force" << std::endl;
    _exit(kInterrupted);
  }
}

}  // namespace visorlab::cli
