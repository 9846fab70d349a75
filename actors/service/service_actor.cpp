#include "actors/service/service_actor.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/runtime/error.hpp"
#include "actors/runtime/send_later.hpp"
#include "channel/doorbell_waiter.hpp"

namespace visorlab::service {
namespace {

using namespace visorlab::actors;

// Idle for this long (polling with backoff meanwhile), the partition sleeps
// on its channels' doorbells: spin while signals keep coming, sleep when they
// stop (SPDK's adaptive polling; the kernel's visorbus backs off to its slow
// poll the same way).
constexpr std::chrono::milliseconds kIdleBeforeSleep{2};

struct State {
  std::unique_ptr<ServicePartition> partition;
  std::chrono::microseconds idle{0};
  std::chrono::steady_clock::time_point idle_since{};  // the first poll that found nothing
  bool ticking = false;  // a tick is on its way (from us or from the waiter)
  // Sleeps on the doorbells for us and ticks us when one rings; null on a
  // kernel without futex_waitv. Declared last: gone before the partition.
  std::shared_ptr<channel::DoorbellWaiter> waiter;
  static inline const char* name = "visorlab.service";
};

// Logs a device channel's transport events, naming the service and device,
// and ends a sleep: the link wants mending.
channel::TransportHandler on_transport(const std::string& service, const std::string& device,
                                       std::weak_ptr<channel::DoorbellWaiter> waiter) {
  return [service, device, waiter](const channel::tcp::Event& e) {
    spdlog::warn("{}: {} transport event {}: {}", service, device, static_cast<int>(e.code), e.reason);
    if (auto w = waiter.lock()) w->nudge();
  };
}

// Nothing moved for a while: sleep on the doorbells instead of polling.
// False when that cannot be done (then keep polling).
bool sleep_on_doorbells(service_actor::stateful_pointer<State> self) {
  auto& st = self->state;
  if (!st.waiter) return false;
  ServicePartition& p = *st.partition;
  switch (st.waiter->sleep_on(p.channels(), [&] { return p.poll(); }, p.sleep_bound())) {
    case channel::DoorbellWaiter::Outcome::cannot_sleep:
      return false;
    case channel::DoorbellWaiter::Outcome::work_found:
      st.idle = std::chrono::microseconds(0);
      st.idle_since = {};
      self->send(self, tick_atom::value);
      return true;
    case channel::DoorbellWaiter::Outcome::asleep:
      return true;
  }
  return false;
}

service_actor::behavior_type service_behavior(service_actor::stateful_pointer<State> self, ServiceOptions options,
                                              std::chrono::microseconds idle_max) {
  self->state.partition = std::make_unique<ServicePartition>(options);
  if (channel::DoorbellSleep::available())
    self->state.waiter = std::make_shared<channel::DoorbellWaiter>(send_later<service_actor>(self, tick_atom::value));
  // Poll only while serving: a warm spare with nothing attached costs no CPU
  // (on a small host its wake-ups would starve the busy partitions).
  auto wake = [self] {
    auto& st = self->state;
    st.idle = std::chrono::microseconds(0);
    st.idle_since = {};
    if (st.ticking) {
      if (st.waiter) st.waiter->nudge();  // asleep: the waiter ticks us
      return;
    }
    st.ticking = true;
    self->send(self, tick_atom::value);
  };
  // Before a channel goes: the waiter must let go of its doorbell.
  auto let_go = [self] {
    if (self->state.waiter) self->state.waiter->interrupt();
  };
  auto log_transport = [self](const std::string& service, const std::string& device) {
    return on_transport(service, device, self->state.waiter);
  };
  // A channel that cannot be opened or closed is the partition's failure.
  auto guarded = [](const std::string& what, auto&& run) -> caf::result<void> {
    try {
      return run();
    } catch (const std::exception& e) {
      return make_error(Errc::internal, what + ": " + e.what());
    }
  };
  auto known = [](bool found, const std::string& device) -> caf::result<void> {
    if (found) return caf::unit;
    return make_error(Errc::not_found, "unknown device " + device);
  };
  return {
      [=](tick_atom) {
        auto& st = self->state;
        st.ticking = true;
        if (st.partition->poll()) {
          st.idle = std::chrono::microseconds(0);
          st.idle_since = {};
          self->send(self, tick_atom::value);
          return;
        }
        if (st.partition->devices() == 0) {
          st.ticking = false;  // until the next attach
          return;
        }
        const auto now = std::chrono::steady_clock::now();
        if (st.idle_since == std::chrono::steady_clock::time_point{}) st.idle_since = now;
        if (now - st.idle_since >= kIdleBeforeSleep && sleep_on_doorbells(self)) return;
        st.idle = std::min(idle_max, std::max(std::chrono::microseconds(10), st.idle * 2));
        self->delayed_send(self, st.idle, tick_atom::value);
      },
      [=](attach_atom, const DeviceAttach& device) {
        return guarded("attach " + device.device, [&]() -> caf::result<void> {
          self->state.partition->attach(device, log_transport(self->state.partition->options().name, device.device));
          wake();
          return caf::unit;
        });
      },
      [=](attach_atom, const std::vector<DeviceAttach>& devices) -> caf::result<void> {
        const std::string service = self->state.partition->options().name;
        std::string error = self->state.partition->attach_many(
            devices, [service, log_transport](const std::string& device) { return log_transport(service, device); });
        wake();
        if (!error.empty()) return make_error(Errc::internal, error);
        return caf::unit;
      },
      [=](detach_atom, const std::string& device) {
        let_go();
        return guarded("detach " + device, [&] { return known(self->state.partition->detach(device), device); });
      },
      [=](pause_atom, const std::string& device) {
        let_go();  // a paused channel's memory closes: the waiter must not hold its doorbell
        return known(self->state.partition->pause(device), device);
      },
      [=](resume_atom, const std::string& device) { return known(self->state.partition->resume(device), device); },
      [=](lose_atom, std::uint64_t every, std::int64_t for_ms) -> caf::result<void> {
        if (every == 0 || for_ms <= 0) return make_error(Errc::invalid_argument, "lose_writes needs every ≥ 1 and a window");
        self->state.partition->lose_writes(every, ServicePartition::Clock::now() + std::chrono::milliseconds(for_ms));
        return caf::unit;
      },
      [=](input_atom, double per_s) -> caf::result<void> {
        if (!self->state.partition->set_input_rate(per_s))
          return make_error(Errc::invalid_argument, "an input rate is a number ≥ 0");
        wake();  // a sleep's bound follows the rate
        return caf::unit;
      },
      [=](stats_atom) { return self->state.partition->stats(); },
  };
}

}  // namespace

actors::service_actor spawn_service(caf::actor_system& sys, ServiceOptions options,
                                    std::chrono::microseconds idle_poll) {
  return sys.spawn(service_behavior, std::move(options), idle_poll);
}

}  // namespace visorlab::service
