#include "actors/guest/guest_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "actors/runtime/error.hpp"
#include "actors/runtime/send_later.hpp"
#include "channel/doorbell_waiter.hpp"
#include "metrics/registry.hpp"

namespace visorlab::guest {
namespace {

using namespace visorlab::actors;

// How soon a guest waiting for answers looks again: well under a disk
// I/O's latency, far from a spin.
constexpr std::chrono::microseconds kWaitingPoll{50};
// Idle this long, a guest sleeps on its channels' doorbells (a command or a
// partition's signal rings one) instead of ticking, for at most
// Guest::sleep_bound().
constexpr std::chrono::milliseconds kIdleBeforeSleep{2};
// The tick the doorbell waiter sends when a sleep ends: it starts a new chain.
constexpr std::uint64_t kWoken = ~std::uint64_t{0};

struct State {
  std::shared_ptr<Guest> guest;  // handed over at spawn, then ours alone
  std::chrono::microseconds idle{0};
  std::chrono::steady_clock::time_point idle_since{};  // the first poll that found nothing
  // One chain of ticks at a time: each carries the generation it belongs to,
  // and a poke starts a new generation (the slow tick already sent is dropped
  // when it arrives).
  std::uint64_t generation = 0;
  bool asleep = false;  // the waiter holds the doorbells; its kWoken tick ends it
  // Sleeps on the doorbells for us; null on a kernel without futex_waitv.
  // Declared last: gone (its sleep let go) before the guest's channels.
  std::unique_ptr<channel::DoorbellWaiter> waiter;
  static inline const char* name = "visorlab.guest";
};

// Nothing moved for a while: sleep on the doorbells instead of ticking.
// False when that cannot be done (then tick).
bool sleep_on_doorbells(guest_actor::stateful_pointer<State> self) {
  auto& st = self->state;
  if (!st.waiter) return false;
  // A workload keeps time of its own (rates, deadlines): its guest ticks.
  if (st.guest->application() && st.guest->application()->keeps_time()) return false;
  // The last look runs no chipset: it removes no device, whose doorbell the
  // sleep holds.
  Guest& g = *st.guest;
  switch (st.waiter->sleep_on(
      g.channels(), [&] { return g.has_commands() || g.poll_devices() || g.waiting(); }, g.sleep_bound())) {
    case channel::DoorbellWaiter::Outcome::cannot_sleep:
      return false;
    case channel::DoorbellWaiter::Outcome::work_found:
      st.idle = std::chrono::microseconds(0);
      st.idle_since = {};
      self->send(self, tick_atom::value, st.generation);
      return true;
    case channel::DoorbellWaiter::Outcome::asleep:
      st.asleep = true;
      return true;
  }
  return false;
}

caf::error no_workload(const Guest& g) {
  return make_error(Errc::failed_precondition, "guest " + g.options().name + " runs no workload");
}

guest_actor::behavior_type guest_behavior(guest_actor::stateful_pointer<State> self, std::shared_ptr<Guest> guest,
                                          std::chrono::microseconds idle_max, bool doorbells) {
  self->state.guest = std::move(guest);
  if (doorbells && channel::DoorbellSleep::available())
    self->state.waiter =
        std::make_unique<channel::DoorbellWaiter>(send_later<guest_actor>(self, tick_atom::value, kWoken));
  self->send(self, tick_atom::value, self->state.generation);
  // The workload was told something: it wants the guest polling.
  auto wake = [self] {
    if (self->state.asleep) self->state.waiter->nudge();
  };
  // Poll now, and fast from here on (the backoff starts again).
  auto restart = [self] {
    auto& st = self->state;
    st.idle = std::chrono::microseconds(0);
    st.idle_since = {};
    self->send(self, tick_atom::value, ++st.generation);
  };
  return {
      [=](tick_atom, std::uint64_t generation) {
        auto& st = self->state;
        if (generation == kWoken) {
          st.asleep = false;
          // Woken with nothing to do (the bound passed): one poll, then
          // straight back to sleep — not through the backoff's ticks.
          if (st.idle_since != std::chrono::steady_clock::time_point{} && !st.guest->poll() && !st.guest->waiting() &&
              sleep_on_doorbells(self))
            return;
          return restart();
        }
        if (generation != st.generation || st.asleep) return;  // retired by a poke, or asleep
        if (st.guest->poll()) {
          st.idle = std::chrono::microseconds(0);
          st.idle_since = {};
          self->send(self, tick_atom::value, generation);
        } else if (st.guest->waiting()) {
          // Answers due: look again soon, yielding the core meanwhile.
          st.idle = std::chrono::microseconds(0);
          st.idle_since = {};
          self->delayed_send(self, kWaitingPoll, tick_atom::value, generation);
        } else {
          const auto now = std::chrono::steady_clock::now();
          if (st.idle_since == std::chrono::steady_clock::time_point{}) st.idle_since = now;
          if (now - st.idle_since >= kIdleBeforeSleep && sleep_on_doorbells(self)) return;
          // Exponential backoff keeps an idle guest cheap on a small machine.
          st.idle = std::min(idle_max, std::max(std::chrono::microseconds(20), st.idle * 2));
          self->delayed_send(self, st.idle, tick_atom::value, generation);
        }
      },
      [=](poke_atom) {
        // A controlvm message waits: poll now instead of at an idle guest's
        // next slow tick. Asleep, the waiter's wake-up does that.
        auto& st = self->state;
        if (st.asleep) return st.waiter->nudge();
        restart();
      },
      [=](offer_atom, const ChannelOffer& offer) -> caf::result<Locator> {
        try {
          return self->state.guest->offer(offer);
        } catch (const std::exception& e) {
          return make_error(Errc::internal, std::string("offer ") + offer.device + ": " + e.what());
        }
      },
      [=](devices_atom) { return self->state.guest->devices(); },
      // The workload's messages, handed to the application on this thread.
      [=](start_atom, const WorkloadStart& start) -> caf::result<void> {
        Guest& g = *self->state.guest;
        if (!g.application()) return no_workload(g);
        try {
          g.application()->start(g, start);
          wake();
          return caf::unit;
        } catch (const std::invalid_argument& e) {
          return make_error(Errc::invalid_argument, "workload of " + g.options().name + ": " + e.what());
        } catch (const std::exception& e) {
          return make_error(Errc::failed_precondition, "workload of " + g.options().name + ": " + e.what());
        }
      },
      [=](stop_atom) -> caf::result<void> {
        Guest& g = *self->state.guest;
        if (g.application()) g.application()->stop(g);
        wake();
        return caf::unit;
      },
      [=](revert_atom) {
        Guest& g = *self->state.guest;
        if (!g.application() || !g.application()->abandon(g)) return;
        spdlog::warn("guest {}: the orchestrator that ran its workload is gone: the workload stopped",
                     g.options().name);
        if (g.options().metrics)
          g.options().metrics->faults_reverted_by_lease(g.options().host, metrics::LeasedFault::workload).Increment();
        wake();
      },
      [=](quiesce_atom, const std::string& device) {
        Guest& g = *self->state.guest;
        wake();
        return !g.application() || g.application()->quiesce(g, device);
      },
      [=](idle_atom) {
        Guest& g = *self->state.guest;
        return !g.application() || g.application()->idle(g);
      },
      [=](stats_atom) -> caf::result<WorkloadStats> {
        Guest& g = *self->state.guest;
        if (!g.application()) return no_workload(g);
        return g.application()->stats();
      },
      [=](collect_atom, std::uint64_t first) -> caf::result<HistoryChunk> {
        Guest& g = *self->state.guest;
        if (!g.application()) return no_workload(g);
        return g.application()->collect(first);
      },
  };
}

}  // namespace

guest_actor spawn_guest(caf::actor_system& sys, GuestActorOptions options) {
  caf::actor listener = options.listener;
  auto sink = [listener](const TransportEvent& e) {
    if (listener) caf::anon_send(listener, event_atom::value, e);
  };
  // Built here, not in the actor, so that a channel that cannot be attached
  // is the caller's exception rather than a dead actor.
  const std::string name = options.guest.name;
  auto controlvm = attach_controlvm(options.controlvm, options.command_host, [name](const channel::tcp::Event& e) {
    spdlog::warn("guest {}: controlvm transport event {}: {}", name, static_cast<int>(e.code), e.reason);
  });
  auto guest = std::make_shared<Guest>(options.guest, std::move(controlvm), sink);
  if (options.application) guest->run(options.application);
  return sys.spawn(guest_behavior, std::move(guest), options.idle_poll, options.sleep_on_doorbells);
}

}  // namespace visorlab::guest
