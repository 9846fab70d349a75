// What runs inside a guest on top of its drivers — the drill's workload, or a
// test's. It is stepped on the guest actor's thread after every poll, so it
// may call the drivers directly (submit, transmit) without locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <string>

#include "channel/input_report.hpp"

namespace visorlab::guest {

class Guest;

class Application {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Application() = default;
  // Returns true if it did something (issued I/O, sent a frame): the guest
  // then polls again at once. Waiting for answers is not progress (the guest
  // sees what is in flight on its own).
  virtual bool step(Guest& guest, Clock::time_point now) = 0;
  // A control verb from outside ("start", "stop", "collect", …), answered
  // with text; runs on the guest's thread like step().
  virtual std::string control(Guest& guest, const std::string& verb) = 0;
  // A frame the guest's vnic received, and an input report its keyboard or
  // mouse delivered, named by device ("g0/vnic0").
  virtual void on_frame(const std::string&, std::span<const std::byte>) {}
  virtual void on_input(const std::string&, const channel::input::Report&) {}
};

}  // namespace visorlab::guest
