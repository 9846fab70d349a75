// The guest as a CAF actor: it owns one Guest and polls it on its own ticks —
// at once while it makes progress, every 50 us while answers are due, backing
// off to `idle_poll` when quiet (as the kernel's visorchipset slows its
// controlvm polling when idle). A controlvm command does not wait for the slow
// tick: the command partition pokes the guest (its doorbell).
#pragma once

#include <caf/actor.hpp>

#include "actors/guest/guest.hpp"
#include "actors/runtime/interfaces.hpp"

namespace visorlab::guest {

struct GuestActorOptions {
  GuestOptions guest;  // guest.metrics: where the guest's metrics go (null: none)
  actors::Locator controlvm;  // where the command partition put our controlvm channel
  std::string command_host = "command";  // the command partition's host (TCP controlvm: for cuts)
  std::chrono::microseconds idle_poll{10000};
  // Idle, sleep on the channels' doorbells (a thread wakes the actor when one
  // rings); false: keep ticking at idle_poll, as the kernel's visorbus polls —
  // every wake-up then comes from the actor's own clock (a deterministic
  // scheduler's, in CAF's test coordinator).
  bool sleep_on_doorbells = true;
  caf::actor listener;  // receives (event_atom, TransportEvent); may be null
  std::shared_ptr<Application> application;  // run on the guest's thread; may be null
};

// Attaches the controlvm channel, then spawns; throws (channel errors,
// std::system_error) if the channel cannot be attached.
actors::guest_actor spawn_guest(caf::actor_system& sys, GuestActorOptions options);

}  // namespace visorlab::guest
