// cluster_bench — the cluster targets of DESIGN.md, on a local cluster (the
// orchestrator in this process, one agent process per host, real partition
// hosts and service partition processes):
//
//   cluster_devices_up   250 guests × 4 devices (vhba, vnic, keyboard, mouse)
//                        applied — channels made, service partitions attached,
//                        drivers probed — in ms; target 2 s (ratio target/value)
//   cluster_recover_p99  planned recover of the IO partition serving 16 guests,
//                        request → every device resumed, p99 of 20, in ms;
//                        target 50 ms
//   cluster_crash_p99    kill -9 of that IO partition → every device resumed,
//                        p99 of 20, in ms; target 100 ms
//   cluster_host_rss     agent + partition host resident memory with the
//                        1,000 devices up, in MiB; against a 1 GiB budget
//
// A fixed target has no second measurement: its "baseline" is the target
// itself, so ratio ≥ 1 means the target holds. --guests N shrinks the first
// topology (bench_contract_tests' smoke run).
#include <caf/actor_system.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "actors/runtime/config.hpp"
#include "bench/bench_harness.hpp"
#include "orchestrator/local_cluster.hpp"
#include "topology/load.hpp"

namespace fs = std::filesystem;
namespace orch = visorlab::orchestrator;
using namespace visorlab::bench;

namespace {

constexpr int kRecoveries = 20;  // per round: p99 of 20 is their worst

std::string topology(const std::string& name, int guests, bool all_kinds) {
  std::ostringstream y;
  y << "version: 1\nname: " << name << R"(
hosts: [{name: a}]
command: {host: a}
services:
  - name: io0
    kind: io
    host: a
    switches: [{name: sw0}]
  - {name: con0, kind: console, host: a}
guests:
  - name: )" << name << R"(g
    count: )" << guests << R"(
    host: a
    devices:
      - {kind: vhba, service: io0, disk_size: 1MiB}
)";
  if (all_kinds)
    y << "      - {kind: vnic, service: io0, switch: sw0}\n"
         "      - {kind: keyboard, service: con0}\n"
         "      - {kind: mouse, service: con0}\n";
  return y.str();
}

std::int64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return 0;
}

pid_t read_pid(const fs::path& file) {
  std::ifstream in(file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

struct Scratch {
  Scratch() : dir(fs::temp_directory_path() / ("visorlab-cluster-bench-" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
};

}  // namespace

constexpr const char* kUsage =
    "cluster_bench [--json] [--rounds N] [--only NAME] [--guests N]\n"
    "Cluster targets on a local cluster: devices up (N guests x 4 devices, default 250),\n"
    "recover and crash of the IO partition serving 16 guests (p99 of 20), host RSS.\n";

int main(int argc, char** argv) {
  int guests = 250;
  Options opt;
  try {
    opt = parse_options(argc, argv, kUsage,
                        {{"--guests", true, [&](const char* v) {
                            const auto n = parse_count("--guests", v);
                            if (n > 1000) throw std::invalid_argument("--guests at most 1000");
                            guests = static_cast<int>(n);
                          }}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cluster_bench: %s\n", e.what());
    return 64;
  }
  spdlog::set_default_logger(spdlog::stderr_logger_mt("cluster_bench"));  // stdout: the JSON lines only
  spdlog::set_level(spdlog::level::warn);
  Scratch scratch;
  const std::string bin = fs::read_symlink("/proc/self/exe").parent_path() / "visorlab";

  visorlab::actors::Config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};

  // One cluster for the device count, one for the 16 guests' recoveries.
  const auto many = visorlab::topology::load_string(topology("cb", guests, true), "cluster_bench");
  const auto sixteen = visorlab::topology::load_string(topology("cr", 16, false), "cluster_bench");
  orch::LocalCluster big(sys, many, {bin, scratch.dir / "many"});
  double last_rss_mib = 0;
  auto devices_up = [&] {
    const auto start = Clock::now();
    big.cluster().apply(many);
    const double s = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    const pid_t host = read_pid(scratch.dir / "many" / "hosts" / "a" / "partitions.pid");
    last_rss_mib = static_cast<double>(rss_kib(host) + rss_kib(big.agent_pid("a"))) / 1024.0;
    big.cluster().teardown();
    return s;
  };

  std::unique_ptr<orch::LocalCluster> small;
  auto recoveries = [&](bool crash) {
    if (!small) {
      small = std::make_unique<orch::LocalCluster>(sys, sixteen, orch::LocalClusterOptions{bin, scratch.dir / "sixteen"});
      small->cluster().apply(sixteen);
    }
    std::vector<double> ms;
    for (int i = 0; i < kRecoveries; ++i) {
      const auto t = crash ? small->cluster().crash_service("io0", std::chrono::milliseconds(0))
                           : small->cluster().recover_service("io0");
      if (!t.ok) fail(std::string(crash ? "crash" : "recover") + " of io0: " + t.error);
      ms.push_back(static_cast<double>(t.resumed_ns - t.start_ns) / 1e6);
    }
    return nearest_rank(ms, 99);
  };

  const std::vector<Bench> benches = {
      {{"cluster_devices_up", "ms", "target_2s", false, 1.0}, [] { return 2000.0; }, devices_up},
      {{"cluster_recover_p99", "ms", "target_50ms", false, 1.0}, [] { return 50.0; }, [&] { return recoveries(false); }},
      {{"cluster_crash_p99", "ms", "target_100ms", false, 1.0}, [] { return 100.0; }, [&] { return recoveries(true); }},
      // Measured by cluster_devices_up's rounds (the devices must be up).
      {{"cluster_host_rss", "MiB", "budget_1GiB", false, 1.0}, [] { return 1024.0; },
       [&] { return last_rss_mib > 0 ? last_rss_mib : (devices_up(), last_rss_mib); }},
  };
  return run_benches("cluster_bench", opt, benches);
}
