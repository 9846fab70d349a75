#include "orchestrator/cluster.hpp"

#include <caf/io/middleman.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <future>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "actors/command/command_actor.hpp"
#include "actors/command/command_partition.hpp"
#include "actors/recovery/recovery_metrics.hpp"
#include "channel/channel_types.hpp"
#include "metrics/exposer.hpp"
#include "metrics/registry.hpp"
#include "orchestrator/cluster_state.hpp"
#include "orchestrator/registry.hpp"
#include "topology/load.hpp"

namespace visorlab::orchestrator {

namespace fs = std::filesystem;
namespace cvm = visorlab::channel::controlvm;
using namespace visorlab::actors;
using command::CommandPartition;
using Code = ClusterError::Code;

struct Cluster::Impl {
  struct GuestRun {
    topology::Guest spec;
    guest_actor actor;
  };
  struct DeviceRun {
    std::string guest;
    topology::Device spec;
    ServedDevice served;
    DeviceState state = DeviceState::running;
  };

  // Which host each service of the applied topology runs on, for recoveries
  // the registry hears of (its hooks may outlive the Impl: shared).
  struct ServiceHosts {
    std::mutex mu;
    std::map<std::string, std::string> hosts;
    std::optional<std::string> find(const std::string& service) {
      std::lock_guard lock(mu);
      const auto it = hosts.find(service);
      return it == hosts.end() ? std::nullopt : std::optional(it->second);
    }
  };

  Impl(caf::actor_system& s, ClusterOptions o) : sys(s), options(std::move(o)) {
    if (!options.metrics_listen.empty()) {
      metrics::ListenAddress listen;
      try {
        listen = metrics::parse_listen_address(options.metrics_listen);
      } catch (const std::invalid_argument& e) {
        throw ClusterError(Code::invalid_argument, e.what());
      }
      try {
        metrics_server = std::make_unique<metrics::MetricsServer>(*exported, listen);
      } catch (const metrics::MetricsServerError& e) {
        throw ClusterError(Code::unavailable, e.what());
      }
    }
    // The state first: while it is being re-adopted, a host that registers
    // must not be taken for a leftover (the hook below stops those).
    std::optional<ClusterState> saved;
    if (!options.state_dir.empty()) {
      try {
        saved = load_state(options.state_dir);
      } catch (const std::runtime_error& e) {
        throw ClusterError(Code::invalid_argument, std::string("the state dir holds a state it cannot read: ") + e.what());
      }
      holds->store(saved.has_value());
    }
    RegistryHooks hooks;
    hooks.agent = [m = exported](const std::string& host, bool up) {
      try {
        m->agent_up(host).Set(up ? 1 : 0);
      } catch (const std::invalid_argument& e) {
        spdlog::warn("metrics: {}", e.what());
      }
    };
    hooks.recovery = [m = exported, hosts = service_hosts](const RecoveryTimes& t) {
      if (const auto host = hosts->find(t.service)) recovery::observe_recovery(*m, *host, t);
    };
    // A host holds the lease from its registration on: a fault put in
    // effect before the first renewal is covered too.
    // A host that registers while this orchestrator neither runs a topology
    // nor is about to re-adopt one runs nothing anyone can drive (an
    // orchestrator before this one placed it): its partitions stop.
    hooks.partitions = [lease = std::int64_t{options.lease.count()}, holds = holds](const host_actor& h) {
      caf::anon_send(h, lease_atom::value, lease);
      if (!holds->load()) caf::anon_send(h, stop_atom::value);
    };
    registry = spawn_registry(sys, directory, log, std::move(hooks));
    auto port = sys.middleman().publish(registry, options.port, options.bind.c_str(), true);
    if (!port)
      throw ClusterError(Code::unavailable, "cannot listen for agents on " + options.bind + ":" +
                                                std::to_string(options.port) + ": " + message_of(port.error()));
    agent_port = *port;
    if (saved) readopt(*saved);
  }

  // ---- the state dir

  // What is applied now, as the state dir keeps it; called after every change.
  void save() {
    if (options.state_dir.empty() || !topo) return;
    ClusterState st;
    st.tag = tag;
    st.topology_text = topo->text;
    st.topology_file = topo->source.file;
    {
      std::lock_guard table(table_mu);
      st.next_addr = next_addr;
      for (const auto& [name, d] : devices) st.devices.push_back({d.guest, d.spec, d.state});
      st.created = created;
    }
    try {
      std::lock_guard one_writer(save_mu);  // operations on different services save side by side
      save_state(options.state_dir, st);
    } catch (const std::exception& e) {
      spdlog::error("the state dir: {}", e.what());
    }
  }

  // A restarted orchestrator on the state dir: the hosts come back (their
  // partition processes register again), say what they run, and the cluster
  // is what it was — with the states the devices are in now (a lease may
  // have resumed a paused one). Whatever cannot be re-adopted is stopped,
  // and this orchestrator starts empty.
  void readopt(const ClusterState& st) {
    try {
      readopt_or_throw(st);
    } catch (const std::exception& e) {
      spdlog::error("cannot re-adopt the cluster of the state dir: {}; starting empty", e.what());
      log.append("readopt_failed", st.topology_file, e.what());
      for (const auto& host : directory.all())
        if (host.partitions_up) caf::anon_send(host.partitions, stop_atom::value);
      forget_applied();
      std::error_code ec;
      fs::remove(drill_marker_file(options.state_dir), ec);  // that drill is gone with the cluster
      return;
    }
    note_aborted_drill();
  }

  void readopt_or_throw(const ClusterState& st) {
    const topology::Topology t = topology::load_string(st.topology_text, st.topology_file);
    tag = st.tag;  // the shared memory is named after the first orchestrator
    wait_for_hosts(t);
    std::map<std::string, HostInventory> inventory;
    for (const auto& h : t.hosts)
      inventory[h.name] = ask<HostInventory>(partitions(h.name), "what host " + h.name + " runs", inventory_atom::value);
    const auto find = [](const std::vector<std::string>& names, const auto& actors, const std::string& name,
                         const std::string& what) {
      for (std::size_t i = 0; i < names.size() && i < actors.size(); ++i)
        if (names[i] == name) return actors[i];
      throw ClusterError(Code::unavailable, what + " runs no more");
    };
    const auto& commands = inventory[t.command.host].command;
    if (commands.empty()) throw ClusterError(Code::unavailable, "the command partition on " + t.command.host + " runs no more");
    command = commands.front();
    for (const auto& s : t.services) {
      const auto& on = inventory[s.host];
      keepers[s.name] = find(on.service_names, on.keepers, s.name, "service " + s.name + " on " + s.host);
      service_ops[s.name] = std::make_unique<std::mutex>();
      std::lock_guard hlock(service_hosts->mu);
      service_hosts->hosts[s.name] = s.host;
    }
    for (const auto& g : t.guests) {
      const auto& on = inventory[g.host];
      guests[g.name] = {g, find(on.guest_names, on.guests, g.name, "guest " + g.name + " on " + g.host)};
    }
    topo = t;
    {
      std::lock_guard table(table_mu);
      next_addr = st.next_addr;
      created = st.created;
      for (const auto& d : st.devices) devices[d.spec.name] = DeviceRun{d.guest, d.spec, {}, d.state};
    }
    // The devices as their guests see them now.
    std::size_t changed = 0;
    for (const auto& [name, g] : guests) {
      const auto tree = ask<std::vector<DeviceInfo>>(g.actor, "devices of " + name, devices_atom::value);
      std::lock_guard table(table_mu);
      for (const auto& info : tree) {
        const auto it = devices.find(info.device);
        if (it == devices.end()) continue;
        const DeviceState now = info.state == DeviceState::paused ? DeviceState::paused : DeviceState::running;
        if (now != it->second.state) ++changed;
        it->second.state = now;
      }
    }
    log.append("readopted", t.name,
               std::to_string(devices.size()) + " devices, " + std::to_string(changed) + " in another state than saved");
    spdlog::info("re-adopted {} from the state dir: {} devices", t.name, devices.size());
    update_state_metrics();
    save();
  }

  // A drill the orchestrator before this one was running (drill_marker_file)
  // ended with it: say so, and keep its marker among the aborted ones.
  void note_aborted_drill() {
    const fs::path marker = drill_marker_file(options.state_dir);
    std::error_code ec;
    if (!fs::exists(marker, ec)) return;
    std::ifstream in(marker);
    std::string name;
    std::getline(in, name);
    const fs::path kept = fs::path(options.state_dir) / "aborted" /
                          (name + "-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count()));
    fs::create_directories(kept.parent_path(), ec);
    fs::rename(marker, kept, ec);
    // Its workloads run on (their lease did not lapse if this orchestrator
    // came back in time): abandoned, they stop and keep their histories.
    for (const auto& [guest, g] : guests) caf::anon_send(g.actor, revert_atom::value);
    log.append("drill_aborted", name,
               "the orchestrator running it stopped; its workloads' histories are in <run-dir>/hosts/<host>/abandoned "
               "on each host");
    spdlog::warn("drill {} was aborted: the orchestrator running it stopped", name);
  }

  template <class T, class Handle, class... Ts>
  T ask(const Handle& dest, const std::string& what, Ts&&... xs) {
    caf::scoped_actor self{sys};
    std::optional<T> out;
    std::string error = "no reply";
    Code code = Code::unavailable;
    self->request(dest, options.request_timeout, std::forward<Ts>(xs)...)
        .receive([&](T& x) { out = std::move(x); },
                 [&](caf::error& e) {
                   error = message_of(e);
                   code = code_of(e);
                 });
    if (!out) throw ClusterError(code, what + ": " + error);
    return std::move(*out);
  }

  // A request answered with nothing but success (or a visorlab error).
  template <class Handle, class... Ts>
  void run(const Handle& dest, const std::string& what, Ts&&... xs) {
    caf::scoped_actor self{sys};
    std::optional<ClusterError> failed;
    self->request(dest, options.request_timeout, std::forward<Ts>(xs)...)
        .receive([] {}, [&](caf::error& e) { failed.emplace(what, e); });
    if (failed) throw *failed;
  }

  // What a controlvm command's answer says went wrong, if anything.
  static std::optional<ClusterError> command_error(const CommandResult& r, const std::string& what) {
    if (r.timed_out) return ClusterError(Code::unavailable, what + ": the guest did not answer (timed out)");
    if (r.failed || r.status != 0)
      return ClusterError(Code::internal, what + ": failed with " + cvm::status_text(r.status));
    return std::nullopt;
  }

  CommandResult controlvm(const std::string& guest, cvm::Id id, const cvm::Packet& p, const std::string& what) {
    auto r = ask<CommandResult>(command, what, command_atom::value, command::make_request(key(guest), id, p));
    if (auto e = command_error(r, what)) throw *e;
    return r;
  }

  // ---- the same, as continuations in an event-based actor (apply's fan-out)

  using Self = caf::event_based_actor*;
  using Next = std::function<void()>;
  using Fail = std::function<void(const ClusterError&)>;

  static auto failing(const std::string& what, const Fail& fail) {
    return [what, fail](caf::error& e) { fail(ClusterError(what, e)); };
  }

  // Runs `start` in an event-based actor of its own and waits (this thread
  // is not an actor's) until it calls `finish`; rethrows what it failed with.
  void await(const std::function<void(Self, std::function<void(std::optional<ClusterError>)>)>& start) {
    struct Outcome {
      std::promise<std::optional<ClusterError>> promise;
      std::atomic<bool> set{false};
      void deliver(std::optional<ClusterError> e) {
        if (!set.exchange(true)) promise.set_value(std::move(e));
      }
    };
    auto outcome = std::make_shared<Outcome>();
    auto result = outcome->promise.get_future();
    sys.spawn([start, outcome](caf::event_based_actor* self) -> caf::behavior {
      // Whatever ends the actor ends the wait: a thrown exception, a kill.
      self->set_exception_handler([](caf::scheduled_actor*, std::exception_ptr& e) -> caf::error {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          return make_error(Errc::internal, x.what());
        } catch (...) {
          return make_error(Errc::internal, "unknown exception");
        }
      });
      self->attach_functor([outcome](const caf::error& reason) {
        outcome->deliver(ClusterError("the orchestrator's request actor stopped", reason));
      });
      start(self, [self, outcome](std::optional<ClusterError> e) {
        outcome->deliver(std::move(e));
        self->quit();
      });
      return {[](tick_atom) {}};  // alive while its requests are out
    });
    if (auto e = result.get()) throw *e;
  }

  void controlvm_async(Self self, const std::string& guest, cvm::Id id, const cvm::Packet& p, const std::string& what,
                       const Next& next, const Fail& fail) {
    self->request(command, options.request_timeout, command_atom::value, command::make_request(key(guest), id, p))
        .then(
            [=](const CommandResult& r) {
              if (auto e = command_error(r, what)) return fail(*e);
              next();
            },
            failing(what, fail));
  }

  // Machine-wide names (shared memory) carry this orchestrator's tag, so two
  // clusters on one machine — or a crashed run's leftovers — never collide.
  std::string key(const std::string& name) const { return tag + "." + name; }

  host_actor partitions(const std::string& host) {
    auto e = directory.find(host);
    if (!e || !e->partitions_up) throw ClusterError(Code::unavailable, "host " + host + " has no partition host up");
    return e->partitions;
  }

  void wait_for_hosts(const topology::Topology& t) {
    const auto deadline = std::chrono::steady_clock::now() + options.agent_wait;
    for (const auto& h : t.hosts) {
      while (true) {
        auto e = directory.find(h.name);
        if (e && e->partitions_up) break;
        if (std::chrono::steady_clock::now() > deadline)
          throw ClusterError(Code::unavailable, "host " + h.name + " did not register within " +
                                                    std::to_string(options.agent_wait.count()) +
                                                    " ms (start `visorlab agent --host " + h.name +
                                                    " --orchestrator HOST:" + std::to_string(agent_port) + "`)");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  std::string listen_host(const std::string& host) const {
    const topology::Host* h = topo->find_host(host);
    return h && h->address ? h->address->host : "127.0.0.1";
  }

  ServedDevice served_device(const std::string& guest, const topology::Device& d, const Locator& channel) {
    ServedDevice s;
    s.guest = key(guest);  // as the command partition knows it
    s.bus_no = d.bus;
    s.dev_no = d.dev;
    s.sriov = d.sriov;
    s.attach.device = d.name;
    s.attach.kind = channel::find_type(topology::to_string(d.kind))->kind;
    s.attach.channel = channel;
    s.attach.switch_name = d.switch_name;
    {
      std::lock_guard glock(guests_mu);
      s.attach.guest_host = guests.at(guest).spec.host;
    }
    if (d.kind == topology::DeviceKind::vhba) {
      const fs::path disks = fs::path(options.run_dir) / "disks";
      fs::create_directories(disks);
      if (d.disk_size) {
        std::string file = d.name;
        std::replace(file.begin(), file.end(), '/', '_');
        s.attach.disk_path = (disks / (file + ".img")).string();
        s.attach.disk_bytes = *d.disk_size;
        // A fresh disk: not what an earlier apply on this run dir wrote
        // (its blocks would read as never written by this drill).
        fs::remove(s.attach.disk_path);
      } else if (!d.disks.empty()) {
        const topology::Service* svc = topo->find_service(d.service);
        for (const auto& disk : svc->disks)
          if (disk.name == d.disks.front()) {
            s.attach.disk_path = disk.path ? disk.path->string() : (disks / (disk.name + ".img")).string();
            s.attach.disk_bytes = disk.size_bytes;
          }
      }
    }
    return s;
  }

  // One guest of an applied topology: its controlvm channel, its actor, its
  // buses, then its devices — a chain of round trips to its host, the
  // command partition and its service partitions.
  void setup_guest(Self self, const topology::Topology& t, const topology::Guest& g, const Next& next,
                   const Fail& fail) {
    const auto spawned = [=, this](guest_actor& actor) {
      caf::anon_send(command, register_atom::value, key(g.name), actor);  // its doorbell
      {
        std::lock_guard glock(guests_mu);
        guests[g.name] = {g, actor};
      }
      const std::string& n = g.name;
      controlvm_async(self, n, cvm::Id::chipset_init, CommandPartition::init_chipset(cvm::chipset_feature::para_hotplug),
                      "chipset init of " + n, [=, this] {
        controlvm_async(self, n, cvm::Id::bus_create, CommandPartition::bus(topology::kConsoleBus), "bus 1 of " + n, [=, this] {
          controlvm_async(self, n, cvm::Id::bus_create, CommandPartition::bus(topology::kIoBus), "bus 2 of " + n,
                          [=, this] { add_devices(self, n, g.devices, 0, next, fail); }, fail);
        }, fail);
      }, fail);
    };
    const auto located = [=, this, &t](Locator& controlvm_at) {
      GuestSpec spec;
      spec.name = g.name;
      spec.controlvm = controlvm_at;
      spec.command_host = t.command.host;
      spec.workload = true;
      try {
        self->request(partitions(g.host), options.request_timeout, spawn_atom::value, spec)
            .then(spawned, failing("guest " + g.name, fail));
      } catch (const ClusterError& e) {
        fail(e);
      }
    };
    // Across hosts the controlvm channel goes over TCP, the command
    // partition listening on its host's address.
    if (g.host == t.command.host)
      self->request(command, options.request_timeout, guest_atom::value, key(g.name))
          .then(located, failing("controlvm of " + g.name, fail));
    else
      self->request(command, options.request_timeout, guest_atom::value, key(g.name), g.host,
                    listen_host(t.command.host))
          .then(located, failing("controlvm of " + g.name, fail));
  }

  // Every guest, kApplyWorkers at a time: each is mostly waiting for
  // answers, so a 250-guest topology comes up in a fraction of the time one
  // after the other takes. The first error stops launching more and is
  // rethrown once those under way are done (the caller tears down what came up).
  void setup_guests(const topology::Topology& t) {
    constexpr std::size_t kApplyWorkers = 16;
    await([this, &t](Self self, std::function<void(std::optional<ClusterError>)> finish) {
      struct Fanout {
        std::size_t next = 0, running = 0;
        bool finished = false;
        std::optional<ClusterError> error;
        std::function<void(std::optional<ClusterError>)> finish;
      };
      auto st = std::make_shared<Fanout>();
      st->finish = std::move(finish);
      // Starts guests until kApplyWorkers are under way; finishes once none
      // is and none is left (or one failed). The guests' answers keep it
      // alive; it holds itself only weakly.
      auto launch = std::make_shared<std::function<void()>>();
      *launch = [this, self, &t, st, weak = std::weak_ptr<std::function<void()>>(launch)] {
        const auto again = weak.lock();
        while (!st->error && st->running < kApplyWorkers && st->next < t.guests.size()) {
          ++st->running;
          setup_guest(
              self, t, t.guests[st->next++],
              [st, again] {
                --st->running;
                (*again)();
              },
              [st, again](const ClusterError& e) {
                --st->running;
                if (!st->error) st->error = e;
                (*again)();
              });
        }
        if (st->running == 0 && !st->finished && (st->error || st->next == t.guests.size())) {
          st->finished = true;
          st->finish(st->error);
        }
      };
      (*launch)();
    });
  }

  // A guest's devices from `index` on, one after the other.
  void add_devices(Self self, const std::string& guest, const std::vector<topology::Device>& list, std::size_t index,
                   const Next& next, const Fail& fail) {
    if (index == list.size()) return next();
    add_device(self, guest, list[index], [=, this] { add_devices(self, guest, list, index + 1, next, fail); }, fail);
  }

  // One device: its channel offered by the guest, DEVICE_CREATE through the
  // command partition, then attached by its service partition.
  void add_device(Self self, const std::string& guest, const topology::Device& d, const Next& next,
                  const Fail& fail) {
    guest_actor actor;
    std::string guest_host;
    ChannelOffer offer;
    keeper_actor keeper;
    try {
      std::unique_lock glock(guests_mu);
      const auto g = guests.find(guest);
      if (g == guests.end()) throw ClusterError(Code::not_found, "unknown guest " + guest);
      actor = g->second.actor;
      guest_host = g->second.spec.host;
      glock.unlock();
      std::unique_lock table(table_mu);
      if (devices.contains(d.name)) throw ClusterError(Code::invalid_argument, "device " + d.name + " exists");
      const std::uint64_t addr = next_addr++;
      table.unlock();
      const auto svc = keepers.find(d.service);
      if (svc == keepers.end()) throw ClusterError(Code::not_found, "unknown service " + d.service);
      keeper = svc->second;
      const topology::Service* service = topo->find_service(d.service);
      offer = {addr, d.name, key(d.name), channel::find_type(topology::to_string(d.kind))->kind, d.bus, d.dev,
               service->host, listen_host(guest_host)};
    } catch (const ClusterError& e) {
      return fail(e);
    }
    // No ghost: once created, a device that cannot be attached leaves the
    // guest's bus again (DEVICE_DESTROY), and `why` is the answer.
    const auto undo_create = [=, this](const ClusterError& why) {
      const auto report = [fail, why] { fail(why); };
      caf::anon_send(keeper, detach_atom::value, d.name);  // in case it attached after all
      controlvm_async(self, guest, cvm::Id::device_destroy, CommandPartition::device(d.bus, d.dev),
                      "undo the create of " + d.name, report, [fail, why](const ClusterError& undo) {
                        spdlog::error("{}", undo.what());
                        fail(why);
                      });
    };
    const auto attach = [=, this](const Locator& channel) {
      DeviceRun run;
      try {
        run = DeviceRun{guest, d, served_device(guest, d, channel), DeviceState::running};
      } catch (const std::exception& e) {
        return undo_create(ClusterError(Code::internal, "attach " + d.name + ": " + e.what()));
      }
      self->request(keeper, options.request_timeout, attach_atom::value, run.served)
          .then(
              [=, this] {
                {
                  std::lock_guard done(table_mu);
                  devices[d.name] = run;
                }
                log.append("device_created", d.name, topology::bus_address(d));
                next();  // not under table_mu: the next device takes it
              },
              [=](caf::error& e) { undo_create(ClusterError("attach " + d.name, e)); });
    };
    self->request(actor, options.request_timeout, offer_atom::value, offer)
        .then(
            [=, this](Locator& channel) {
              const channel::ChannelType& type = channel::type_of(offer.kind);
              controlvm_async(self, guest, cvm::Id::device_create,
                              CommandPartition::device(d.bus, d.dev, type.guid, offer.addr,
                                                       channel::channel_size(type.spec())),
                              "create " + d.name, [=] { attach(channel); }, fail);
            },
            failing("offer " + d.name, fail));
  }

  void add_device(const std::string& guest, const topology::Device& d) {
    await([&](Self self, std::function<void(std::optional<ClusterError>)> finish) {
      add_device(self, guest, d, [finish] { finish(std::nullopt); }, [finish](const ClusterError& e) { finish(e); });
    });
  }

  // A device as it is now (a copy: other services' operations change the
  // table meanwhile).
  DeviceRun device(const std::string& name) {
    if (!topo) throw ClusterError(Code::failed_precondition, "no topology is applied");
    std::lock_guard table(table_mu);
    const auto it = devices.find(name);
    if (it == devices.end()) throw ClusterError(Code::not_found, "unknown device " + name);
    return it->second;
  }

  void set_state(const std::string& name, DeviceState state) {
    {
      std::lock_guard table(table_mu);
      if (const auto it = devices.find(name); it != devices.end()) it->second.state = state;
    }
    update_state_metrics();
  }

  // One operation at a time on a service and its devices; operations on
  // different services run side by side (a drill's overlapping faults).
  std::unique_lock<std::mutex> lock_service(const std::string& service) {
    if (!topo) throw ClusterError(Code::failed_precondition, "no topology is applied");
    const auto it = service_ops.find(service);
    if (it == service_ops.end()) throw ClusterError(Code::not_found, "unknown service " + service);
    return std::unique_lock(*it->second);
  }

  keeper_actor& keeper(const std::string& service) {
    if (!topo) throw ClusterError(Code::failed_precondition, "no topology is applied");
    const auto it = keepers.find(service);
    if (it == keepers.end()) throw ClusterError(Code::not_found, "unknown service " + service);
    return it->second;
  }

  // visorlab_partitions and visorlab_devices {host,state} as this
  // orchestrator sees the applied topology; after every change (under `mu`).
  void update_state_metrics() {
    std::lock_guard table(table_mu);
    using Key = std::pair<std::string, std::string>;  // host, state
    std::map<Key, std::int64_t> parts, devs;
    if (topo) {
      ++parts[{topo->command.host, "running"}];
      for (const auto& [name, k] : keepers)
        if (const topology::Service* svc = topo->find_service(name))
          ++parts[{svc->host, recovering.contains(name) ? "recovering" : "running"}];
      for (const auto& [name, g] : guests) ++parts[{g.spec.host, "running"}];
      for (const auto& [name, d] : devices)
        if (const auto g = guests.find(d.guest); g != guests.end())
          ++devs[{g->second.spec.host,
                  recovering.contains(d.spec.service) ? "recovering" : std::string(actors::to_string(d.state))}];
    }
    const auto publish = [](std::map<Key, std::int64_t>& now, std::set<Key>& seen, auto gauge) {
      for (const auto& key : seen)
        if (!now.contains(key)) gauge(key).Set(0);  // nothing in that state any more
      for (const auto& [key, n] : now) {
        gauge(key).Set(static_cast<double>(n));
        seen.insert(key);
      }
    };
    try {
      publish(parts, partition_series,
              [&](const Key& k) -> prometheus::Gauge& { return exported->partitions(k.first, k.second); });
      publish(devs, device_series,
              [&](const Key& k) -> prometheus::Gauge& { return exported->devices(k.first, k.second); });
    } catch (const std::invalid_argument& e) {
      spdlog::warn("metrics: {}", e.what());
    }
  }

  // A recovery of `service`: its devices count as recovering meanwhile; its
  // phases are observed once it answers.
  RecoveryTimes recovery(const std::string& service, const std::function<RecoveryTimes()>& run) {
    auto mark = [&](bool on) {
      {
        std::lock_guard table(table_mu);
        if (on) recovering.insert(service);
        else recovering.erase(service);
      }
      update_state_metrics();
    };
    mark(true);
    std::optional<RecoveryTimes> t;
    try {
      t = run();
    } catch (...) {
      mark(false);
      throw;
    }
    mark(false);
    if (const auto host = service_hosts->find(service)) recovery::observe_recovery(*exported, *host, *t);
    return *t;
  }

  // Renews the lease on every partition host up, from a thread of its own:
  // an operation may block for seconds (a recovery), a renewal must not.
  void renew_leases(const std::stop_token& stop) {
    const auto every = std::max(options.lease / 4, std::chrono::milliseconds(10));
    std::mutex m;
    std::condition_variable_any wake;
    std::unique_lock lock(m);
    while (!stop.stop_requested()) {
      for (const auto& e : directory.all())
        if (e.partitions_up) caf::anon_send(e.partitions, lease_atom::value, std::int64_t{options.lease.count()});
      wake.wait_for(lock, stop, every, [] { return false; });
    }
  }

  AgentControl& own_agent(const std::string& host) {
    if (!agent_control)
      throw ClusterError(Code::failed_precondition,
                         "this orchestrator does not own its agents, so it cannot kill and restart agent " + host +
                             "; use a cluster started with `visorlab up FILE`, or a local `visorlab drill FILE`");
    return *agent_control;
  }

  void teardown() {
    // Nothing was applied, nothing to stop: a second teardown (the
    // destructor's, after a local cluster's own, whose hosts are gone by
    // then) must not wait on dead hosts. Every host at once, so it takes one
    // timeout however many are dead.
    caf::scoped_actor self{sys};
    std::vector<decltype(self->request(actors::host_actor{}, std::chrono::seconds(1), stop_atom::value))> stops;
    if (topo)
      for (const auto& e : directory.all())
        if (e.partitions_up) stops.push_back(self->request(e.partitions, std::chrono::seconds(10), stop_atom::value));
    for (auto& stop : stops) stop.receive([] {}, [](const caf::error&) {});
    if (topo) log.append("teardown", topo->name, "");
    forget_applied();
  }

  // Nothing applied: every table empty, the state dir's state gone, shared
  // memory named after this orchestrator again (a re-adopted cluster's was
  // named after the first one).
  void forget_applied() {
    {
      std::lock_guard glock(guests_mu);
      guests.clear();
    }
    keepers.clear();
    service_ops.clear();
    {
      std::lock_guard table(table_mu);
      devices.clear();
      created.clear();
    }
    command = nullptr;
    topo.reset();
    tag = own_tag();
    holds->store(false);
    if (!options.state_dir.empty()) clear_state(options.state_dir);
    {
      std::lock_guard hlock(service_hosts->mu);
      service_hosts->hosts.clear();
    }
    update_state_metrics();
  }

  static std::string own_tag() { return "o" + std::to_string(::getpid()); }

  caf::actor_system& sys;
  ClusterOptions options;
  // Before the registry, whose hooks hold on to them.
  std::shared_ptr<metrics::Metrics> exported = std::make_shared<metrics::Metrics>();
  std::shared_ptr<ServiceHosts> service_hosts = std::make_shared<ServiceHosts>();
  // True while a topology is applied or about to be re-adopted (the
  // registry's hook reads it on its own thread).
  std::shared_ptr<std::atomic<bool>> holds = std::make_shared<std::atomic<bool>>(false);
  std::mutex save_mu;  // one writer of the state dir at a time
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  std::set<std::pair<std::string, std::string>> partition_series, device_series;  // ever published
  std::set<std::string> recovering;  // services being recovered (under table_mu)
  Directory directory;
  EventLog log;
  caf::actor registry;
  std::uint16_t agent_port = 0;
  // Apply and teardown hold it alone; every other operation shares it and
  // holds its service's lock (service_ops).
  mutable std::shared_mutex mu;
  std::map<std::string, std::unique_ptr<std::mutex>> service_ops;  // made by apply
  mutable std::mutex guests_mu;  // the guests map, read without `mu` by workload()
  // The devices map, next_addr, created and recovering: operations on
  // different services (and apply's workers) change them side by side.
  std::mutex table_mu;

  std::optional<topology::Topology> topo;
  command_actor command;
  std::map<std::string, GuestRun> guests;
  std::map<std::string, keeper_actor> keepers;
  std::map<std::string, DeviceRun> devices;
  std::map<std::string, std::vector<topology::Device>> created;  // guest → created after apply (under table_mu)
  std::uint64_t next_addr = 0x1000;
  mutable std::mutex agents_mu;
  AgentControl* agent_control = nullptr;
  std::string tag = own_tag();
  // Last: it reads the directory, and stops (joined) before anything else goes.
  std::jthread lease_renewer{[this](std::stop_token stop) { renew_leases(stop); }};
};

Cluster::Cluster(caf::actor_system& sys, ClusterOptions options)
    : impl_(std::make_unique<Impl>(sys, std::move(options))) {}

Cluster::~Cluster() {
  // With a state dir the cluster outlives its orchestrator: the next one on
  // the dir re-adopts it (`down` tears it down).
  if (!impl_->options.state_dir.empty() && applied()) {
    spdlog::info("leaving the cluster running for the next orchestrator on {}", impl_->options.state_dir);
  } else {
    try {
      teardown();
    } catch (const std::exception& e) {
      spdlog::error("teardown at exit: {}", e.what());
    }
  }
  // The registry writes into the directory and the event log it was given
  // (agents lost at teardown arrive as down messages); they die with the
  // Impl, so it must be gone first — else a late down message is a
  // use-after-free (seen as "double free or corruption" at exit). Bounded.
  caf::scoped_actor self{impl_->sys};
  self->monitor(impl_->registry);
  self->send_exit(impl_->registry, caf::exit_reason::user_shutdown);
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i)  // at most 5 s: ignore other messages, wait for its down
    self->receive([&](const caf::down_msg& d) { gone = d.source == impl_->registry.address(); },
                  caf::after(std::chrono::milliseconds(50)) >> [] {});
  if (!gone) spdlog::warn("the orchestrator's registry did not stop within 5 s");
}

std::uint16_t Cluster::agent_port() const { return impl_->agent_port; }

void Cluster::apply(const topology::Topology& t) {
  std::unique_lock lock(impl_->mu);
  Impl& m = *impl_;
  if (m.topo) throw ClusterError(Code::failed_precondition, "topology " + m.topo->name + " is applied; tear it down first");
  m.holds->store(true);
  try {
    m.wait_for_hosts(t);
  } catch (...) {
    m.holds->store(false);
    throw;
  }
  m.topo = t;
  {
    std::lock_guard hlock(m.service_hosts->mu);
    for (const auto& s : t.services) m.service_hosts->hosts[s.name] = s.host;
  }
  try {
    m.command = m.ask<command_actor>(m.partitions(t.command.host), "command partition on " + t.command.host,
                                     spawn_atom::value, command_atom::value);
    for (const auto& s : t.services) {
      const ServiceSpec spec{s.name, s.kind, 0.0};  // input flows when a workload starts it (set_input_rate)
      m.keepers[s.name] = m.ask<keeper_actor>(m.partitions(s.host), "service " + s.name, spawn_atom::value, spec,
                                              m.command);
      m.service_ops[s.name] = std::make_unique<std::mutex>();
      m.log.append("service_started", s.name, "on " + s.host);
    }
    m.setup_guests(t);
  } catch (...) {
    m.teardown();
    throw;
  }
  m.log.append("applied", t.name, std::to_string(m.devices.size()) + " devices");
  m.update_state_metrics();
  m.save();
}

void Cluster::teardown() {
  std::unique_lock lock(impl_->mu);
  impl_->teardown();
}

bool Cluster::applied() const {
  std::shared_lock lock(impl_->mu);
  return impl_->topo.has_value();
}

const topology::Topology& Cluster::topology() const {
  std::shared_lock lock(impl_->mu);
  if (!impl_->topo) throw ClusterError(Code::failed_precondition, "no topology is applied");
  return *impl_->topo;
}

std::vector<AgentInfo> Cluster::agents() const {
  std::vector<AgentInfo> out;
  for (const auto& e : impl_->directory.all()) {
    AgentInfo a;
    a.host = e.host;
    a.up = e.agent_up && e.partitions_up;
    a.since_ns = e.since_ns;
    if (e.agent) a.address = to_string(e.agent.node());
    out.push_back(a);
  }
  return out;
}

std::vector<DeviceInfo> Cluster::devices() {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  if (!m.topo) throw ClusterError(Code::failed_precondition, "no topology is applied (visorlab up FILE)");
  std::vector<DeviceInfo> out;
  for (const auto& [name, g] : m.guests) {
    auto tree = m.ask<std::vector<DeviceInfo>>(g.actor, "devices of " + name, devices_atom::value);
    out.insert(out.end(), tree.begin(), tree.end());
  }
  return out;
}

void Cluster::create_device(const std::string& guest, const topology::Device& device) {
  std::shared_lock lock(impl_->mu);
  const auto service = impl_->lock_service(device.service);
  impl_->add_device(guest, device);
  {
    std::lock_guard table(impl_->table_mu);
    impl_->created[guest].push_back(device);
  }
  impl_->update_state_metrics();
  impl_->save();
}

std::vector<topology::Device> Cluster::created_devices(const std::string& guest) const {
  std::lock_guard table(impl_->table_mu);
  const auto it = impl_->created.find(guest);
  return it == impl_->created.end() ? std::vector<topology::Device>{} : it->second;
}

void Cluster::destroy_device(const std::string& name) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  const auto service = m.lock_service(m.device(name).spec.service);
  const auto d = m.device(name);  // as it is now that we hold its service
  m.run(m.keeper(d.spec.service), "detach " + name, detach_atom::value, name);
  m.controlvm(d.guest, cvm::Id::device_destroy, CommandPartition::device(d.spec.bus, d.spec.dev),
              "destroy " + name);
  {
    std::lock_guard table(m.table_mu);
    m.devices.erase(name);
  }
  m.update_state_metrics();
  m.log.append("device_destroyed", name, "");
  m.save();
}

void Cluster::pause_device(const std::string& name) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  const auto service = m.lock_service(m.device(name).spec.service);
  const auto d = m.device(name);
  if (d.state == DeviceState::paused) throw ClusterError(Code::failed_precondition, name + " is already paused");
  m.run(m.keeper(d.spec.service), "pause " + name, pause_atom::value, name);
  try {
    m.controlvm(d.guest, cvm::Id::device_changestate,
                CommandPartition::change_state(d.spec.bus, d.spec.dev, cvm::segment::standby), "pause " + name);
  } catch (const ClusterError&) {
    // The guest did not pause it: neither does its service (nor its recoveries).
    caf::anon_send(m.keeper(d.spec.service), resume_atom::value, name);
    throw;
  }
  m.set_state(name, DeviceState::paused);
  m.log.append("device_paused", name, "");
  m.save();
}

void Cluster::resume_device(const std::string& name) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  const auto service = m.lock_service(m.device(name).spec.service);
  const auto d = m.device(name);
  if (d.state != DeviceState::paused) throw ClusterError(Code::failed_precondition, name + " is not paused");
  m.controlvm(d.guest, cvm::Id::device_changestate,
              CommandPartition::change_state(d.spec.bus, d.spec.dev, cvm::segment::running), "resume " + name);
  m.run(m.keeper(d.spec.service), "resume " + name, resume_atom::value, name);
  m.set_state(name, DeviceState::running);
  m.log.append("device_resumed", name, "");
  m.save();
}

RecoveryTimes Cluster::recover_service(const std::string& service) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  const auto one_at_a_time = m.lock_service(service);
  auto& keeper = m.keeper(service);
  auto t = m.recovery(service, [&] { return m.ask<RecoveryTimes>(keeper, "recover " + service, recover_atom::value); });
  m.log.append("recovery", service, t.ok ? "recover ok" : "recover failed: " + t.error);
  return t;
}

RecoveryTimes Cluster::crash_service(const std::string& service, std::chrono::milliseconds restart_after) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  const auto one_at_a_time = m.lock_service(service);
  auto& keeper = m.keeper(service);
  auto t = m.recovery(service, [&] {
    return m.ask<RecoveryTimes>(keeper, "crash " + service, crash_atom::value,
                                static_cast<std::int64_t>(restart_after.count()));
  });
  m.log.append("recovery", service, t.ok ? "crash recovered" : "crash recovery failed: " + t.error);
  return t;
}

void Cluster::lose_writes(const std::string& service, std::uint64_t every, std::chrono::milliseconds window) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  const auto one_at_a_time = m.lock_service(service);
  auto& keeper = m.keeper(service);
  const topology::Service* svc = m.topo->find_service(service);
  if (!svc || svc->kind != topology::ServiceKind::io)
    throw ClusterError(Code::invalid_argument, service + " is not an io partition: only those write disks");
  if (every == 0 || window.count() <= 0)
    throw ClusterError(Code::invalid_argument, "lose_writes needs every ≥ 1 and a window above zero");
  m.run(keeper, "lose_writes on " + service, lose_atom::value, every, std::int64_t{window.count()});
  m.log.append("lose_writes", service,
               "every " + std::to_string(every) + "th write for " + std::to_string(window.count()) + " ms");
}

void Cluster::set_input_rate(double per_s) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  if (!m.topo) throw ClusterError(Code::failed_precondition, "no topology is applied");
  for (const auto& s : m.topo->services)
    if (s.kind == topology::ServiceKind::console) {
      const auto one_at_a_time = m.lock_service(s.name);
      m.run(m.keeper(s.name), "input on " + s.name, input_atom::value, per_s);
    }
}

workload_actor Cluster::workload(const std::string& guest) const {
  std::lock_guard glock(impl_->guests_mu);
  const auto it = impl_->guests.find(guest);
  if (it == impl_->guests.end()) throw ClusterError(Code::not_found, "unknown guest " + guest);
  return it->second.actor;
}

caf::actor_system& Cluster::system() const { return impl_->sys; }

void Cluster::set_agent_control(AgentControl* agents) {
  std::lock_guard lock(impl_->agents_mu);
  impl_->agent_control = agents;
}

bool Cluster::owns_agents() const {
  std::lock_guard lock(impl_->agents_mu);
  return impl_->agent_control != nullptr;
}

void Cluster::kill_agent(const std::string& host) {
  std::lock_guard lock(impl_->agents_mu);
  impl_->own_agent(host).kill(host);
}

void Cluster::start_agent(const std::string& host) {
  std::lock_guard lock(impl_->agents_mu);
  impl_->own_agent(host).start(host);
}

std::vector<std::string> Cluster::guests() const {
  std::lock_guard glock(impl_->guests_mu);
  std::vector<std::string> out;
  for (const auto& [name, g] : impl_->guests) out.push_back(name);
  return out;
}

void Cluster::cut(const std::string& a, const std::string& b, std::chrono::milliseconds lease) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  if (a == b) throw ClusterError(Code::invalid_argument, "a partition needs two different hosts");
  m.run(m.partitions(a), "cut on " + a, cut_atom::value, b, std::int64_t{lease.count()});
  m.run(m.partitions(b), "cut on " + b, cut_atom::value, a, std::int64_t{lease.count()});
  m.log.append("partition", a + "," + b, "cut for at most " + std::to_string(lease.count()) + " ms");
}

void Cluster::heal(const std::string& a, const std::string& b) {
  std::shared_lock lock(impl_->mu);
  Impl& m = *impl_;
  m.run(m.partitions(a), "heal on " + a, heal_atom::value, b);
  m.run(m.partitions(b), "heal on " + b, heal_atom::value, a);
  m.log.append("healed", a + "," + b, "");
}

std::vector<ClusterEvent> Cluster::events(std::uint64_t after, std::chrono::milliseconds wait) const {
  return impl_->log.since(after, wait);
}

metrics::Metrics& Cluster::metrics() { return *impl_->exported; }

const std::string& Cluster::state_dir() const { return impl_->options.state_dir; }

std::uint16_t Cluster::metrics_port() const { return impl_->metrics_server ? impl_->metrics_server->port() : 0; }

}  // namespace visorlab::orchestrator
