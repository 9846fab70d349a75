// What runs inside a guest on top of its drivers — the drill's workload, or a
// test's. It is stepped on the guest actor's thread after every poll, so it
// may call the drivers directly (submit, transmit) without locks.
#pragma once

#include <chrono>

namespace visorlab::guest {

class Guest;

class Application {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Application() = default;
  // Returns true while it has work in flight (the guest then polls at once).
  virtual bool step(Guest& guest, Clock::time_point now) = 0;
};

}  // namespace visorlab::guest
