// What runs inside a guest on top of its drivers — the drill's workload, or a
// test's. It is stepped on the guest actor's thread after every poll, and the
// guest actor hands it the workload_actor messages (interfaces.hpp) on that
// same thread, so it may call the drivers directly (submit, transmit) without
// locks.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "actors/runtime/workload_messages.hpp"
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

  // workload_actor's messages. start throws std::invalid_argument for a spec
  // it cannot run and std::logic_error when it cannot start now (the actor
  // answers with the matching visorlab error). An application that is no
  // workload (a test's) keeps these: it cannot be started, uses no device
  // the drill may take away, and records nothing.
  virtual void start(Guest&, const actors::WorkloadStart&) { throw std::logic_error("not a workload"); }
  virtual void stop(Guest&) {}
  // Nobody will collect it any more (the orchestrator's lease lapsed): stop
  // as stop does and keep what it recorded where an operator finds it.
  // True if it was running — a workload the lease stopped.
  virtual bool abandon(Guest& guest) {
    stop(guest);
    return false;
  }
  virtual bool quiesce(Guest&, const std::string&) { return true; }
  virtual bool idle(Guest&) { return true; }
  virtual actors::WorkloadStats stats() const { return {}; }
  virtual actors::HistoryChunk collect(std::uint64_t) { return {}; }
  // It keeps time of its own (a rate of frames to send, deadlines): the
  // guest then ticks instead of sleeping on its doorbells. An application
  // that does not say keeps the guest ticking.
  virtual bool keeps_time() const { return true; }

  // A frame the guest's vnic received, and an input report its keyboard or
  // mouse delivered, named by device ("g0/vnic0").
  virtual void on_frame(const std::string&, std::span<const std::byte>) {}
  virtual void on_input(const std::string&, const channel::input::Report&) {}
};

}  // namespace visorlab::guest
