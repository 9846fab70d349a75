#include "cli/local_up.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "actors/runtime/config.hpp"
#include "cli/exit_codes.hpp"
#include "metrics/exposer.hpp"
#include "net/host_port.hpp"
#include "api/grpc_service.hpp"
#include "orchestrator/local_cluster.hpp"
#include "api/server.hpp"
#include "topology/error.hpp"
#include "topology/load.hpp"

namespace visorlab::cli {
namespace {

namespace fs = std::filesystem;
namespace orch = visorlab::orchestrator;
using namespace std::chrono_literals;

constexpr const char* kMe = "visorlab up: ";
constexpr auto kStopLimit = 30s;    // a stop that takes longer is abandoned: agents SIGTERMed, exit 3
constexpr auto kWatchPoll = 200ms;  // how often the foreground loop looks for a signal or a `down`

// Runs the cluster until a stop signal or a `down`; returns the exit code.
int serve(const LocalUpOptions& o, const topology::Topology& topo, const fs::path& run_dir,
          const sigset_t& stop_signals) {
  actors::Config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  std::optional<orch::LocalCluster> local;
  try {
    local.emplace(sys, topo,
                  orch::LocalClusterOptions{fs::read_symlink("/proc/self/exe").string(), run_dir,
                                            o.metrics == "none" ? "" : o.metrics});
  } catch (const orch::ClusterError& e) {
    const bool bad = e.code() == orch::ClusterError::Code::invalid_argument;  // a malformed --metrics
    std::cerr << kMe << (bad ? "--metrics: " : "") << e.what() << "\n";
    return bad ? kBadInput : kInfrastructure;
  }
  // This orchestrator owns its agents (the local cluster): kill_agent steps work.
  api::OrchestratorService service(local->cluster());
  std::unique_ptr<api::Server> server;
  try {
    server = std::make_unique<api::Server>(service, o.listen);
  } catch (const api::ServerError& e) {
    std::cerr << kMe << "--listen: " << e.what() << "\n";
    return e.bad_address() ? kBadInput : kInfrastructure;
  }

  std::cout << "visorlab up " << topo.name << ": starting " << topo.hosts.size()
            << " agent(s) and applying " << o.file << " (run dir " << run_dir.string() << ")" << std::endl;
  try {
    local->cluster().apply(topo);
  } catch (const orch::ClusterError& e) {
    std::cerr << kMe << "cannot apply " << o.file << ": " << e.what() << "\n";
    server->shutdown(0ms);
    return exit_code(e.code());
  }
  const std::string address = server->address().text();
  // One line a script (or a test) can read the address from, then the hint.
  std::cout << "visorlab up " << topo.name << ": orchestrator listening on " << address << " agents on "
            << net::HostPort{"127.0.0.1", local->cluster().agent_port()}.text();
  if (const auto port = local->cluster().metrics_port(); port != 0)
    std::cout << " metrics on " << net::HostPort{metrics::parse_listen_address(o.metrics).host, port}.text();
  std::cout << " run-dir " << run_dir.string() << "\n"
            << "  export VISORLAB_ORCHESTRATOR=" << address << "\n"
            << "  then: visorlab devices | pause DEVICE | recover SERVICE | events -f | drill " << o.file << "\n"
            << "  Ctrl-C here, or `visorlab down`, tears it all down" << std::endl;

  const char* why = nullptr;
  while (!why) {
    const timespec poll{0, std::chrono::nanoseconds(kWatchPoll).count()};
    const int received = sigtimedwait(&stop_signals, nullptr, &poll);
    if (received == SIGINT) why = "SIGINT";
    else if (received == SIGTERM) why = "SIGTERM";
    else if (received == SIGHUP) why = "SIGHUP";
    else if (!local->cluster().applied()) why = "`visorlab down`";  // torn down through the API
  }
  std::cerr << kMe << "stopping (" << why << ")\n";

  // A stop must end: a second Ctrl-C forces it at once; if the cluster or a
  // running drill hang, the agents are stopped after kStopLimit anyway.
  std::thread([stop_signals, own_run_dir = o.run_dir.empty() ? run_dir : fs::path()] {
    const timespec limit{std::chrono::duration_cast<std::chrono::seconds>(kStopLimit).count(), 0};
    if (sigtimedwait(&stop_signals, nullptr, &limit) > 0) {
      std::cerr << kMe << "forcing the stop\n";
      orch::LocalCluster::force_stop();
      std::error_code ec;
      if (!own_run_dir.empty()) fs::remove_all(own_run_dir, ec);
      _exit(kInterrupted);
    }
    std::cerr << "visorlab up: did not stop within " << kStopLimit.count() << "s; stopping the agents and exiting\n";
    orch::LocalCluster::stop_agents_and_exit(kInfrastructure);
  }).detach();

  server->shutdown(2s);
  int result = kPass;
  try {
    local->cluster().teardown();
  } catch (const std::exception& e) {
    std::cerr << kMe << "teardown: " << e.what() << "\n";
    result = kInfrastructure;
  }
  server.reset();
  local.reset();  // stops the agents; they stop their partitions
  return result;
}

}  // namespace

int run_local_up(const LocalUpOptions& in) {
  LocalUpOptions o = in;
  if (o.listen.empty()) o.listen = api::kDefaultListen;
  if (o.metrics.empty()) o.metrics = "127.0.0.1:0";

  // Everything that can be bad input is checked before anything starts.
  topology::Topology topo;
  try {
    topo = topology::load_file(o.file);
  } catch (const topology::Error& e) {
    std::cerr << kMe << e.what() << "\n";
    return kBadInput;
  }
  try {
    const auto listen = api::parse_host_port(o.listen);
    if (!net::is_loopback(listen.host))
      std::cerr << kMe << "warning: serving the API on " << listen.text()
                << ", not loopback: anyone who reaches it can drive the cluster\n";
  } catch (const api::ServerError& e) {
    std::cerr << kMe << "--listen: " << e.what() << "\n";
    return kBadInput;
  }
  if (o.metrics != "none") {
    try {
      metrics::parse_listen_address(o.metrics);
    } catch (const std::invalid_argument& e) {
      std::cerr << kMe << "--metrics: " << e.what() << "\n";
      return kBadInput;
    }
  }
  std::error_code ec;
  const bool own_run_dir = o.run_dir.empty();
  const fs::path run_dir =
      own_run_dir ? fs::temp_directory_path(ec) / ("visorlab-up-" + std::to_string(::getpid())) : fs::path(o.run_dir);
  fs::create_directories(run_dir, ec);
  if (ec) {
    std::cerr << kMe << "--run-dir " << run_dir.string() << ": " << ec.message() << "\n";
    return kBadInput;
  }

  // Every thread started from here on (CAF's, gRPC's) inherits the blocked
  // signals; the foreground loop alone takes them. Agents unblock them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);  // the terminal went away: tear down rather than orphan the agents
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const int code = serve(o, topo, run_dir, stop_signals);  // the actor system has stopped here
  if (own_run_dir) fs::remove_all(run_dir, ec);
  if (code == kPass) std::cout << "visorlab up " << topo.name << ": stopped" << std::endl;
  return code;
}

}  // namespace visorlab::cli
