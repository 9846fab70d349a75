#include "channel/pause_guard.hpp"

#include <cerrno>

namespace visorlab::channel {

int PauseGuard::violation(const char* operation, int queue, std::uint64_t offset) {
  count_.fetch_add(1, std::memory_order_relaxed);
  if (sink_) sink_(Violation{operation, queue, offset, std::chrono::steady_clock::now()});
  return -EPERM;
}

}  // namespace visorlab::channel
