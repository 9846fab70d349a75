// `visorlab orchestrator`: the daemon. A CAF actor system that agents
// register with (--agent-port), the cluster it runs, and the visorlab.v1 gRPC
// API (--listen) and its /metrics (--metrics), until SIGTERM or SIGINT. Every
// port is on loopback unless an address names another; a taken port is
// exit 3. It does not own the agents, so RunDrill refuses kill_agent steps
// (drill::run_drill).
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "actors/runtime/config.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "metrics/exposer.hpp"
#include "net/host_port.hpp"
#include "orchestrator/cluster.hpp"
#include "topology/units.hpp"
#include "api/grpc_service.hpp"
#include "api/server.hpp"

namespace visorlab::cli {
namespace {

namespace fs = std::filesystem;
namespace orch = visorlab::orchestrator;
using namespace std::chrono_literals;

constexpr auto kStopLimit = 30s;  // a stop that takes longer than this is abandoned (exit 3)

struct DaemonOptions {
  std::string listen = api::kDefaultListen;
  std::uint16_t agent_port = 4710;
  std::string agent_bind;  // default: the --listen host
  std::string run_dir;     // default: a fresh directory under $TMPDIR, removed at exit
  std::string metrics = "127.0.0.1:0";  // /metrics and /healthz; "" or "none": not served
  std::string lease = "2s";             // on every fault it puts in effect
  std::string state_dir;                // empty: keeps no state
};

// CAF wants a numeric address or a name it resolves itself; the gRPC forms
// "localhost" and "[::1]" map onto the loopback it binds.
std::string agent_bind_for(const net::HostPort& listen) {
  if (listen.host == "localhost") return "127.0.0.1";
  return listen.host;
}

int run_orchestrator(const DaemonOptions& o) {
  const char* me = "visorlab orchestrator: ";
  std::chrono::milliseconds lease;
  try {
    lease = std::chrono::duration_cast<std::chrono::milliseconds>(topology::parse_duration(o.lease));
    if (lease < 100ms) throw std::invalid_argument("a lease is at least 100ms");
  } catch (const std::invalid_argument& e) {
    std::cerr << me << "--lease " << o.lease << ": " << e.what() << "\n";
    return kBadInput;
  }
  net::HostPort listen;
  try {
    listen = api::parse_host_port(o.listen);
  } catch (const api::ServerError& e) {
    std::cerr << me << "--listen: " << e.what() << "\n";
    return kBadInput;
  }
  const std::string agent_bind = o.agent_bind.empty() ? agent_bind_for(listen) : o.agent_bind;
  if (!net::is_loopback(listen.host))
    std::cerr << me << "warning: serving the API on " << listen.text()
              << ", not loopback: anyone who reaches it can drive the cluster\n";
  if (!net::is_loopback(agent_bind))
    std::cerr << me << "warning: agents register on " << agent_bind << ", not loopback\n";

  // The run directory: disks and logs of the applied topology.
  fs::path run_dir = o.run_dir;
  bool own_run_dir = false;
  std::error_code ec;
  if (run_dir.empty()) {
    run_dir = fs::temp_directory_path(ec) / ("visorlab-orchestrator-" + std::to_string(::getpid()));
    own_run_dir = true;
  }
  fs::create_directories(run_dir, ec);
  if (ec) {
    std::cerr << me << "--run-dir " << run_dir.string() << ": " << ec.message() << "\n";
    return kBadInput;
  }

  // Every thread started from here on (CAF's, gRPC's) inherits the blocked
  // signals; this thread alone waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int code = [&]() -> int {
    int result = kPass;
    actors::Config cfg;
    caf::actor_system sys{cfg};
    std::optional<orch::Cluster> cluster;
    if (o.metrics != "none" && !o.metrics.empty()) {
      try {
        metrics::parse_listen_address(o.metrics);
      } catch (const std::invalid_argument& e) {
        std::cerr << me << "--metrics: " << e.what() << "\n";
        return kBadInput;
      }
    }
    try {
      orch::ClusterOptions options;
      options.bind = agent_bind;
      options.port = o.agent_port;
      options.run_dir = run_dir.string();
      options.lease = lease;
      options.state_dir = o.state_dir;
      if (o.metrics != "none") options.metrics_listen = o.metrics;
      cluster.emplace(sys, options);
    } catch (const orch::ClusterError& e) {
      // --metrics is checked above: what is left is a state it cannot read.
      const bool bad = e.code() == orch::ClusterError::Code::invalid_argument;
      std::cerr << me << (bad ? "--state-dir " + o.state_dir + ": " : "") << e.what() << "\n";
      return bad ? kBadInput : kInfrastructure;
    } catch (const std::exception& e) {
      std::cerr << me << e.what() << "\n";
      return kInfrastructure;
    }
    api::OrchestratorService service(*cluster);
    std::unique_ptr<api::Server> server;
    try {
      server = std::make_unique<api::Server>(service, o.listen);
    } catch (const api::ServerError& e) {
      std::cerr << me << e.what() << "\n";
      return e.bad_address() ? kBadInput : kInfrastructure;
    }
    // One line a script (or a test) can read the ports from.
    std::cout << "visorlab orchestrator listening on " << server->address().text() << " agents on "
              << net::HostPort{agent_bind, cluster->agent_port()}.text() << " run-dir " << run_dir.string();
    if (cluster->metrics_port() != 0)
      std::cout << " metrics on "
                << net::HostPort{metrics::parse_listen_address(o.metrics).host, cluster->metrics_port()}.text();
    std::cout << std::endl;

    int received = 0;
    while (received <= 0) received = sigwaitinfo(&stop_signals, nullptr);  // EINTR: wait again
    std::cerr << me << "stopping (" << (received == SIGINT ? "SIGINT" : "SIGTERM") << ")\n";

    // A stop must end: if the cluster or CAF hang, give up after kStopLimit.
    std::thread([] {
      std::this_thread::sleep_for(kStopLimit);
      std::cerr << "visorlab orchestrator: did not stop within " << kStopLimit.count() << "s; exiting\n";
      std::_Exit(kInfrastructure);
    }).detach();

    server->shutdown(2s);
    try {
      // With a state dir the cluster stays up for the next orchestrator
      // on it (~Cluster says so); `visorlab down` tears it down.
      if (o.state_dir.empty()) cluster->teardown();
    } catch (const std::exception& e) {
      std::cerr << me << "teardown: " << e.what() << "\n";
      result = kInfrastructure;
    }
    server.reset();
    cluster.reset();
    return result;
  }();  // the actor system has stopped here
  if (own_run_dir) fs::remove_all(run_dir, ec);
  return code;
}

}  // namespace

void add_orchestrator_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<DaemonOptions>();
  auto* cmd = app.add_subcommand("orchestrator",
                                 "Run the orchestrator daemon: agents register with it, the CLI drives it over gRPC");
  cmd->add_option("--listen", o->listen,
                  "gRPC address, HOST:PORT (port 0: any free port). Loopback unless you name another address")
      ->capture_default_str();
  cmd->add_option("--agent-port", o->agent_port, "Port agents register on (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--agent-bind", o->agent_bind, "Address agents register on (default: the --listen host)");
  cmd->add_option("--run-dir", o->run_dir,
                  "Directory for the disks and logs of the applied topology (default: a fresh temporary one)");
  cmd->add_option("--metrics", o->metrics,
                  "Serve the orchestrator's /metrics and /healthz on HOST:PORT (port 0: any free port, printed "
                  "at start; none: not served). Loopback unless you name another address")
      ->capture_default_str();
  cmd->add_option("--state-dir", o->state_dir,
                  "Keep what is applied here, and re-adopt the running cluster it describes when started on it "
                  "again (docs/orchestrator-state.md)");
  cmd->add_option("--lease", o->lease,
                  "Lease on every fault it puts in effect (a pause, a drill's workload): a host that hears "
                  "nothing from it this long reverts them itself, e.g. 2s")
      ->capture_default_str();
  cmd->callback([&action, o] { action = [o] { return run_orchestrator(*o); }; });
}

}  // namespace visorlab::cli
