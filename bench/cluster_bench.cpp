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
//   cluster_idle_cpu     the built-in default topology (2 hosts, 4 guests, 16
//                        devices) up and idle: the busiest host's processes
//                        (agent, partition host, service partitions), % of a
//                        core over 5 s; target 1 %
//   cluster_idle_cpu_fleet  examples/fleet.yaml (16 hosts, 48 guests, 144
//                        devices, 7 service partitions) up and idle: every
//                        host's processes summed, % of a core; target 10 %
//   cluster_readopt      `visorlab orchestrator --state-dir` and an agent as
//                        processes, the 250 guests × 4 devices applied, the
//                        orchestrator killed (kill -9) and started again on
//                        the dir: start → cluster re-adopted, in ms; target 2 s
//   cluster_lease_revert_p99  `visorlab orchestrator --lease 1s` and an agent
//                        as processes, 4 guests' disks paused, the
//                        orchestrator killed (kill -9) → the host shows no
//                        device paused (its /metrics, sampled every 100 ms),
//                        p99 of 20 runs, in ms; target 2 × the lease
//
// A fixed target has no second measurement: its "baseline" is the target
// itself, so ratio ≥ 1 means the target holds. --guests N shrinks the first
// topology (bench_contract_tests' smoke run).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

#include "actors/runtime/config.hpp"
#include "bench/bench_harness.hpp"
#include "bench/http_get.hpp"
#include "bench/subprocess.hpp"
#include "channel/tcp/tcp_endpoint.hpp"
#include "orchestrator/local_cluster.hpp"
#include "topology/default_topology.hpp"
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

// CPU time (user + system, clock ticks) of `root` and every process below
// it, per process.
std::map<pid_t, std::uint64_t> tree_cpu_ticks(pid_t root) {
  struct Proc {
    pid_t parent;
    std::uint64_t ticks;
  };
  std::map<pid_t, Proc> procs;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "stat");
    std::string line;
    if (!std::getline(in, line)) continue;  // gone meanwhile
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    std::vector<std::string> f;
    while (rest >> field) f.push_back(field);
    if (f.size() < 13) continue;
    // After ")": state ppid … utime (12th) stime (13th)
    procs[std::stoi(name)] = {static_cast<pid_t>(std::stoi(f[1])), std::stoull(f[11]) + std::stoull(f[12])};
  }
  std::map<pid_t, std::uint64_t> tree;
  for (const auto& [pid, p] : procs) {
    for (pid_t q = pid; q > 1;) {
      if (q == root) {
        tree[pid] = p.ticks;
        break;
      }
      const auto it = procs.find(q);
      if (it == procs.end()) break;
      q = it->second.parent;
    }
  }
  return tree;
}

// % of a core each host's processes used over `window`, the cluster up and
// idle: per process the ticks it gained, for the processes there at both ends
// of the window (one started meanwhile — a warm spare — is not idling).
std::vector<double> idle_cpu(const orch::LocalCluster& cluster, const std::vector<std::string>& hosts,
                             std::chrono::milliseconds window) {
  std::vector<std::map<pid_t, std::uint64_t>> before;
  for (const auto& h : hosts) before.push_back(tree_cpu_ticks(cluster.agent_pid(h)));
  const auto start = Clock::now();
  std::this_thread::sleep_for(window);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> percent;
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    std::uint64_t used = 0;
    for (const auto& [pid, ticks] : tree_cpu_ticks(cluster.agent_pid(hosts[i])))
      if (const auto was = before[i].find(pid); was != before[i].end() && ticks >= was->second)
        used += ticks - was->second;
    percent.push_back(100.0 * static_cast<double>(used) / static_cast<double>(::sysconf(_SC_CLK_TCK)) / seconds);
  }
  return percent;
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

constexpr std::chrono::milliseconds kLease{1000};

// The devices of host `a` in `state` on its partition host's /metrics;
// nullopt while it does not answer.
std::optional<double> host_devices(const fs::path& agent_dir, const std::string& state) {
  std::uint16_t port = 0;
  std::ifstream(agent_dir / "hosts" / "a" / "metrics.port") >> port;
  if (port == 0) return std::nullopt;
  const auto body = http_get(port, "/metrics");
  if (!body) return std::nullopt;
  const std::string series = "visorlab_devices{host=\"a\",state=\"" + state + "\"} ";
  const auto at = body->find(series);
  if (at == std::string::npos) return 0.0;
  try {
    return std::stod(body->substr(at + series.size()));
  } catch (const std::exception&) {
    return std::nullopt;  // a cut-off answer: ask again
  }
}

// `visorlab orchestrator` and one agent (host a) as processes, for the
// benches that kill the orchestrator. A failing bench stops the agent, which
// stops its partition host (that one leads its own session: no PDEATHSIG
// reaches it).
struct ProcessCluster {
  ProcessCluster(const std::string& bin, const fs::path& dir, const std::vector<std::string>& extra)
      : bin(bin), dir(dir) {
    fs::create_directories(dir);
    start_orchestrator(extra);
    agent = std::make_unique<Daemon>(std::vector<std::string>{bin, "agent", "--host", "a", "--orchestrator",
                                                              "127.0.0.1:" + agent_port, "--run-dir",
                                                              (dir / "agent").string()},
                                     (dir / "agent.log").string());
    on_fail = [pid = agent->pid()] {
      ::kill(pid, SIGTERM);
      for (int i = 0; i < 500 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i) ::usleep(10'000);
    };
  }
  ~ProcessCluster() {
    orchestrator.reset();
    if (agent) agent->signal(SIGTERM, true);
    on_fail = nullptr;
  }
  // Starts it (again) and waits for its announcement: the API's and agent
  // port; returns its log so far.
  std::string start_orchestrator(const std::vector<std::string>& extra) {
    const auto log = dir / ("orchestrator-" + std::to_string(starts++) + ".log");
    std::vector<std::string> argv{bin, "orchestrator", "--listen", "127.0.0.1:0", "--agent-port",
                                  agent_port.empty() ? "0" : agent_port, "--run-dir", (dir / "orchestrator").string(),
                                  "--metrics", "none"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    orchestrator = std::make_unique<Daemon>(argv, log.string());
    static const std::regex announce(R"(listening on (127\.0\.0\.1:\d+) agents on 127\.0\.0\.1:(\d+))");
    std::smatch m;
    std::string text;
    for (int i = 0; i < 3000 && !std::regex_search(text, m, announce); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::ifstream in(log);
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (m.empty()) fail("the orchestrator did not start: " + text);
    api = m[1];
    agent_port = m[2];
    return text;
  }
  void run(const std::vector<std::string>& args) {
    std::vector<std::string> argv{bin};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--orchestrator", api});
    const auto r = run_command(argv, std::chrono::seconds(120));
    if (r.exit_code != 0) fail("visorlab " + args.front() + ": " + r.err);
  }
  std::string bin;
  fs::path dir;
  int starts = 0;
  std::string api, agent_port;
  std::unique_ptr<Daemon> orchestrator, agent;
};

// One run of cluster_lease_revert_p99: kill → no device paused, in ms.
double lease_revert_once(const std::string& bin, const fs::path& dir) {
  ProcessCluster c(bin, dir, {"--lease", std::to_string(kLease.count()) + "ms"});
  const auto file = dir / "lease.yaml";
  const std::string name = "lb" + std::to_string(::getpid()) + dir.filename().string();
  std::ofstream(file) << topology(name, 4, false);
  c.run({"up", file.string()});
  for (int g = 0; g < 4; ++g) c.run({"pause", name + "g" + std::to_string(g) + "/vhba0"});
  // The guests' metrics show the pause within a sample period.
  for (int i = 0; host_devices(dir / "agent", "paused").value_or(0) != 4; ++i) {
    if (i == 500) fail("the 4 paused devices never showed as paused on the host's /metrics");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto killed = Clock::now();
  c.orchestrator->signal(SIGKILL);
  while (host_devices(dir / "agent", "paused").value_or(1) != 0) {
    if (Clock::now() - killed > 10 * kLease) fail("a device stayed paused 10 leases after the orchestrator died");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - killed).count();
}

// One run of cluster_readopt: `guests` guests × 4 devices applied by an
// orchestrator with a state dir, which is killed (kill -9) and started again
// on the dir: start → re-adopted (its announcement comes after), in ms.
double readopt_once(const std::string& bin, const fs::path& dir, int guests) {
  const std::vector<std::string> state{"--state-dir", (dir / "state").string()};
  ProcessCluster c(bin, dir, state);
  const auto file = dir / "readopt.yaml";
  std::ofstream(file) << topology("ra" + std::to_string(::getpid()) + dir.filename().string(), guests, true);
  c.run({"up", file.string()});
  c.orchestrator->signal(SIGKILL);
  const auto start = Clock::now();
  const std::string log = c.start_orchestrator(state);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  const std::string readopted = ": " + std::to_string(4 * guests) + " devices";
  if (log.find("re-adopted") == std::string::npos || log.find(readopted) == std::string::npos)
    fail("the orchestrator did not re-adopt the cluster's " + std::to_string(4 * guests) + " devices: " + log);
  c.run({"down"});
  return ms;
}

constexpr const char* kUsage =
    "cluster_bench [--json] [--rounds N] [--only NAME] [--guests N] [--idle-seconds S] [--settle-seconds S]\n"
    "              [--lease-runs N]\n"
    "Cluster targets on a local cluster: devices up (N guests x 4 devices, default 250),\n"
    "recover and crash of the IO partition serving 16 guests (p99 of 20), host RSS, idle CPU\n"
    "(the default topology's busiest host; a 16-host fleet in total; over S seconds, default 5,\n"
    "after the cluster settled — default 13 s: channel links back off after 10 s idle), and\n"
    "faults reverted after the orchestrator is killed (p99 of N runs, default 20).\n";

int main(int argc, char** argv) {
  int guests = 250;
  int lease_runs = 20;
  std::chrono::milliseconds idle_window{5000};
  // Warm spares start after apply; links back off after idle_after.
  std::chrono::milliseconds settle = visorlab::channel::tcp::LinkOptions{}.idle_after + std::chrono::seconds(3);
  Options opt;
  try {
    opt = parse_options(argc, argv, kUsage,
                        {{"--guests", true, [&](const char* v) {
                            const auto n = parse_count("--guests", v);
                            if (n > 1000) throw std::invalid_argument("--guests at most 1000");
                            guests = static_cast<int>(n);
                          }},
                         {"--idle-seconds", true, [&](const char* v) {
                            idle_window = std::chrono::milliseconds(
                                static_cast<std::int64_t>(parse_seconds("--idle-seconds", v) * 1000));
                          }},
                         {"--lease-runs", true, [&](const char* v) {
                            const auto n = parse_count("--lease-runs", v);
                            if (n > 100) throw std::invalid_argument("--lease-runs at most 100");
                            lease_runs = static_cast<int>(n);
                          }},
                         {"--settle-seconds", true, [&](const char* v) {
                            settle = std::chrono::milliseconds(
                                static_cast<std::int64_t>(parse_seconds("--settle-seconds", v) * 1000));
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

  // Idle: the cluster up, nothing asked of it. A second to settle, then the window.
  std::unique_ptr<orch::LocalCluster> idle_default, idle_fleet;
  const auto default_topology = visorlab::topology::default_topology();
  const auto fleet = visorlab::topology::load_file(fs::path(VISORLAB_EXAMPLES_DIR) / "fleet.yaml");
  auto hosts_of = [](const visorlab::topology::Topology& t) {
    std::vector<std::string> names;
    for (const auto& h : t.hosts) names.push_back(h.name);
    return names;
  };
  auto idle_round = [&](std::unique_ptr<orch::LocalCluster>& cluster, const visorlab::topology::Topology& t,
                        const char* dir, bool busiest) {
    if (!cluster) {
      cluster = std::make_unique<orch::LocalCluster>(sys, t, orch::LocalClusterOptions{bin, scratch.dir / dir});
      cluster->cluster().apply(t);
      std::this_thread::sleep_for(settle);
    }
    const auto per_host = idle_cpu(*cluster, hosts_of(t), idle_window);
    double sum = 0, max = 0;
    for (const double p : per_host) {
      sum += p;
      max = std::max(max, p);
    }
    return busiest ? max : sum;
  };

  const std::vector<Bench> benches = {
      {{"cluster_devices_up", "ms", "target_2s", false, 1.0}, [] { return 2000.0; }, devices_up},
      {{"cluster_recover_p99", "ms", "target_50ms", false, 1.0}, [] { return 50.0; }, [&] { return recoveries(false); }},
      {{"cluster_crash_p99", "ms", "target_100ms", false, 1.0}, [] { return 100.0; }, [&] { return recoveries(true); }},
      // Measured by cluster_devices_up's rounds (the devices must be up).
      {{"cluster_host_rss", "MiB", "budget_1GiB", false, 1.0}, [] { return 1024.0; },
       [&] { return last_rss_mib > 0 ? last_rss_mib : (devices_up(), last_rss_mib); }},
      {{"cluster_idle_cpu", "%core", "target_1pct", false, 1.0}, [] { return 1.0; },
       [&] { return idle_round(idle_default, default_topology, "idle", true); }},
      {{"cluster_idle_cpu_fleet", "%core", "target_10pct", false, 1.0}, [] { return 10.0; },
       [&] { return idle_round(idle_fleet, fleet, "fleet", false); }},
      {{"cluster_readopt", "ms", "target_2s", false, 1.0}, [] { return 2000.0; },
       [&] {
         static int round = 0;
         return readopt_once(bin, scratch.dir / "readopt" / std::to_string(round++), guests);
       }},
      {{"cluster_lease_revert_p99", "ms", "target_2x_lease", false, 1.0},
       [] { return 2.0 * static_cast<double>(kLease.count()); },
       [&] {
         static int round = 0;
         std::vector<double> ms;
         for (int i = 0; i < lease_runs; ++i)
           ms.push_back(lease_revert_once(bin, scratch.dir / "lease" / (std::to_string(round) + "-" + std::to_string(i))));
         ++round;
         return nearest_rank(ms, 99);
       }},
  };
  return run_benches("cluster_bench", opt, benches);
}
