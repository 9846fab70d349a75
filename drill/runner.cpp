#include "drill/runner.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <optional>
#include <thread>

#include "drill/checker.hpp"
#include "drill/history_file.hpp"
#include "drill/history_spool.hpp"
#include "drill/nemesis.hpp"
#include "drill/plot.hpp"
#include "drill/report.hpp"
#include "drill/workloads.hpp"
#include "orchestrator/cluster_state.hpp"

namespace visorlab::drill {

using namespace std::chrono;
using orchestrator::ClusterError;

std::string DrillProgress::line() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "[%6.1fs] step: %-24s IOPS: %8.0f  paused: %u", elapsed_s,
                step.empty() ? "-" : step.c_str(), iops, paused);
  return buf;
}

namespace {

// Every vnic's peers: the other vnics on its switch.
std::map<std::string, std::vector<std::string>> vnic_peers(const topology::Topology& t) {
  std::map<std::string, std::vector<std::string>> by_switch;
  for (const auto& g : t.guests)
    for (const auto& d : g.devices)
      if (d.kind == topology::DeviceKind::vnic) by_switch[d.service + "/" + d.switch_name].push_back(d.name);
  std::map<std::string, std::vector<std::string>> peers;  // guest → peers of its vnics
  for (const auto& g : t.guests)
    for (const auto& d : g.devices)
      if (d.kind == topology::DeviceKind::vnic)
        for (const auto& other : by_switch[d.service + "/" + d.switch_name])
          if (other.substr(0, other.find('/')) != g.name) peers[g.name].push_back(other);
  return peers;
}

// A spool dir of this process's own when the caller names none.
std::filesystem::path temporary_spool() {
  static std::atomic<unsigned> count{0};
  return std::filesystem::temp_directory_path() /
         ("visorlab-history-" + std::to_string(::getpid()) + "-" + std::to_string(count++));
}

// Moves the workloads' history to the spool as the drill runs; a guest busy
// in a recovery is caught up with at the next drain.
void drain_quietly(Workloads& workloads, HistorySpool& spool) {
  try {
    workloads.drain(spool, false);
  } catch (const std::exception& e) {
    spdlog::warn("drill: draining the history: {} (tried again in a second)", e.what());
  }
}

// While a drill runs, its name is in the cluster's state dir (if it keeps
// one): an orchestrator that re-adopts the cluster after this one died
// reports the drill aborted. Gone when the drill ends, however it ends.
class DrillMarker {
 public:
  DrillMarker(const std::string& state_dir, const std::string& name) {
    if (state_dir.empty()) return;
    file_ = orchestrator::drill_marker_file(state_dir);
    std::ofstream(file_) << name << "\n";
  }
  ~DrillMarker() {
    std::error_code ec;
    if (!file_.empty()) std::filesystem::remove(file_, ec);
  }
  DrillMarker(const DrillMarker&) = delete;
  DrillMarker& operator=(const DrillMarker&) = delete;

 private:
  std::filesystem::path file_;
};

}  // namespace

DrillOutcome run_drill(orchestrator::Cluster& cluster, const topology::Topology& t,
                       const std::function<void(const DrillProgress&)>& progress,
                       const std::function<bool()>& cancelled, const DrillFiles& files) {
  // Refused before anything runs, not halfway through the drill.
  if (!cluster.owns_agents())
    for (const auto& s : t.drill.steps)
      if (s.kind == topology::StepKind::kill_agent)
        throw ClusterError(Errc::failed_precondition,
                           "drill.steps[" + std::to_string(s.index) + "] (kill_agent " + s.target() +
                               "): this orchestrator does not own its agents, so it cannot kill and restart one; run "
                               "the drill against a cluster started with `visorlab up FILE`, or locally with "
                               "`visorlab drill FILE`");
  if (!cluster.applied()) cluster.apply(t);
  const DrillMarker marker(cluster.state_dir(), t.name);
  HistorySpool spool(files.spool.empty() ? temporary_spool() : files.spool);
  DrillClock clock;
  Workloads workloads(cluster);
  const double ops_before = workloads.completed();  // a repeated drill on one cluster counts on
  workloads.start(workload_spec(t), clock.start_ns(), vnic_peers(t));

  Nemesis nemesis(cluster, workloads, t, clock);
  std::atomic<bool> stop{false};
  std::thread faults([&] { nemesis.run(stop); });

  const auto end = clock.start + t.drill.duration;
  double last_ops = 0;
  auto last = steady_clock::now();
  auto next_drain = last + seconds(1);
  bool was_cancelled = false;
  while (steady_clock::now() < end && !(was_cancelled = cancelled && cancelled())) {
    std::this_thread::sleep_for(std::min(milliseconds(500), duration_cast<milliseconds>(end - steady_clock::now()) + milliseconds(1)));
    const double ops = workloads.completed();
    const auto now = steady_clock::now();
    DrillProgress p;
    p.elapsed_s = duration<double>(now - clock.start).count();
    p.step = nemesis.current_step();
    p.iops = (ops - last_ops) / std::max(1e-3, duration<double>(now - last).count());
    p.paused = nemesis.paused_devices();
    last_ops = ops;
    last = now;
    if (progress) progress(p);
    if (now >= next_drain) {
      drain_quietly(workloads, spool);
      next_drain = now + seconds(1);
    }
  }
  if (was_cancelled) {
    spdlog::warn("drill {}: cancelled at {:.1f} s; a fault under way is reverted now", t.name,
                 clock.now() / 1e9);
    stop = true;
  }
  faults.join();  // the last step reverts its fault before the workload stops
  const Nanos drill_end = clock.now();  // what follows is bookkeeping, not the drill
  const double ops_in_drill = workloads.completed() - ops_before;

  spdlog::info("drill {}: stopping the workload; reading back every block written", t.name);
  workloads.stop();
  // The final read takes as long as the disks are written: wait while it
  // moves, give up when nothing completes for 30 s (the checker then names
  // what was not read back).
  double moved = workloads.completed();
  auto last_move = steady_clock::now();
  while (!workloads.idle() && steady_clock::now() - last_move < seconds(30)) {
    std::this_thread::sleep_for(milliseconds(5));
    if (const double now_done = workloads.completed(); now_done != moved) {
      moved = now_done;
      last_move = steady_clock::now();
    }
    if (steady_clock::now() >= next_drain) {
      drain_quietly(workloads, spool);
      next_drain = steady_clock::now() + seconds(1);
    }
  }

  // Frames sent just before the stop may still be on their way (across
  // hosts, through a TCP link): wait until receipts stop coming (100 ms
  // without one, at most 2 s), or they would read as lost.
  {
    auto received = workloads.stats().frames_received;
    auto last_receipt = steady_clock::now();
    const auto give_up = last_receipt + seconds(2);
    while (steady_clock::now() - last_receipt < milliseconds(100) && steady_clock::now() < give_up) {
      std::this_thread::sleep_for(milliseconds(20));
      if (const auto now_received = workloads.stats().frames_received; now_received != received) {
        received = now_received;
        last_receipt = steady_clock::now();
      }
    }
  }

  spdlog::info("drill {}: collecting the history", t.name);
  workloads.drain(spool, true);
  spool.add("nemesis", nemesis.history());
  History summary = spool.summary();
  summary.name = t.name;
  summary.seed = t.drill.seed;
  summary.end = drill_end;

  spdlog::info("drill {}: checking {} events", t.name, spool.events());
  CheckOptions options;
  options.final_read = t.workload.disk.verify;
  Checker checker(summary, t.expect, options);
  std::ofstream history_out;
  std::optional<HistoryWriter> writer;
  if (!files.history.empty()) {
    history_out.open(files.history, std::ios::binary | std::ios::trunc);
    if (!history_out) throw ClusterError(Errc::internal, "cannot write the drill history " + files.history.string());
    writer.emplace(history_out, summary);
  }
  try {
    spool.replay([&](const Event& e, std::span<const BlockSeen> seen) {
      checker.add(e, seen);
      if (writer) writer->event(e, seen);
    });
  } catch (const std::runtime_error& e) {
    throw ClusterError(Errc::internal, std::string("reading the drill's history back: ") + e.what());
  }
  if (writer) {
    writer->finish();
    history_out.flush();
    if (!history_out) throw ClusterError(Errc::internal, "writing the drill history " + files.history.string() + " failed");
  }
  const CheckResult result = checker.finish();

  DrillOutcome out;
  out.passed = result.pass;
  out.report = report_json(summary, result);
  out.summary = report_text(summary, result);
  out.svg = render_svg(summary, result);
  out.events = spool.events();
  out.disk_ops = ops_in_drill;
  out.disk_seconds = static_cast<double>(drill_end) / 1e9;
  if (was_cancelled) {
    out.cancelled = true;
    out.passed = false;
    out.summary = "drill cancelled at " + std::to_string(static_cast<int>(drill_end / 1000000000)) +
                  " s: later steps did not run\n" + out.summary;
  }
  return out;
}

}  // namespace visorlab::drill
