#include "actors/command/command_actor.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/runtime/device_channels.hpp"
#include "actors/runtime/error.hpp"
#include "metrics/registry.hpp"
#include "metrics/state_share.hpp"

namespace visorlab::command {
namespace {

using namespace visorlab::actors;

struct GuestLink {
  std::unique_ptr<channel::ChannelEnd> end;
  std::unique_ptr<CommandPartition> commands;
  std::map<std::uint64_t, caf::typed_response_promise<CommandResult>> waiting;
  guest_actor doorbell;  // poked when a command waits (may be unset: the guest polls on its own)
};

// visorlab_controlvm_messages_total, each series looked up once.
class MessageCounts {
 public:
  MessageCounts(std::shared_ptr<metrics::Metrics> m, std::string host)
      : metrics_(std::move(m)), host_(std::move(host)),
        partition_(*metrics_, metrics::StateShare::Family::partitions, host_) {
    partition_.set_one("running");
  }
  void count(std::uint32_t id, metrics::ControlvmResult result) {
    auto& c = counters_[{id, result}];
    if (!c) {
      // The spec's name, lowered (DEVICE_CREATE → device_create).
      std::string name = "unknown";
      if (const auto n = channel::controlvm::id_name(id)) {
        name.assign(n->begin(), n->end());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      }
      c = &metrics_->controlvm_messages(host_, "command", name, result);
    }
    c->Increment();
  }

 private:
  std::shared_ptr<metrics::Metrics> metrics_;
  std::string host_;
  metrics::StateShare partition_;
  std::map<std::pair<std::uint32_t, metrics::ControlvmResult>, prometheus::Counter*> counters_;
};

struct State {
  std::map<std::string, GuestLink> guests;
  bool ticking = false;
  std::unique_ptr<MessageCounts> counts;  // null: no metrics
  void count(std::uint32_t id, metrics::ControlvmResult result) {
    if (counts) counts->count(id, result);
  }
  static inline const char* name = "visorlab.command";
};

metrics::ControlvmResult result_of(const Answer& a) {
  if (a.timed_out) return metrics::ControlvmResult::timeout;
  return a.failed || a.status != 0 ? metrics::ControlvmResult::error : metrics::ControlvmResult::ok;
}

void start_ticking(command_actor::stateful_pointer<State> self) {
  if (self->state.ticking) return;
  self->state.ticking = true;
  self->send(self, tick_atom::value);
}

command_actor::behavior_type command_behavior(command_actor::stateful_pointer<State> self,
                                              CommandActorOptions options) {
  if (options.metrics) self->state.counts = std::make_unique<MessageCounts>(options.metrics, options.host);
  // A guest's controlvm channel: shared memory on this host, TCP to another.
  auto open_link = [=](const std::string& guest, const ControlvmPlacement& placement) -> caf::result<Locator> {
    if (self->state.guests.contains(guest))
      return make_error(Errc::failed_precondition, "guest " + guest + " already has a controlvm channel");
    try {
      Locator at;
      GuestLink link;
      link.end = create_controlvm(guest, at, placement, [guest](const channel::tcp::Event& e) {
        spdlog::warn("command partition: controlvm of {}: transport event {}: {}", guest, static_cast<int>(e.code),
                     e.reason);
      });
      link.commands = std::make_unique<CommandPartition>(link.end->channel(), options.timeout);
      self->state.guests.emplace(guest, std::move(link));
      return at;
    } catch (const std::exception& e) {
      return make_error(Errc::internal, "controlvm channel for " + guest + ": " + e.what());
    }
  };
  return {
      [=](tick_atom) {
        std::size_t outstanding = 0;
        for (auto& [name, g] : self->state.guests) {
          for (const Answer& a : g.commands->poll()) {
            self->state.count(a.id, result_of(a));
            auto it = g.waiting.find(a.handle);
            if (it == g.waiting.end()) continue;
            it->second.deliver(CommandResult{a.handle, a.acked, a.timed_out, a.failed, a.status,
                                             a.packet.device_change_state.state});
            g.waiting.erase(it);
          }
          outstanding += g.commands->outstanding();
        }
        self->state.ticking = outstanding > 0;
        if (self->state.ticking) self->delayed_send(self, options.poll_interval, tick_atom::value);
      },
      [=](register_atom, const std::string& guest, const guest_actor& doorbell) {
        if (auto it = self->state.guests.find(guest); it != self->state.guests.end()) it->second.doorbell = doorbell;
      },
      [=](guest_atom, const std::string& guest) -> caf::result<Locator> {
        return open_link(guest, {options.host, options.host});
      },
      [=](guest_atom, const std::string& guest, const std::string& guest_host,
          const std::string& listen_host) -> caf::result<Locator> {
        return open_link(guest, {options.host, guest_host, listen_host});
      },
      [=](command_atom, const CommandRequest& request) -> caf::result<CommandResult> {
        auto it = self->state.guests.find(request.guest);
        if (it == self->state.guests.end()) {
          self->state.count(request.id, metrics::ControlvmResult::error);
          return make_error(Errc::not_found, "unknown guest " + request.guest);
        }
        cvm::Packet packet{};
        if (request.packet.size() > sizeof packet) {
          self->state.count(request.id, metrics::ControlvmResult::error);
          return make_error(Errc::invalid_argument, "controlvm packet larger than the message's");
        }
        std::memcpy(&packet, request.packet.data(), request.packet.size());
        const auto handle =
            it->second.commands->send(static_cast<cvm::Id>(request.id), packet, request.flags);
        if (!handle) {
          self->state.count(request.id, metrics::ControlvmResult::error);
          return make_error(Errc::unavailable, "controlvm EVENT queue of " + request.guest + " is full");
        }
        if (it->second.doorbell) self->send(it->second.doorbell, poke_atom::value);
        if (request.flags & (cvm::flag::test_message)) return CommandResult{*handle, false, false, false, 0, 0};
        auto promise = self->make_response_promise<CommandResult>();
        it->second.waiting.emplace(*handle, promise);
        start_ticking(self);
        return promise;
      },
  };
}

}  // namespace

command_actor spawn_command_partition(caf::actor_system& sys, CommandActorOptions options) {
  return sys.spawn(command_behavior, options);
}

CommandRequest make_request(const std::string& guest, cvm::Id id, const cvm::Packet& packet, std::uint32_t flags) {
  CommandRequest r;
  r.guest = guest;
  r.id = static_cast<std::uint32_t>(id);
  r.flags = flags;
  r.packet.resize(sizeof packet);
  std::memcpy(r.packet.data(), &packet, sizeof packet);
  return r;
}

}  // namespace visorlab::command
