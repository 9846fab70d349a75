#include "actors/service/service_actor.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/runtime/error.hpp"

namespace visorlab::service {
namespace {

using namespace visorlab::actors;

struct State {
  std::unique_ptr<ServicePartition> partition;
  std::chrono::microseconds idle{0};
  bool ticking = false;  // a tick is on its way
  static inline const char* name = "visorlab.service";
};

// Logs a device channel's transport events, naming the service and device.
channel::TransportHandler log_transport(const std::string& service, const std::string& device) {
  return [service, device](const channel::tcp::Event& e) {
    spdlog::warn("{}: {} transport event {}: {}", service, device, static_cast<int>(e.code), e.reason);
  };
}

service_actor::behavior_type service_behavior(service_actor::stateful_pointer<State> self, ServiceOptions options,
                                              std::chrono::microseconds idle_max) {
  self->state.partition = std::make_unique<ServicePartition>(options);
  // Poll only while serving: a warm spare with nothing attached costs no CPU
  // (on a small host its wake-ups would starve the busy partitions).
  auto wake = [self] {
    if (self->state.ticking) return;
    self->state.ticking = true;
    self->state.idle = std::chrono::microseconds(0);
    self->send(self, tick_atom::value);
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
        if (st.partition->poll()) {
          st.ticking = true;
          st.idle = std::chrono::microseconds(0);
          self->send(self, tick_atom::value);
        } else if (st.partition->devices() == 0) {
          st.ticking = false;  // until the next attach
        } else {
          st.idle = std::min(idle_max, std::max(std::chrono::microseconds(10), st.idle * 2));
          self->delayed_send(self, st.idle, tick_atom::value);
        }
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
            devices, [service](const std::string& device) { return log_transport(service, device); });
        wake();
        if (!error.empty()) return make_error(Errc::internal, error);
        return caf::unit;
      },
      [=](detach_atom, const std::string& device) {
        return guarded("detach " + device, [&] { return known(self->state.partition->detach(device), device); });
      },
      [=](pause_atom, const std::string& device) { return known(self->state.partition->pause(device), device); },
      [=](resume_atom, const std::string& device) { return known(self->state.partition->resume(device), device); },
      [=](lose_atom, std::uint64_t every, std::int64_t for_ms) -> caf::result<void> {
        if (every == 0 || for_ms <= 0) return make_error(Errc::invalid_argument, "lose_writes needs every ≥ 1 and a window");
        self->state.partition->lose_writes(every, ServicePartition::Clock::now() + std::chrono::milliseconds(for_ms));
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
