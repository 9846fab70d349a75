// `visorlab drill [FILE]`: the main job. Without --orchestrator it starts a
// local cluster (one agent process per host of the topology), runs the drill
// — workload, fault schedule, checker — tears the cluster down and judges.
// With --orchestrator (or $VISORLAB_ORCHESTRATOR) the orchestrator there runs
// it (remote_drill.hpp); the outputs and exit codes are the same. Without
// FILE it runs the built-in default topology.
#include <unistd.h>

#include <caf/actor_system.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iostream>

#include "actors/runtime/config.hpp"
#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/remote_drill.hpp"
#include "cli/output_files.hpp"
#include "cli/stop_signals.hpp"
#include "drill/nemesis.hpp"
#include "drill/runner.hpp"
#include "orchestrator/local_cluster.hpp"
#include "topology/default_topology.hpp"
#include "topology/error.hpp"
#include "topology/load.hpp"

namespace visorlab::cli {
namespace {

namespace fs = std::filesystem;

struct DrillOptions {
  std::string file;
  std::string report;
  std::string plot;
  std::string run_dir;
  bool keep = false;
  bool check_only = false;
  std::string orchestrator;
};

bool remote(const DrillOptions& o) {
  const char* env = std::getenv(kOrchestratorEnv);
  return !o.orchestrator.empty() || (env && *env);
}

int run_drill_command(const DrillOptions& o) {
  topology::Topology topo;
  try {
    topo = o.file.empty() ? topology::default_topology() : topology::load_file(o.file);
    check_writable(o.report, "--report");
    check_writable(o.plot, "--plot");
  } catch (const topology::Error& e) {
    std::cerr << "visorlab drill: " << e.what() << "\n";
    return kBadInput;
  } catch (const std::invalid_argument& e) {
    std::cerr << "visorlab drill: " << e.what() << "\n";
    return kBadInput;
  }
  if (o.check_only) {
    std::size_t devices = 0;
    for (const auto& g : topo.guests) devices += g.devices.size();
    std::cout << (o.file.empty() ? std::string("the default topology") : o.file) << ": ok (" << topo.hosts.size()
              << " hosts, " << topo.guests.size() << " guests, " << devices << " devices, " << topo.drill.steps.size()
              << " steps over " << std::chrono::duration<double>(topo.drill.duration).count() << " s)\n";
    return kPass;
  }
  const bool tty = isatty(STDOUT_FILENO);
  const auto print_progress = [tty](const drill::DrillProgress& p) {
    if (tty)
      std::cout << "\r" << p.line() << std::flush;
    else
      std::cout << p.line() << "\n" << std::flush;
  };

  if (remote(o)) {
    if (!o.run_dir.empty() || o.keep) {
      std::cerr << "visorlab drill: --run-dir and --keep-run-dir are for a local drill; with --orchestrator the "
                   "orchestrator's own run dir holds the disks and logs\n";
      return kBadInput;
    }
    std::cout << "visorlab drill " << topo.name << ": " << topo.hosts.size() << " hosts, " << topo.guests.size()
              << " guests, " << topo.drill.steps.size() << " steps over "
              << std::chrono::duration<double>(topo.drill.duration).count() << " s (on the orchestrator)\n"
              << std::flush;
    RemoteOutcome outcome;
    const int code = run_remote_drill(o.orchestrator, o.file, topo, print_progress, outcome);
    if (tty) std::cout << "\n";
    if (code != kPass) return code;
    std::cout << outcome.summary << std::flush;
    if (!o.report.empty()) write_file(o.report, outcome.report_json + "\n");
    if (!o.plot.empty()) write_file(o.plot, outcome.svg);
    return outcome.passed ? kPass : kInvariantFailed;
  }

  const bool own_run_dir = o.run_dir.empty();
  const fs::path run_dir =
      own_run_dir ? fs::temp_directory_path() / ("visorlab-drill-" + std::to_string(getpid())) : fs::path(o.run_dir);
  std::cout << "visorlab drill " << topo.name << ": " << topo.hosts.size() << " hosts, " << topo.guests.size()
            << " guests, " << topo.drill.steps.size() << " steps over "
            << std::chrono::duration<double>(topo.drill.duration).count() << " s (run dir " << run_dir.string()
            << ")\n"
            << std::flush;
  const auto remove_run_dir = [&] {
    if (o.keep || !own_run_dir) return;
    std::error_code ec;
    fs::remove_all(run_dir, ec);
  };
  // However this ends — a failure thrown from the cluster included — a
  // temporary run dir does not outlive the drill.
  struct AtExit {
    std::function<void()> run;
    ~AtExit() { run(); }
  } const cleanup{remove_run_dir};

  // Before the actor system: its threads inherit the blocked signals.
  std::atomic<bool> cancel{false};
  StopSignals signals([&](int) { cancel = true; },
                      [&] {
                        orchestrator::LocalCluster::force_stop();
                        remove_run_dir();
                      });
  drill::DrillOutcome outcome;
  {
    actors::Config cfg;
    cfg.set("logger.verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    orchestrator::LocalCluster local(sys, topo, {fs::read_symlink("/proc/self/exe").string(), run_dir});
    if (!cancel) {
      std::cout << "starting the local cluster and applying the topology…\n" << std::flush;
      local.cluster().apply(topo);
    }
    // The history spools into the run dir as the drill runs; kept as JSON lines with the run dir.
    drill::DrillFiles files{run_dir / "history", o.keep || !own_run_dir ? run_dir / "history.jsonl" : fs::path()};
    if (!cancel)
      outcome = drill::run_drill(local.cluster(), topo, print_progress, [&] { return cancel.load(); }, files);
    if (tty) std::cout << "\n";
    std::cout << "tearing the local cluster down…\n" << std::flush;
  }
  if (signals.stopping()) {
    remove_run_dir();
    std::cerr << "visorlab drill: interrupted (" << StopSignals::name(signals.signal())
              << "): every process stopped, shared memory removed"
              << (o.keep || !own_run_dir ? "; run dir kept: " + run_dir.string() : std::string(", run dir removed"))
              << "\n";
    return kInterrupted;
  }
  std::cout << outcome.summary << std::flush;
  if (!o.report.empty()) write_file(o.report, outcome.report.dump(2) + "\n");
  if (!o.plot.empty()) write_file(o.plot, outcome.svg);
  if (o.keep || !own_run_dir) std::cout << "history: " << (run_dir / "history.jsonl").string() << "\n";
  return outcome.passed ? kPass : kInvariantFailed;
}

}  // namespace

void add_drill_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<DrillOptions>();
  auto* drill = app.add_subcommand("drill", "Run a recovery drill (the built-in default topology without FILE)");
  drill->add_option("FILE", o->file, "Topology and drill file (YAML, version 1)");
  drill->add_option("--report", o->report, "Write the JSON report here");
  drill->add_option("--plot", o->plot, "Write an SVG timeline here");
  drill->add_option("--run-dir", o->run_dir, "Keep disks and logs here (default: a temporary directory, removed)");
  drill->add_flag("--keep-run-dir", o->keep, "Do not remove the temporary run directory");
  drill->add_flag("--check", o->check_only,
                  "Only validate FILE (exit 0, or 2 with FILE:LINE:COLUMN: field: why); start nothing");
  add_orchestrator_option(*drill, o->orchestrator)
      ->description(std::string("Run the drill on the orchestrator at HOST:PORT (default: $") + kOrchestratorEnv +
                    "; neither: a local cluster). kill_agent steps need one started by `visorlab up`");
  drill->callback([&action, o] { action = [o] { return run_drill_command(*o); }; });
}

}  // namespace visorlab::cli
