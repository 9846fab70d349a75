#include "orchestrator/registry.hpp"

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include "actors/runtime/error.hpp"

namespace visorlab::orchestrator {

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void EventLog::append(std::string kind, std::string target, std::string detail) {
  {
    std::lock_guard lock(mu_);
    events_.push_back({events_.size() + 1, steady_ns(), std::move(kind), std::move(target), std::move(detail)});
  }
  cv_.notify_all();
}

std::vector<ClusterEvent> EventLog::since(std::uint64_t after, std::chrono::milliseconds wait) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [&] { return events_.size() > after; });
  if (events_.size() <= after) return {};
  return {events_.begin() + static_cast<std::ptrdiff_t>(after), events_.end()};
}

void Directory::update(const std::string& host, const std::function<void(HostEntry&)>& change) {
  std::lock_guard lock(mu_);
  auto& e = hosts_[host];
  e.host = host;
  change(e);
  e.since_ns = steady_ns();
}

std::optional<HostEntry> Directory::find(const std::string& host) const {
  std::lock_guard lock(mu_);
  const auto it = hosts_.find(host);
  if (it == hosts_.end()) return std::nullopt;
  return it->second;
}

std::vector<HostEntry> Directory::all() const {
  std::lock_guard lock(mu_);
  std::vector<HostEntry> out;
  for (const auto& [name, e] : hosts_) out.push_back(e);
  return out;
}

namespace {

using namespace visorlab::actors;

struct RegistryState {
  std::map<caf::actor_addr, std::pair<std::string, HostRole>> watched;  // → host, role
  static inline const char* name = "visorlab.registry";
};

caf::behavior registry(caf::stateful_actor<RegistryState>* self, Directory* directory, EventLog* log,
                       RegistryHooks hooks) {
  self->set_down_handler([=](const caf::down_msg& down) {
    const auto it = self->state.watched.find(down.source);
    if (it == self->state.watched.end()) return;
    const auto [host, role] = it->second;
    self->state.watched.erase(it);
    const bool agent = role == HostRole::agent;
    if (agent && hooks.agent) {
      // A restarted agent may have registered before its predecessor's loss
      // shows: the host is up while any registered agent of it lives.
      bool still_up = false;
      for (const auto& [addr, who] : self->state.watched) still_up |= who.first == host && who.second == HostRole::agent;
      hooks.agent(host, still_up);
    }
    directory->update(host, [&](HostEntry& e) { (agent ? e.agent_up : e.partitions_up) = false; });
    spdlog::warn("{} of host {} lost: {}", to_string(role), host, message_of(down.reason));
    log->append(agent ? "agent_lost" : "partitions_lost", host, message_of(down.reason));
  });
  return {
      [=](register_atom, const Registration& r, const caf::actor& handle) {
        const std::string& host = r.host;
        const HostRole role = r.role;
        if (role != HostRole::agent && role != HostRole::partitions) return;  // off the wire: not trusted
        self->monitor(handle);
        self->state.watched[handle.address()] = {host, role};
        // Before the host is in the directory: what the hook sends arrives
        // before anything an operation sends it.
        if (role == HostRole::partitions && hooks.partitions) hooks.partitions(caf::actor_cast<host_actor>(handle));
        directory->update(host, [&](HostEntry& e) {
          if (role == HostRole::agent) {
            e.agent = handle;
            e.agent_up = true;
          } else {
            e.partitions = caf::actor_cast<host_actor>(handle);
            e.partitions_up = true;
          }
        });
        log->append(role == HostRole::agent ? "agent_up" : "partitions_up", host, "");
        if (role == HostRole::agent && hooks.agent) hooks.agent(host, true);
      },
      [=](event_atom, const TransportEvent& e) {
        log->append("transport", e.device, (e.code == 1 ? "partner failed: " : "deregistered: ") + e.reason);
      },
      [=](event_atom, const RecoveryTimes& t) {
        if (hooks.recovery) hooks.recovery(t);
        log->append("recovery", t.service,
                    std::string(to_string(t.kind)) + (t.ok ? " ok in " + std::to_string((t.resumed_ns - t.start_ns) / 1'000'000) + " ms"
                                   : " failed: " + t.error));
      },
  };
}

}  // namespace

caf::actor spawn_registry(caf::actor_system& sys, Directory& directory, EventLog& log, RegistryHooks hooks) {
  return sys.spawn(registry, &directory, &log, std::move(hooks));
}

}  // namespace visorlab::orchestrator
