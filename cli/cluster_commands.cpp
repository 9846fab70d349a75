// The commands that drive a running cluster through its orchestrator:
// `up FILE`, `down`, `devices`, `agents`, `create`, `destroy`, `pause`,
// `resume`, `recover`, `crash`, `events [-f]`. Each is one gRPC call (events
// a stream); the orchestrator validates, this side prints and maps statuses
// onto exit codes (2 the request's fault, 3 the cluster's or network's).
// `up` without an orchestrator starts a local one instead (local_up.hpp).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/local_up.hpp"
#include "topology/units.hpp"

namespace visorlab::cli {
namespace {

namespace v1 = visorlab::v1;
using namespace std::chrono_literals;

constexpr auto kApplyTimeout = std::chrono::seconds(300);  // agents may still be registering; many devices
constexpr auto kCallTimeout = std::chrono::seconds(120);   // a recovery waits for restarts
constexpr std::uintmax_t kMaxFileBytes = 1 << 20;

// What every cluster command shares: where the orchestrator is.
struct Common {
  std::string orchestrator;
};

CLI::App* cluster_command(CLI::App& app, const std::string& name, const std::string& description,
                          std::shared_ptr<Common>& common) {
  common = std::make_shared<Common>();
  auto* cmd = app.add_subcommand(name, description);
  add_orchestrator_option(*cmd, common->orchestrator);
  return cmd;
}

// ---------------------------------------------------------------------------
// up / down

bool has_orchestrator(const Common& c) {
  const char* env = std::getenv(kOrchestratorEnv);
  return !c.orchestrator.empty() || (env && *env);
}

int up(const Common& c, const LocalUpOptions& local) {
  const std::string& file = local.file;
  if (!has_orchestrator(c)) return run_local_up(local);
  for (const auto& [flag, value] : {std::pair<const char*, const std::string&>{"--listen", local.listen},
                                    {"--run-dir", local.run_dir},
                                    {"--metrics", local.metrics}})
    if (!value.empty()) {
      std::cerr << "visorlab up: " << flag << " is for a local cluster; with --orchestrator or " << kOrchestratorEnv
                << " the orchestrator there decides it\n";
      return kBadInput;
    }
  return with_orchestrator("up", c.orchestrator, [&](OrchestratorClient& client) -> int {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) {
      std::cerr << "visorlab up: " << file << ": " << ec.message() << "\n";
      return kBadInput;
    }
    if (size > kMaxFileBytes) {
      std::cerr << "visorlab up: " << file << ": " << size << " bytes is too large for a topology file\n";
      return kBadInput;
    }
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::cerr << "visorlab up: " << file << ": cannot read\n";
      return kBadInput;
    }
    v1::ApplyTopologyRequest request;
    request.set_topology_yaml(text.str());
    request.set_file_label(file);
    v1::ApplyTopologyResponse response;
    const auto status = client.stub().ApplyTopology(client.context(kApplyTimeout).get(), request, &response);
    if (!status.ok()) return client.fail(status);
    std::cout << "applied " << response.name() << ": " << response.guests() << " guests, " << response.devices()
              << " devices, " << response.services() << " services on hosts";
    for (int i = 0; i < response.hosts_size(); ++i) std::cout << (i ? ", " : " ") << response.hosts(i);
    std::cout << "\n";
    return kPass;
  });
}

int down(const Common& c) {
  return with_orchestrator("down", c.orchestrator, [&](OrchestratorClient& client) {
    v1::TeardownResponse response;
    const auto status = client.stub().Teardown(client.context(kCallTimeout).get(), {}, &response);
    if (!status.ok()) return client.fail(status);
    if (response.was_applied()) std::cout << "tore down " << response.name() << "\n";
    else std::cout << "nothing was applied\n";
    return int{kPass};
  });
}

// ---------------------------------------------------------------------------
// devices / agents

int devices(const Common& c, const std::string& guest) {
  return with_orchestrator("devices", c.orchestrator, [&](OrchestratorClient& client) {
    v1::ListDevicesRequest request;
    request.set_guest(guest);
    v1::ListDevicesResponse response;
    const auto status = client.stub().ListDevices(client.context(kCallTimeout).get(), request, &response);
    if (!status.ok()) return client.fail(status);
    for (const auto& d : response.devices()) {
      std::cout << d.bus_name() << " " << (d.name().empty() ? d.guest() + "/?" : d.name())
                << " driver=" << (d.driver().empty() ? "-" : d.driver()) << " typeguid=" << d.typeguid()
                << " nbytes=" << d.nbytes() << " state=" << (d.state().empty() ? "-" : d.state()) << "\n";
    }
    return int{kPass};
  });
}

int agents(const Common& c, const std::string& host) {
  return with_orchestrator("agents", c.orchestrator, [&](OrchestratorClient& client) {
    v1::ListAgentsRequest request;
    request.set_host(host);
    v1::ListAgentsResponse response;
    const auto status = client.stub().ListAgents(client.context(kCallTimeout).get(), request, &response);
    if (!status.ok()) return client.fail(status);
    if (response.agents_size() == 0) std::cerr << "no agents have registered\n";
    for (const auto& a : response.agents()) {
      std::cout << a.host() << " " << (a.address().empty() ? "-" : a.address()) << " "
                << (a.up() ? "up" : "lost") << " for " << std::fixed << std::setprecision(1) << a.since_s()
                << "s\n";
    }
    return int{kPass};
  });
}

// ---------------------------------------------------------------------------
// create / destroy / pause / resume

struct CreateOptions {
  std::string guest, kind, service, disk_size, switch_name;
  std::vector<std::string> disks;
  bool sriov = false;
};

int create(const Common& c, const CreateOptions& o) {
  v1::CreateDeviceRequest request;
  request.set_guest(o.guest);
  request.set_kind(o.kind);
  request.set_service(o.service);
  if (!o.disk_size.empty()) {
    try {
      request.set_disk_size_bytes(topology::parse_size(o.disk_size));
    } catch (const std::invalid_argument& e) {
      std::cerr << "visorlab create: --disk-size " << o.disk_size << ": " << e.what() << "\n";
      return kBadInput;
    }
    if (request.disk_size_bytes() == 0) {
      std::cerr << "visorlab create: --disk-size: a disk cannot be empty\n";
      return kBadInput;
    }
  }
  for (const auto& d : o.disks) request.add_disks(d);
  request.set_switch_name(o.switch_name);
  request.set_sriov(o.sriov);
  return with_orchestrator("create", c.orchestrator, [&](OrchestratorClient& client) {
    v1::CreateDeviceResponse response;
    const auto status = client.stub().CreateDevice(client.context(kCallTimeout).get(), request, &response);
    if (!status.ok()) return client.fail(status);
    std::cout << "created " << response.device() << " at " << response.bus_name() << "\n";
    return int{kPass};
  });
}

enum class DeviceOp { destroy, pause, resume };

int device_op(const Common& c, DeviceOp op, const std::string& device) {
  const std::string name = op == DeviceOp::destroy ? "destroy" : op == DeviceOp::pause ? "pause" : "resume";
  return with_orchestrator(name, c.orchestrator, [&](OrchestratorClient& client) {
    grpc::Status status;
    const auto context = client.context(kCallTimeout);
    switch (op) {
      case DeviceOp::destroy: {
        v1::DestroyDeviceRequest request;
        request.set_device(device);
        v1::DestroyDeviceResponse response;
        status = client.stub().DestroyDevice(context.get(), request, &response);
        break;
      }
      case DeviceOp::pause: {
        v1::PauseDeviceRequest request;
        request.set_device(device);
        v1::PauseDeviceResponse response;
        status = client.stub().PauseDevice(context.get(), request, &response);
        break;
      }
      case DeviceOp::resume: {
        v1::ResumeDeviceRequest request;
        request.set_device(device);
        v1::ResumeDeviceResponse response;
        status = client.stub().ResumeDevice(context.get(), request, &response);
        break;
      }
    }
    if (!status.ok()) return client.fail(status);
    std::cout << (op == DeviceOp::destroy ? "destroyed " : op == DeviceOp::pause ? "paused " : "resumed ")
              << device << "\n";
    return int{kPass};
  });
}

// ---------------------------------------------------------------------------
// recover / crash

std::string ms(double v) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(v < 10 ? 2 : 1) << v << " ms";
  return out.str();
}

int print_recovery(const v1::Recovery& r, const std::string& command) {
  std::cout << command << " " << r.service() << ": " << r.devices() << " devices";
  if (r.kind() == "crash") std::cout << ", detect " << ms(r.detect_ms());
  std::cout << ", pause " << ms(r.pause_ms()) << ", restart " << ms(r.restart_ms()) << ", resume "
            << ms(r.resume_ms()) << ", total " << ms(r.total_ms()) << "\n";
  if (!r.ok()) {
    std::cerr << "visorlab " << command << ": " << r.service() << " did not recover"
              << (r.error().empty() ? "" : ": " + r.error()) << "\n";
    return kInfrastructure;
  }
  return kPass;
}

int recover(const Common& c, const std::string& service) {
  return with_orchestrator("recover", c.orchestrator, [&](OrchestratorClient& client) {
    v1::RecoverServiceRequest request;
    request.set_service(service);
    v1::RecoverServiceResponse response;
    const auto status = client.stub().RecoverService(client.context(kCallTimeout).get(), request, &response);
    if (!status.ok()) return client.fail(status);
    return print_recovery(response.recovery(), "recover");
  });
}

int crash(const Common& c, const std::string& service, const std::string& restart_after) {
  v1::CrashServiceRequest request;
  request.set_service(service);
  try {
    const auto after = topology::parse_duration(restart_after);
    if (after.count() < 0) throw std::invalid_argument("a duration cannot be negative");
    request.set_restart_after_us(static_cast<std::uint64_t>(after.count()));
  } catch (const std::invalid_argument& e) {
    std::cerr << "visorlab crash: --restart-after " << restart_after << ": " << e.what() << "\n";
    return kBadInput;
  }
  return with_orchestrator("crash", c.orchestrator, [&](OrchestratorClient& client) {
    v1::CrashServiceResponse response;
    const auto status = client.stub().CrashService(client.context(kCallTimeout).get(), request, &response);
    if (!status.ok()) return client.fail(status);
    return print_recovery(response.recovery(), "crash");
  });
}

// ---------------------------------------------------------------------------
// events

std::string wall_time(std::int64_t unix_ns) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::ostringstream out;
  out << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << "." << std::setw(3) << std::setfill('0')
      << (unix_ns / 1'000'000) % 1000 << "Z";
  return out.str();
}

int events(const Common& c, bool follow, std::uint64_t after) {
  // Following ends on Ctrl-C or SIGTERM: block them before gRPC starts its
  // threads (they inherit the mask) and let one thread wait for them and
  // cancel the call.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (follow) pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return with_orchestrator("events", c.orchestrator, [&](OrchestratorClient& client) {
    v1::WatchEventsRequest request;
    request.set_after_index(after);
    request.set_follow(follow);
    const auto context = client.context(follow ? 0s : kCallTimeout);
    std::atomic<bool> done{false}, interrupted{false};
    std::thread watcher;
    if (follow) {
      watcher = std::thread([&] {
        const timespec poll{0, 100'000'000};
        while (!done.load()) {
          if (sigtimedwait(&signals, nullptr, &poll) > 0) {
            interrupted.store(true);
            context->TryCancel();
            return;
          }
        }
      });
    }
    auto reader = client.stub().WatchEvents(context.get(), request);
    v1::Event e;
    while (reader->Read(&e)) {
      std::cout << wall_time(e.unix_ns()) << " #" << e.index() << " " << e.kind() << " "
                << (e.target().empty() ? "-" : e.target()) << (e.detail().empty() ? "" : " " + e.detail())
                << std::endl;
    }
    const auto status = reader->Finish();
    done.store(true);
    if (watcher.joinable()) watcher.join();
    if (interrupted.load()) return int{kPass};  // the user stopped following
    if (!status.ok()) return client.fail(status);
    return int{kPass};
  });
}

}  // namespace

void add_cluster_commands(CLI::App& app, Action& action) {
  std::shared_ptr<Common> c;

  {
    auto* cmd = cluster_command(
        app, "up",
        "Apply a topology file to the cluster at --orchestrator. Without one: start a local cluster in the "
        "foreground (orchestrator here, one agent process per host), apply FILE, serve until Ctrl-C or "
        "`visorlab down`",
        c);
    auto local = std::make_shared<LocalUpOptions>();
    cmd->add_option("FILE", local->file, "Topology file (YAML, version: 1)")->required();
    cmd->add_option("--listen", local->listen,
                    "Local cluster: its gRPC address, HOST:PORT (port 0: any free port; default 127.0.0.1:4700)");
    cmd->add_option("--run-dir", local->run_dir,
                    "Local cluster: disks and logs here (default: a temporary directory, removed at exit)");
    cmd->add_option("--metrics", local->metrics,
                    "Local cluster: the orchestrator's /metrics on HOST:PORT (default 127.0.0.1:0; none: off)");
    cmd->callback([&action, c, local] { action = [c, local] { return up(*c, *local); }; });
  }
  {
    auto* cmd = cluster_command(app, "down", "Tear down the applied topology", c);
    cmd->callback([&action, c] { action = [c] { return down(*c); }; });
  }
  {
    auto* cmd = cluster_command(app, "devices", "List the bus tree of every guest, one device per line", c);
    auto guest = std::make_shared<std::string>();
    cmd->add_option("--guest", *guest, "Only this guest's devices");
    cmd->callback([&action, c, guest] { action = [c, guest] { return devices(*c, *guest); }; });
  }
  {
    auto* cmd = cluster_command(app, "agents", "List the agents registered with the orchestrator", c);
    auto host = std::make_shared<std::string>();
    cmd->add_option("--host", *host, "Only this host's agent");
    cmd->callback([&action, c, host] { action = [c, host] { return agents(*c, *host); }; });
  }
  {
    auto* cmd = cluster_command(app, "create", "Create a device on a guest (hot-add through the command partition)", c);
    auto o = std::make_shared<CreateOptions>();
    cmd->add_option("GUEST", o->guest, "Guest to add the device to, e.g. g0")->required();
    cmd->add_option("--kind", o->kind, "Device kind")
        ->required()
        ->check(CLI::IsMember({"vhba", "vnic", "keyboard", "mouse"}));
    cmd->add_option("--service", o->service, "Service partition serving it, e.g. io0")->required();
    auto* size = cmd->add_option("--disk-size", o->disk_size, "vhba: a fresh disk of this size, e.g. 16MiB");
    auto* disk = cmd->add_option("--disk", o->disks, "vhba: a named disk of the service (repeatable)");
    size->excludes(disk);
    cmd->add_option("--switch", o->switch_name, "vnic: a switch of the service, e.g. sw0");
    cmd->add_flag("--sriov", o->sriov, "vnic: an SR-IOV virtual function");
    cmd->callback([&action, c, o] { action = [c, o] { return create(*c, *o); }; });
  }
  const std::pair<const char*, DeviceOp> device_ops[] = {{"destroy", DeviceOp::destroy},
                                                         {"pause", DeviceOp::pause},
                                                         {"resume", DeviceOp::resume}};
  for (const auto& [name, op] : device_ops) {
    const std::string what = op == DeviceOp::destroy ? "Destroy a device (hot-remove)"
                             : op == DeviceOp::pause ? "Pause a device: its driver stops touching the channel"
                                                     : "Resume a paused device";
    auto* cmd = cluster_command(app, name, what, c);
    auto device = std::make_shared<std::string>();
    cmd->add_option("DEVICE", *device, "Device, GUEST/KINDN like g0/vhba0")->required();
    cmd->callback([&action, c, device, op = op] { action = [c, device, op] { return device_op(*c, op, *device); }; });
  }
  {
    auto* cmd = cluster_command(app, "recover",
                                "Planned recovery of a service partition: pause, restart, resume; prints each phase",
                                c);
    auto service = std::make_shared<std::string>();
    cmd->add_option("SERVICE", *service, "Service partition, e.g. io0")->required();
    cmd->callback([&action, c, service] { action = [c, service] { return recover(*c, *service); }; });
  }
  {
    auto* cmd = cluster_command(app, "crash",
                                "Kill a service partition's process (kill -9) and time its recovery", c);
    auto service = std::make_shared<std::string>();
    auto after = std::make_shared<std::string>("0");
    cmd->add_option("SERVICE", *service, "Service partition, e.g. io0")->required();
    cmd->add_option("--restart-after", *after, "Restart it this long after the kill, e.g. 50ms")
        ->capture_default_str();
    cmd->callback([&action, c, service, after] { action = [c, service, after] { return crash(*c, *service, *after); }; });
  }
  {
    auto* cmd = cluster_command(app, "events", "Print what happened in the cluster; -f keeps following until Ctrl-C", c);
    auto follow = std::make_shared<bool>(false);
    auto after = std::make_shared<std::uint64_t>(0);
    cmd->add_flag("-f,--follow", *follow, "Keep printing new events until Ctrl-C");
    cmd->add_option("--after", *after, "Only events after this index");
    cmd->callback([&action, c, follow, after] { action = [c, follow, after] { return events(*c, *follow, *after); }; });
  }
}

}  // namespace visorlab::cli
