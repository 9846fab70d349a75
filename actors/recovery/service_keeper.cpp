#include "actors/recovery/service_keeper.hpp"

#include <signal.h>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <set>

#include "actors/command/command_actor.hpp"
#include "actors/recovery/recovery_metrics.hpp"
#include "actors/runtime/error.hpp"
#include "actors/runtime/send_later.hpp"
#include "actors/service/exit_watcher.hpp"
#include "metrics/registry.hpp"
#include "metrics/state_share.hpp"

namespace visorlab::recovery {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

using namespace visorlab::actors;
namespace cvm = visorlab::channel::controlvm;
using command::CommandPartition;
using Self = keeper_actor::stateful_pointer<struct State>;

struct Recovery {
  RecoveryTimes times;
  std::int64_t restart_at_ns = 0;  // crash: not before the kill + restart_after
  bool awaiting_restart = false;   // the old process is gone; restart_atom restarts it at restart_at_ns
  std::int64_t exit_by_ns = 0;     // planned: SIGTERMed, the tick waits for its exit until then (then SIGKILL)
  std::optional<caf::typed_response_promise<RecoveryTimes>> promise;
};

struct State {
  std::unique_ptr<service::ServiceProcess> process;
  // Ticks us when `process` exits; null where the kernel has no pidfd (then
  // the tick polls for the exit every 2 ms).
  std::unique_ptr<service::ExitWatcher> exit_watch;
  bool ticking = false;  // a tick is on its way
  service_actor service;
  // A warm spare, started and connected ahead of time: a restart promotes it
  // instead of waiting for a process to start (the slowest phase by far).
  std::unique_ptr<service::ServiceProcess> standby;
  service_actor standby_service;
  std::vector<ServedDevice> devices;
  // Devices an operator paused (pause_atom, until resume_atom): a recovery
  // neither pauses nor resumes them, and a new process attaches them paused.
  std::set<std::string> held;
  std::vector<ServedDevice> unheld() const {
    std::vector<ServedDevice> out;
    for (const auto& d : devices)
      if (!held.contains(d.attach.device)) out.push_back(d);
    return out;
  }
  double input_rate = 0;             // a console's, as last set: every new process gets it
  std::optional<Recovery> recovery;  // one at a time
  bool revert_pending = false;       // the lease lapsed mid-recovery: revert once it is done
  bool stopping = false;             // a down message we caused ourselves
  std::shared_ptr<metrics::Metrics> metrics;       // kept alive for `partition`
  std::unique_ptr<metrics::StateShare> partition;  // null: no metrics
  void partition_state(std::string_view state) {
    if (partition) partition->set_one(state);
  }
  static inline const char* name = "visorlab.keeper";
};

// Runs `request(i)` for i in [0, n) in parallel; `done` gets the first error
// ("" if none) once every reply is in.
template <class Issue>
void all(std::size_t n, Issue issue, std::function<void(std::string)> done) {
  if (n == 0) {
    done("");
    return;
  }
  struct Batch {
    std::size_t left;
    std::string error;
    std::function<void(std::string)> done;
  };
  auto batch = std::make_shared<Batch>(Batch{n, "", std::move(done)});
  auto finish = [batch](std::string error) {
    if (batch->error.empty()) batch->error = std::move(error);
    if (--batch->left == 0) batch->done(batch->error);
  };
  for (std::size_t i = 0; i < n; ++i) issue(i, finish);
}

// Sends one controlvm command per device (made by `packet`), in parallel.
void command_all(Self self, const KeeperOptions& o, std::vector<ServedDevice> devices,
                 std::function<cvm::Packet(const ServedDevice&)> packet, std::string what,
                 std::function<void(std::string)> done) {
  auto shared = std::make_shared<std::vector<ServedDevice>>(std::move(devices));
  all(
      shared->size(),
      [=](std::size_t i, auto finish) {
        const ServedDevice& d = (*shared)[i];
        self->request(o.commands, o.command_timeout, command_atom::value,
                      command::make_request(d.guest, cvm::Id::device_changestate, packet(d)))
            .then(
                [=](const CommandResult& r) {
                  if (r.timed_out) return finish(what + " " + d.attach.device + ": no response (timed out)");
                  if (r.failed || r.status != 0)
                    return finish(what + " " + d.attach.device + ": failed with " + cvm::status_text(r.status));
                  finish("");
                },
                [=](const caf::error& e) { finish(what + " " + d.attach.device + ": " + message_of(e)); });
      },
      std::move(done));
}

// One request: the service partition opens every channel at once. `reset`:
// every device was paused (DeviceAttach::reset).
void attach_all(Self self, const KeeperOptions& o, bool reset, std::function<void(std::string)> done) {
  if (self->state.devices.empty()) return done("");
  std::vector<DeviceAttach> devices;
  for (const auto& d : self->state.devices) {
    devices.push_back(d.attach);
    devices.back().reset = reset;
    devices.back().paused = self->state.held.contains(d.attach.device);
  }
  self->request(self->state.service, o.command_timeout, attach_atom::value, std::move(devices))
      .then([=] { done(""); }, [=](const caf::error& e) { done(message_of(e)); });
}

std::vector<ServedDevice> sriov_devices(const std::vector<ServedDevice>& devices) {
  std::vector<ServedDevice> out;
  for (const auto& d : devices)
    if (d.sriov) out.push_back(d);
  return out;
}

// Ticks the keeper when the service partition's process exits, so its
// death is noticed at once with no timer running while all is well.
void watch_exit(Self self) {
  auto& st = self->state;
  st.exit_watch.reset();
  try {
    st.exit_watch =
        std::make_unique<service::ExitWatcher>(st.process->pid(), send_later<keeper_actor>(self, tick_atom::value));
  } catch (const std::exception& e) {
    spdlog::warn("{}: no pidfd ({}): polling for its exit", st.process->options().service.name, e.what());
  }
}

// The tick checks for a death or a planned exit; it comes again in 2 ms only
// while it must poll: waiting out a planned exit's grace, or without pidfd.
void tick_soon(Self self) {
  auto& st = self->state;
  if (st.ticking) return;
  st.ticking = true;
  self->delayed_send(self, std::chrono::milliseconds(2), tick_atom::value);
}

// A new process serves from now on: it takes the input rate as it is now
// (a spare was started with the rate of its day).
void adopt(Self self) {
  auto& st = self->state;
  self->monitor(st.service);
  watch_exit(self);
  self->send(st.service, input_atom::value, st.input_rate);
}

// Starts the process and connects; "" or why not.
std::string start_process(Self self) {
  try {
    self->state.service = self->state.process->start();
    adopt(self);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Starts a spare if there is none (its failure only costs speed).
void ensure_standby(Self self, const KeeperOptions& o) {
  auto& st = self->state;
  if (st.standby && st.standby->alive()) return;
  st.standby = std::make_unique<service::ServiceProcess>(self->system(), o.process);
  try {
    st.standby_service = st.standby->start();
  } catch (const std::exception& e) {
    spdlog::warn("{}: no warm spare: {}", o.process.service.name, e.what());
    st.standby.reset();
  }
}

// The spare becomes the service partition; "" or why not.
std::string promote_standby(Self self) {
  auto& st = self->state;
  if (!st.standby || !st.standby->alive()) return start_process(self);
  st.process = std::move(st.standby);
  st.service = st.standby_service;
  st.standby_service = nullptr;
  adopt(self);
  return "";
}

Recovery begin(Self self, RecoveryKind kind);
void pause_then_restart(Self self, const KeeperOptions& o);

void finish(Self self, const KeeperOptions& o, std::string error) {
  auto& st = self->state;
  Recovery r = std::move(*st.recovery);
  st.recovery.reset();
  r.times.ok = error.empty();
  r.times.error = std::move(error);
  st.partition_state(r.times.ok ? "running" : "failed");
  if (o.metrics) observe_recovery(*o.metrics, o.host, r.times);
  if (r.times.ok)
    spdlog::info("{}: {} done in {:.1f} ms", r.times.service, to_string(r.times.kind),
                 (r.times.resumed_ns - r.times.start_ns) / 1e6);
  else
    spdlog::error("{}: {} failed: {}", r.times.service, to_string(r.times.kind), r.times.error);
  if (r.promise)
    r.promise->deliver(r.times);
  else if (o.listener)
    caf::anon_send(o.listener, event_atom::value, r.times);
  if (st.revert_pending) {
    st.revert_pending = false;
    self->send(self, revert_atom::value);
  }
  ensure_standby(self, o);  // after the answer: it is not on the recovery's clock
}

// The service partition's process died: a crash we injected, or one nobody
// announced. Either way the same recovery runs.
void on_death(Self self, const KeeperOptions& o) {
  auto& st = self->state;
  if (st.stopping) return;
  if (st.recovery && st.recovery->times.kind == RecoveryKind::crash && st.recovery->times.detect_ns == 0) {
    st.recovery->times.detect_ns = now_ns();  // the crash we injected, noticed
  } else if (!st.recovery) {
    spdlog::warn("{}: its process died unexpectedly; recovering", o.process.service.name);
    st.recovery = begin(self, RecoveryKind::crash);
    st.recovery->times.detect_ns = st.recovery->times.start_ns;
  } else {
    return;  // died again mid-recovery: the running recovery's restart handles it
  }
  pause_then_restart(self, o);
}

void restart(Self self, const KeeperOptions& o);
void restart_when_due(Self self, const KeeperOptions& o);

// How long a planned recover lets the old process exit on SIGTERM.
constexpr std::int64_t kExitGraceNs = 200'000'000;

// The phases after every served device is paused (and, for a crash, the
// process is gone): restart, re-attach, resume, re-enable SR-IOV. The keeper
// never sleeps, so it answers (stats, pause) while it waits: a planned
// recover's old process is SIGTERMed and its exit seen on the tick; a crash's
// restart waits for restart_at_ns with a message to itself.
void restart_and_resume(Self self, const KeeperOptions& o) {
  auto& st = self->state;
  st.stopping = true;
  if (st.process->terminate()) {  // planned; a crashed one is reaped already
    st.recovery->exit_by_ns = now_ns() + kExitGraceNs;
    tick_soon(self);
    return;
  }
  restart_when_due(self, o);
}

// The tick's part: the SIGTERMed process exited, or its grace ran out.
void check_exit(Self self, const KeeperOptions& o) {
  auto& st = self->state;
  if (st.process->alive() && now_ns() < st.recovery->exit_by_ns) return;
  st.recovery->exit_by_ns = 0;
  st.process->kill9();  // nothing if it exited
  restart_when_due(self, o);
}

void restart_when_due(Self self, const KeeperOptions& o) {
  auto& st = self->state;
  if (const std::int64_t wait = st.recovery->restart_at_ns - now_ns(); wait > 0) {
    st.recovery->awaiting_restart = true;
    self->delayed_send(self, std::chrono::nanoseconds(wait), restart_atom::value);
    return;
  }
  restart(self, o);
}

void restart(Self self, const KeeperOptions& o) {
  auto& st = self->state;
  st.recovery->awaiting_restart = false;
  st.stopping = false;
  if (auto error = promote_standby(self); !error.empty()) return finish(self, o, "restart: " + error);
  attach_all(self, o, /*reset=*/true, [=](std::string error) {
    if (!error.empty()) return finish(self, o, "re-attach: " + error);
    self->state.recovery->times.restarted_ns = now_ns();
    command_all(self, o, self->state.unheld(),
                [](const ServedDevice& d) { return CommandPartition::change_state(d.bus_no, d.dev_no, cvm::segment::running); },
                "resume", [=](std::string error) {
                  if (!error.empty()) return finish(self, o, error);
                  self->state.recovery->times.resumed_ns = now_ns();
                  command_all(self, o, sriov_devices(self->state.devices),
                              [](const ServedDevice& d) { return CommandPartition::parahotplug(d.bus_no, d.dev_no, true); },
                              "sriov enable", [=](std::string error) { finish(self, o, error); });
                });
  });
}

// Disable SR-IOV devices (the guest acknowledges), then pause every device.
void pause_then_restart(Self self, const KeeperOptions& o) {
  command_all(self, o, sriov_devices(self->state.devices),
              [](const ServedDevice& d) { return CommandPartition::parahotplug(d.bus_no, d.dev_no, false); },
              "sriov disable", [=](std::string error) {
                if (!error.empty()) return finish(self, o, error);
                command_all(self, o, self->state.unheld(),
                            [](const ServedDevice& d) {
                              return CommandPartition::change_state(d.bus_no, d.dev_no, cvm::segment::standby);
                            },
                            "pause", [=](std::string error) {
                              if (!error.empty()) return finish(self, o, error);
                              self->state.recovery->times.paused_ns = now_ns();
                              restart_and_resume(self, o);
                            });
              });
}

Recovery begin(Self self, RecoveryKind kind) {
  self->state.partition_state("recovering");
  Recovery r;
  r.times.service = self->state.process->options().service.name;
  r.times.kind = kind;
  r.times.start_ns = now_ns();
  r.times.devices = static_cast<std::uint32_t>(self->state.devices.size());
  return r;
}

keeper_actor::behavior_type keeper(Self self, KeeperOptions o) {
  self->state.process = std::make_unique<service::ServiceProcess>(self->system(), o.process);
  self->state.input_rate = o.process.service.input_rate;
  if (o.metrics) {
    self->state.metrics = o.metrics;
    self->state.partition =
        std::make_unique<metrics::StateShare>(*o.metrics, metrics::StateShare::Family::partitions, o.host);
  }
  // Two ways to notice a death: the middleman's connection drops (down
  // message), or — usually first — reaping the child on the keeper's tick.
  self->set_down_handler([=](const caf::down_msg& down) {
    auto& st = self->state;
    if (down.source != caf::actor_cast<caf::actor_addr>(st.service)) return;
    if (!st.process->alive()) on_death(self, o);
  });
  return {
      [=](tick_atom) {
        auto& st = self->state;
        st.ticking = false;
        if (st.recovery && st.recovery->exit_by_ns) check_exit(self, o);
        else if (!st.stopping && st.process->pid() > 0 && !st.process->alive()) on_death(self, o);
        if ((st.recovery && st.recovery->exit_by_ns) || !st.exit_watch) tick_soon(self);
      },
      [=](restart_atom) {
        if (self->state.recovery && self->state.recovery->awaiting_restart) restart(self, o);
      },
      [=](start_atom) -> caf::result<ServiceStats> {
        if (auto error = start_process(self); !error.empty())
          return make_error(Errc::unavailable, "service partition " + o.process.service.name + ": " + error);
        self->state.partition_state("running");
        ensure_standby(self, o);
        self->send(self, tick_atom::value);
        return self->delegate(self->state.service, stats_atom::value);
      },
      [=](attach_atom, const ServedDevice& d) -> caf::result<void> {
        caf::response_promise promise = self->make_response_promise();
        self->request(self->state.service, o.command_timeout, attach_atom::value, d.attach)
            .then(
                [=]() mutable {
                  self->state.devices.push_back(d);
                  promise.deliver(caf::unit);
                },
                [=](caf::error& e) mutable { promise.deliver(std::move(e)); });
        return promise;
      },
      [=](detach_atom, const std::string& device) -> caf::result<void> {
        std::erase_if(self->state.devices, [&](const ServedDevice& d) { return d.attach.device == device; });
        self->state.held.erase(device);
        return self->delegate(self->state.service, detach_atom::value, device);
      },
      [=](recover_atom) -> caf::result<RecoveryTimes> {
        if (self->state.recovery) return make_error(Errc::failed_precondition, "a recovery is already running");
        auto promise = self->make_response_promise<RecoveryTimes>();
        self->state.recovery = begin(self, RecoveryKind::recover);
        self->state.recovery->promise = promise;
        pause_then_restart(self, o);
        return promise;
      },
      [=](crash_atom, std::int64_t restart_after_ms) -> caf::result<RecoveryTimes> {
        auto& st = self->state;
        if (st.recovery) return make_error(Errc::failed_precondition, "a recovery is already running");
        auto promise = self->make_response_promise<RecoveryTimes>();
        st.recovery = begin(self, RecoveryKind::crash);
        st.recovery->promise = promise;
        st.recovery->restart_at_ns = st.recovery->times.start_ns + restart_after_ms * 1'000'000;
        ::kill(st.process->pid(), SIGKILL);  // detection is the down message's job
        return promise;
      },
      // The service side of a device pause: the console partition holds the
      // device's reports until resume.
      // Held across recoveries: with no process up (mid-crash) the next one
      // attaches it as it is held then.
      [=](pause_atom, const std::string& device) -> caf::result<void> {
        self->state.held.insert(device);
        if (!self->state.process->alive()) return caf::unit;
        return self->delegate(self->state.service, pause_atom::value, device);
      },
      // The orchestrator that paused devices here stopped renewing its lease
      // (dead, cut off or hung): nobody will resume them, so the keeper does,
      // guest side first as resume_device does.
      [=](revert_atom) {
        auto& st = self->state;
        if (st.held.empty()) return;
        if (st.recovery) {
          // Its phases decide what is paused as they go: revert after it.
          st.revert_pending = true;
          return;
        }
        std::vector<ServedDevice> paused;
        for (const auto& d : st.devices)
          if (st.held.contains(d.attach.device)) paused.push_back(d);
        spdlog::warn("{}: the orchestrator's lease lapsed: resuming {} device(s) it paused", o.process.service.name,
                     st.held.size());
        if (o.metrics)
          o.metrics->faults_reverted_by_lease(o.host, metrics::LeasedFault::pause)
              .Increment(static_cast<double>(st.held.size()));
        st.held.clear();
        command_all(self, o, paused,
                    [](const ServedDevice& d) { return CommandPartition::change_state(d.bus_no, d.dev_no, cvm::segment::running); },
                    "resume", [=](std::string error) {
                      if (!error.empty()) spdlog::error("{}: lease revert: {}", o.process.service.name, error);
                      auto& now = self->state;
                      if (!now.process->alive()) return;
                      for (const auto& d : paused)
                        if (!now.held.contains(d.attach.device))  // paused again meanwhile: stays so
                          self->send(now.service, resume_atom::value, d.attach.device);
                    });
      },
      [=](resume_atom, const std::string& device) -> caf::result<void> {
        self->state.held.erase(device);
        if (!self->state.process->alive()) return caf::unit;
        return self->delegate(self->state.service, resume_atom::value, device);
      },
      [=](lose_atom, std::uint64_t every, std::int64_t for_ms) -> caf::result<void> {
        return self->delegate(self->state.service, lose_atom::value, every, for_ms);
      },
      // Kept for every process to come; the one serving now (if any: it may
      // be down in a recovery) takes it at once.
      [=](input_atom, double per_s) -> caf::result<void> {
        if (!valid_input_rate(per_s))
          return make_error(Errc::invalid_argument, "an input rate is a number ≥ 0");
        auto& st = self->state;
        st.input_rate = per_s;
        if (st.service && st.process->alive()) self->send(st.service, input_atom::value, per_s);
        return caf::unit;
      },
      [=](stats_atom) -> caf::result<ServiceStats> { return self->delegate(self->state.service, stats_atom::value); },
  };
}

}  // namespace

actors::keeper_actor spawn_keeper(caf::actor_system& sys, KeeperOptions options) {
  return sys.spawn<caf::detached>(keeper, std::move(options));
}

}  // namespace visorlab::recovery
