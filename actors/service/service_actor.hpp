// A service partition as a CAF actor: it owns one ServicePartition and polls
// it on its own ticks (at once while busy, backing off when idle). It runs in
// the service partition's own process (service_main), published to the
// agent through the middleman.
#pragma once

#include <caf/actor_system.hpp>

#include "actors/runtime/interfaces.hpp"
#include "actors/service/service_partition.hpp"

namespace visorlab::service {

actors::service_actor spawn_service(caf::actor_system& sys, ServiceOptions options,
                                    std::chrono::microseconds idle_poll = std::chrono::microseconds(200));

}  // namespace visorlab::service
