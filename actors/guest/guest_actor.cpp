#include "actors/guest/guest_actor.hpp"

#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "actors/runtime/error.hpp"

namespace visorlab::guest {
namespace {

using namespace visorlab::actors;

// How soon a guest waiting for answers looks again: well under a disk
// I/O's latency, far from a spin.
constexpr std::chrono::microseconds kWaitingPoll{50};

struct State {
  std::shared_ptr<Guest> guest;  // handed over at spawn, then ours alone
  std::chrono::microseconds idle{0};
  // One chain of ticks at a time: each carries the generation it belongs to,
  // and a poke starts a new generation (the slow tick already sent is dropped
  // when it arrives).
  std::uint64_t generation = 0;
  static inline const char* name = "visorlab.guest";
};

caf::error no_workload(const Guest& g) {
  return make_error(Errc::failed_precondition, "guest " + g.options().name + " runs no workload");
}

guest_actor::behavior_type guest_behavior(guest_actor::stateful_pointer<State> self, std::shared_ptr<Guest> guest,
                                          std::chrono::microseconds idle_max) {
  self->state.guest = std::move(guest);
  self->send(self, tick_atom::value, self->state.generation);
  return {
      [=](tick_atom, std::uint64_t generation) {
        auto& st = self->state;
        if (generation != st.generation) return;  // retired by a poke
        if (st.guest->poll()) {
          st.idle = std::chrono::microseconds(0);
          self->send(self, tick_atom::value, generation);
        } else if (st.guest->waiting()) {
          // Answers due: look again soon, yielding the core meanwhile.
          st.idle = std::chrono::microseconds(0);
          self->delayed_send(self, kWaitingPoll, tick_atom::value, generation);
        } else {
          // Exponential backoff keeps an idle guest cheap on a small machine.
          st.idle = std::min(idle_max, std::max(std::chrono::microseconds(20), st.idle * 2));
          self->delayed_send(self, st.idle, tick_atom::value, generation);
        }
      },
      [=](poke_atom) {
        // A controlvm message waits: poll now, and fast from here on (the
        // backoff starts again), instead of at an idle guest's next slow tick.
        auto& st = self->state;
        st.idle = std::chrono::microseconds(0);
        self->send(self, tick_atom::value, ++st.generation);
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
        return caf::unit;
      },
      [=](quiesce_atom, const std::string& device) {
        Guest& g = *self->state.guest;
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
  return sys.spawn(guest_behavior, std::move(guest), options.idle_poll);
}

}  // namespace visorlab::guest
