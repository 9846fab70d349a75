#include "agents/partition_host.hpp"

#include <signal.h>
#include <unistd.h>

#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

#include "net/host_port.hpp"
#include "actors/command/command_actor.hpp"
#include "actors/guest/guest_actor.hpp"
#include "actors/recovery/service_keeper.hpp"
#include "actors/runtime/config.hpp"
#include "actors/runtime/error.hpp"
#include "channel/tcp/link_faults.hpp"
#include "metrics/exposer.hpp"
#include "metrics/registry.hpp"

namespace visorlab::agents {
namespace {

using namespace visorlab::actors;

struct State {
  // Everything this host runs, stopped with it. Shared with the exit functor:
  // CAF destroys an actor's state before it runs its attachables, so the
  // functor reading the state read freed memory (a segfault in the
  // multiplexer thread on SIGTERM, and actors never told to stop).
  std::shared_ptr<std::vector<caf::actor>> spawned = std::make_shared<std::vector<caf::actor>>();
  // What a lapsed lease reverts faults on and what an orchestrator that
  // re-adopts the host asks for (also in `spawned`).
  HostInventory inventory;
  // The orchestrator's lease: good until then (steady clock); one tick at a
  // time checks it, sleeping until the lease would end.
  std::chrono::steady_clock::time_point lease_until{};
  bool lease_checking = false;
  bool lapsed = false;
  static inline const char* name = "visorlab.partition_host";
};

// Tells every actor the host spawned to stop, and lets go of them: a
// detached actor (the keepers) is destroyed only when its last handle goes.
void stop_all(std::vector<caf::actor>& spawned) {
  for (auto& a : spawned) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  spawned.clear();
}

host_actor::behavior_type partition_host(host_actor::stateful_pointer<State> self, HostOptions o) {
  self->attach_functor([spawned = self->state.spawned] { stop_all(*spawned); });
  return {
      [=](spawn_atom, command_atom) -> caf::result<command_actor> {
        command::CommandActorOptions c;
        c.metrics = o.metrics;
        c.host = o.host;
        auto commands = command::spawn_command_partition(self->system(), c);
        self->state.spawned->push_back(caf::actor_cast<caf::actor>(commands));
        self->state.inventory.command = {commands};
        return commands;
      },
      [=](spawn_atom, const GuestSpec& spec) -> caf::result<guest_actor> {
        try {
          guest::GuestActorOptions g;
          g.guest.name = spec.name;
          g.guest.host = o.host;
          g.guest.acknowledge_hotplug = spec.acknowledge_hotplug;
          g.guest.metrics = o.metrics;
          g.controlvm = spec.controlvm;
          g.command_host = spec.command_host;
          g.listener = o.events;
          if (spec.workload && o.workload) g.application = o.workload(spec);
          auto guest = guest::spawn_guest(self->system(), g);
          self->state.spawned->push_back(caf::actor_cast<caf::actor>(guest));
          self->state.inventory.guest_names.push_back(spec.name);
          self->state.inventory.guests.push_back(guest);
          return guest;
        } catch (const std::exception& e) {
          return make_error(Errc::internal, "guest " + spec.name + ": " + e.what());
        }
      },
      [=](spawn_atom, const ServiceSpec& spec, const command_actor& commands) -> caf::result<keeper_actor> {
        recovery::KeeperOptions k;
        k.process.visorlab_bin = o.visorlab_bin;
        k.process.service = spec;
        k.commands = commands;
        k.listener = o.events;
        k.metrics = o.metrics;
        k.host = o.host;
        auto keeper = recovery::spawn_keeper(self->system(), k);
        self->state.spawned->push_back(caf::actor_cast<caf::actor>(keeper));
        self->state.inventory.service_names.push_back(spec.name);
        self->state.inventory.keepers.push_back(keeper);
        auto promise = self->make_response_promise<keeper_actor>();
        self->request(keeper, std::chrono::seconds(15), start_atom::value)
            .then([=](const ServiceStats&) mutable { promise.deliver(keeper); },
                  [=](const caf::error& e) mutable {
                    caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
                    promise.deliver(make_error(code_of(e), "service " + spec.name + ": " + message_of(e)));
                  });
        return promise;
      },
      [=](cut_atom, const std::string& peer_host, std::int64_t lease_ms) {
        channel::tcp::LinkFaults::instance().cut(
            peer_host, std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_ms));
      },
      [=](heal_atom, const std::string& peer_host) { channel::tcp::LinkFaults::instance().heal(peer_host); },
      [=](lease_atom, std::int64_t lease_ms) {
        auto& st = self->state;
        const auto lease = std::chrono::milliseconds(std::max<std::int64_t>(lease_ms, 1));
        if (st.lapsed || st.lease_until == std::chrono::steady_clock::time_point{})
          spdlog::info("partition host {}: holds the orchestrator's lease ({} ms)", o.host, lease.count());
        st.lease_until = std::chrono::steady_clock::now() + lease;
        st.lapsed = false;
        if (!st.lease_checking) {
          st.lease_checking = true;
          self->delayed_send(self, lease, tick_atom::value);
        }
      },
      // Nobody renewed the lease in time: the orchestrator is dead, cut off
      // or hung, and the faults it put in effect here would stay forever.
      // Revert them (a network cut ends by a lease of its own).
      [=](tick_atom) {
        auto& st = self->state;
        st.lease_checking = false;
        if (st.lapsed) return;
        const auto left = st.lease_until - std::chrono::steady_clock::now();
        if (left > std::chrono::steady_clock::duration::zero()) {
          st.lease_checking = true;
          self->delayed_send(self, left, tick_atom::value);
          return;
        }
        st.lapsed = true;
        spdlog::warn("partition host {}: the orchestrator's lease lapsed: reverting the faults it put in effect",
                     o.host);
        for (const auto& k : st.inventory.keepers) self->send(k, revert_atom::value);
        for (const auto& g : st.inventory.guests) self->send(g, revert_atom::value);
        // A cut carries a lease of its own, often shorter; one still in
        // force is healed now.
        auto& links = channel::tcp::LinkFaults::instance();
        for (const auto& peer : links.cut_hosts()) {
          links.heal(peer);
          spdlog::warn("partition host {}: healed the cut to {}", o.host, peer);
          if (o.metrics) o.metrics->faults_reverted_by_lease(o.host, metrics::LeasedFault::partition).Increment();
        }
      },
      [=](inventory_atom) { return self->state.inventory; },
      [=](stop_atom) {
        stop_all(*self->state.spawned);
        self->state.inventory = {};
      },
  };
}

struct RegistrarState {
  caf::actor orchestrator;
  host_actor partitions;
  static inline const char* name = "visorlab.partition_registrar";
};

// Keeps the partition host registered with the orchestrator: once told which
// partitions it registers, and again whenever it loses the orchestrator (it
// restarted on its state dir, or the link dropped), so a new one can re-adopt
// what runs here. Events for the orchestrator go through it, to whichever
// one is current.
caf::behavior registrar(caf::stateful_actor<RegistrarState>* self, std::string host, net::HostPort at,
                        caf::actor orchestrator) {
  const auto registered = [=](caf::actor o) {
    self->state.orchestrator = o;
    self->monitor(o);
    self->send(o, register_atom::value, Registration{host, HostRole::partitions},
               caf::actor_cast<caf::actor>(self->state.partitions));
  };
  self->set_down_handler([=](const caf::down_msg& d) {
    if (d.source != self->state.orchestrator.address()) return;
    spdlog::warn("partition host {}: lost the orchestrator at {}; registering again once it is back", host, at.text());
    self->state.orchestrator = nullptr;
    self->send(self, tick_atom::value);
  });
  return {
      [=](const host_actor& partitions) {
        self->state.partitions = partitions;
        registered(orchestrator);
      },
      [=](tick_atom) {
        auto o = self->system().middleman().remote_actor(at.host, at.port);
        if (!o) {
          self->delayed_send(self, std::chrono::milliseconds(500), tick_atom::value);
          return;
        }
        registered(*o);
        spdlog::info("partition host {} registered again with {}", host, at.text());
      },
      [=](event_atom a, const TransportEvent& e) {
        if (self->state.orchestrator) self->send(self->state.orchestrator, a, e);
      },
      [=](event_atom a, const RecoveryTimes& t) {
        if (self->state.orchestrator) self->send(self->state.orchestrator, a, t);
      },
  };
}

}  // namespace

std::filesystem::path metrics_port_file(const std::string& run_dir, const std::string& host) {
  return std::filesystem::path(run_dir) / "hosts" / host / "metrics.port";
}

std::filesystem::path agent_metrics_port_file(const std::string& run_dir, const std::string& host) {
  return std::filesystem::path(run_dir) / "hosts" / host / "agent-metrics.port";
}

void write_port_file(const std::filesystem::path& path, std::uint16_t port) {
  std::filesystem::create_directories(path.parent_path());
  const std::filesystem::path aside = path.string() + ".tmp";
  {
    std::ofstream out(aside, std::ios::trunc);
    out << port << "\n";
    out.close();
    if (!out)
      throw std::filesystem::filesystem_error("cannot write", aside, std::make_error_code(std::errc::io_error));
  }
  std::filesystem::rename(aside, path);
}

PortFile::~PortFile() {
  if (!written_) return;
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void PortFile::write(std::uint16_t port) {
  write_port_file(path_, port);
  written_ = true;
}

host_actor spawn_partition_host(caf::actor_system& sys, HostOptions options) {
  return sys.spawn(partition_host, std::move(options));
}

// How long a stopping partition host waits for its actors (below the agent's
// 5 s before it kills us).
constexpr std::chrono::seconds kStopBound{4};

int run_partition_host(const PartitionHostMain& m) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  const auto [host, port] = net::parse_host_port(m.orchestrator, "--orchestrator", net::PortUse::connect);

  // Metrics first: the actors hold on to them, and the server is up before
  // anything registers (a scrape never misses the start).
  metrics::ListenAddress listen;
  try {
    listen = metrics::parse_listen_address(m.metrics_listen);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "visorlab partition-host: --metrics: %s\n", e.what());
    return 2;
  }
  auto exported = std::make_shared<metrics::Metrics>();
  std::optional<metrics::MetricsServer> server;
  PortFile port_file(metrics_port_file(m.run_dir, m.host));
  try {
    server.emplace(*exported, listen);
    port_file.write(server->port());
    spdlog::info("partition host {}: metrics on {}", m.host, server->url());
  } catch (const std::exception& e) {
    // The partitions matter more than their metrics: serve none, say so.
    spdlog::error("partition host {}: serving no metrics: {}", m.host, e.what());
  }

  actors::Config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto orchestrator = sys.middleman().remote_actor(host, port);
  if (!orchestrator) {
    spdlog::error("partition host {}: cannot reach the orchestrator at {}: {}", m.host, m.orchestrator,
                  message_of(orchestrator.error()));
    return 3;
  }
  HostOptions o;
  o.host = m.host;
  o.visorlab_bin = m.visorlab_bin;
  o.run_dir = m.run_dir;
  o.workload = m.workload;
  o.metrics = exported;
  // Events reach the orchestrator through the registrar (it follows a
  // restarted one); the host is registered once it exists.
  auto registration = sys.spawn<caf::detached>(registrar, m.host, net::HostPort{host, port}, *orchestrator);
  o.events = registration;
  auto partitions = spawn_partition_host(sys, o);
  caf::anon_send(registration, partitions);
  spdlog::info("partition host {} registered with {}", m.host, m.orchestrator);
  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("partition host {} stopping on signal {}", m.host, sig);
  caf::anon_send_exit(partitions, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(registration, caf::exit_reason::user_shutdown);
  // Should an actor not stop, do not hang the agent that waits for us: past
  // the bound, say so and go (service partitions die with us: PDEATHSIG).
  // Both ways out skip the actor system's teardown (see below).
  const auto leave = [path = port_file.path()](int code) {
    spdlog::default_logger()->flush();
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::fflush(nullptr);
    ::_exit(code);
  };
  std::thread([leave, host = m.host] {
    std::this_thread::sleep_for(kStopBound);
    spdlog::error("partition host {}: actors still running {} s after the stop signal; exiting anyway", host,
                  kStopBound.count());
    leave(1);
  }).detach();
  // The actors stop on their own: keepers stop their service partitions,
  // guests remove their shared memory (their state goes when they stop).
  // Then go without the actor system's teardown: the orchestrator still holds
  // handles to our keepers, and a detached actor a remote node references is
  // never destroyed, so the teardown would wait for the bound above.
  sys.registry().await_running_count_equal(0);
  spdlog::info("partition host {} stopped", m.host);
  leave(0);
  return 0;  // not reached
}

}  // namespace visorlab::agents
