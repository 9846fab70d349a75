// Leases: an orchestrator killed (kill -9) while faults are in effect leaves
// none of them behind. Its hosts stop hearing its lease renewals and revert
// by themselves: a paused device runs again, a crashed service is restarted,
// a drill's workload stops and keeps its history on disk. Real processes on
// loopback: `visorlab orchestrator --lease 1s`, one agent, the CLI.
#define BOOST_TEST_MODULE orchestrator_lease
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/metrics/exposition.hpp"
#include "tests/metrics/http_client.hpp"
#include "tests/orchestrator/daemon.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/run.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using visorlab::test::Background;
using visorlab::test::bin;
using visorlab::test::Exposition;
using visorlab::test::Orchestrator;
using visorlab::test::run;
using visorlab::test::RunResult;

namespace {

constexpr auto kLease = 1s;
// What a revert may take past the lease: the partition host's check, the
// controlvm round trip that resumes the guest, a scrape.
constexpr auto kRevertBound = 3s;

// Guest names are unique per run: channels live in /dev/shm under them.
const std::string kGuest = "ls" + std::to_string(::getpid()) + "g";

std::string topology(const std::string& drill) {
  return R"(version: 1
name: lease
hosts:
  - {name: a}
command: {host: a}
services:
  - name: io0
    kind: io
    host: a
    switches: [{name: sw0}]
guests:
  - name: )" + kGuest + R"(
    host: a
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
      - {kind: vnic, service: io0, switch: sw0}
)" + drill;
}

// A free loopback port (bound, then let go), for an orchestrator that must
// come back on the same agent port.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

// An agent for `host`, logging (with its partition host) to <run-dir>.log:
// a pipe nobody reads would fill and block them (a cut logs a lot).
std::vector<std::string> agent_command(const std::string& host, std::uint16_t agent_port, const fs::path& run_dir) {
  fs::create_directories(run_dir.parent_path());
  return {"/bin/sh", "-c",
          "exec \"$0\" agent --host \"$1\" --orchestrator \"127.0.0.1:$2\" --run-dir \"$3\" >\"$3.log\" 2>&1",
          bin("visorlab"), host, std::to_string(agent_port), run_dir.string()};
}

struct Cluster {
  explicit Cluster(std::vector<std::string> extra = {})
      : dir(fs::temp_directory_path() / ("visorlab-lease-" + std::to_string(::getpid()))),
        orchestrator([&] {
          std::vector<std::string> args{"--run-dir", (dir / "orchestrator").string(), "--lease", "1s"};
          args.insert(args.end(), extra.begin(), extra.end());
          return args;
        }()),
        agent(agent_command("a", orchestrator.agent_port, agent_dir())) {}
  ~Cluster() {
    orchestrator.process.signal(SIGTERM);
    orchestrator.process.wait(30s);
    agent.signal(SIGTERM);
    agent.wait(20s);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path agent_dir() const { return dir / "agent-a"; }
  std::string write(const std::string& text) const {
    fs::create_directories(dir);
    const auto file = (dir / "lease.yaml").string();
    std::ofstream(file) << text;
    return file;
  }
  RunResult vl(std::vector<std::string> args, const std::string& address = "") {
    args.insert(args.begin(), bin("visorlab"));
    args.push_back("--orchestrator");
    args.push_back(address.empty() ? orchestrator.address : address);
    return run(args, 120s);
  }
  std::vector<std::string> vl_args(std::vector<std::string> args) const {
    args.insert(args.begin(), bin("visorlab"));
    args.push_back("--orchestrator");
    args.push_back(orchestrator.address);
    return args;
  }
  // The partition host's /metrics (its port file appears once it serves).
  Exposition host_metrics() const {
    std::uint16_t port = 0;
    std::ifstream(agent_dir() / "hosts" / "a" / "metrics.port") >> port;
    BOOST_TEST_REQUIRE(port != 0, "the partition host wrote no metrics port");
    const auto r = visorlab::test::http_get("127.0.0.1", port, "/metrics");
    BOOST_TEST_REQUIRE(r.status == 200, "partition host /metrics: " << r.status);
    return visorlab::test::parse(r.body);
  }
  void kill_orchestrator() {
    orchestrator.process.signal(SIGKILL);
    BOOST_TEST_REQUIRE(orchestrator.process.wait(10s).has_value(), "the orchestrator did not die on SIGKILL");
  }
  // Once the agent stopped: nothing of the cluster left running or in /dev/shm.
  void stop_and_check_leftovers() {
    const pid_t orchestrator_pid = orchestrator.process.pid();
    agent.signal(SIGTERM);
    BOOST_TEST(agent.wait(20s).has_value(), "the agent did not stop on SIGTERM");
    const auto procs = visorlab::test::visorlab_processes([&](const auto& argv, const auto&) {
      for (const auto& a : argv)
        if (a.find(agent_dir().string()) != std::string::npos) return true;
      return false;
    });
    BOOST_TEST(procs.empty(), procs.size() << " processes of the agent's host still run");
    std::vector<std::string> shm;
    for (int i = 0; i < 50 && !(shm = visorlab::test::shm_of_orchestrator(orchestrator_pid)).empty(); ++i)
      std::this_thread::sleep_for(100ms);
    BOOST_TEST(shm.empty(), shm.size() << " shared-memory files left, first " << (shm.empty() ? "" : shm.front()));
  }
  // Until the drill's workload does I/O on the host.
  void wait_for_drill_io();
  // The lease topology up, `device` paused, and the host's metrics showing it.
  void up_and_pause(const std::string& device);
  // What the agent and its partition host logged so far.
  std::string agent_log() const {
    std::ifstream in(agent_dir().string() + ".log");
    return {std::istreambuf_iterator<char>(in), {}};
  }
  fs::path dir;
  Orchestrator orchestrator;
  Background agent;
};

double series(const Exposition& e, const std::string& name, const std::string& state) {
  return e.sum(name, {{"host", "a"}, {"state", state}});
}

double reverted(const Exposition& e, const std::string& kind) {
  return e.sum("visorlab_faults_reverted_by_lease_total", {{"host", "a"}, {"kind", kind}});
}

double io_ops(const Exposition& e) { return e.sum("visorlab_io_operations_total", {{"host", "a"}}); }

// Polls `done` until it holds or `limit` passes; how long it took.
template <class Done>
std::optional<std::chrono::milliseconds> within(std::chrono::milliseconds limit, Done done) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < limit) {
    if (done()) return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::this_thread::sleep_for(100ms);
  }
  return std::nullopt;
}

void Cluster::wait_for_drill_io() {
  BOOST_TEST_REQUIRE(within(30s, [&] {
                       std::error_code ec;
                       return fs::exists(agent_dir() / "hosts" / "a" / "metrics.port", ec) && io_ops(host_metrics()) > 100;
                     }).has_value(),
                     "the drill's workload never did I/O");
}

void Cluster::up_and_pause(const std::string& device) {
  const auto up = vl({"up", write(topology(""))});
  BOOST_TEST_REQUIRE(up.exit_code == 0, up.out << up.err);
  const auto pause = vl({"pause", device});
  BOOST_TEST_REQUIRE(pause.exit_code == 0, pause.out << pause.err);
  // The guest's metrics follow its state within a moment.
  BOOST_TEST_REQUIRE(within(5s, [&] { return series(host_metrics(), "visorlab_devices", "paused") == 1; }).has_value(),
                     "the paused device never showed as paused");
}

}  // namespace

// A device paused by the operator and its service mid-crash (the restart
// 3 s out) when the orchestrator dies: the lease lapses, the keeper resumes
// the device, and the service comes back by itself.
BOOST_AUTO_TEST_CASE(a_killed_orchestrator_leaves_no_device_paused_and_no_service_down) {
  Cluster c;
  c.up_and_pause(kGuest + "/vhba0");

  Background crash(c.vl_args({"crash", "io0", "--restart-after", "3s"}));
  BOOST_TEST_REQUIRE(
      within(5s, [&] { return series(c.host_metrics(), "visorlab_partitions", "recovering") >= 1; }).has_value(),
      "io0 never started recovering");
  c.kill_orchestrator();

  const auto took = within(kLease + 3s + kRevertBound, [&] {
    const auto m = c.host_metrics();
    return series(m, "visorlab_devices", "paused") == 0 && series(m, "visorlab_partitions", "recovering") == 0 &&
           series(m, "visorlab_partitions", "failed") == 0;
  });
  const auto m = c.host_metrics();
  if (took) BOOST_TEST_MESSAGE("reverted " << took->count() << " ms after the kill");
  BOOST_TEST(took.has_value(), "after the kill: devices paused " << series(m, "visorlab_devices", "paused")
                                   << ", partitions recovering " << series(m, "visorlab_partitions", "recovering")
                                   << ", failed " << series(m, "visorlab_partitions", "failed") << "\n"
                                   << c.agent_log());
  BOOST_TEST(series(m, "visorlab_devices", "running") == 2);
  BOOST_TEST(reverted(m, "pause") == 1);
  c.stop_and_check_leftovers();
}

// A drill's workload when the orchestrator dies: it stops issuing I/O once
// the lease lapses, and what it recorded is kept in the host's run dir.
BOOST_AUTO_TEST_CASE(a_killed_orchestrator_stops_the_drills_workload_and_keeps_its_history) {
  Cluster c;
  const auto file = c.write(topology("workload:\n  net: {rate: 200/s}\ndrill:\n  duration: 60s\n"));
  Background drill(c.vl_args({"drill", file}));
  c.wait_for_drill_io();
  c.kill_orchestrator();

  const auto stopped = within(kLease + kRevertBound, [&] { return reverted(c.host_metrics(), "workload") == 1; });
  BOOST_TEST_REQUIRE(stopped.has_value(), "the workload was not stopped by the lease\n" << c.agent_log());
  // In-flight ops and the final read-back end; then no more I/O.
  std::this_thread::sleep_for(1s);
  const double before = io_ops(c.host_metrics());
  std::this_thread::sleep_for(1s);
  BOOST_TEST(io_ops(c.host_metrics()) == before, "I/O goes on after the lease stopped the workload");

  const fs::path kept = c.agent_dir() / "hosts" / "a" / "abandoned" / (kGuest + ".history.jsonl");
  BOOST_TEST_REQUIRE(fs::exists(kept), kept << " was not written");
  std::ifstream in(kept);
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  BOOST_TEST(lines > 100u, kept << " holds " << lines << " lines");
  c.stop_and_check_leftovers();
}

// A hung orchestrator (SIGSTOP) renews nothing either: its hosts revert.
// Continued, it answers as before and renews again.
BOOST_AUTO_TEST_CASE(a_hung_orchestrator_loses_its_lease_and_renews_it_when_continued) {
  Cluster c;
  c.up_and_pause(kGuest + "/vnic0");

  c.orchestrator.process.signal(SIGSTOP);
  const auto took = within(kLease + kRevertBound, [&] {
    const auto m = c.host_metrics();
    return series(m, "visorlab_devices", "paused") == 0 && reverted(m, "pause") == 1;
  });
  c.orchestrator.process.signal(SIGCONT);
  BOOST_TEST(took.has_value(), "a stopped orchestrator's pause was not reverted\n" << c.agent_log());

  const auto devices = c.vl({"devices"});
  BOOST_TEST(devices.exit_code == 0, devices.err);
  BOOST_TEST(devices.out.find(kGuest + "/vnic0") != std::string::npos, devices.out);
  // It renews again: a new pause holds past two leases.
  const auto again = c.vl({"pause", kGuest + "/vhba0"});
  BOOST_TEST_REQUIRE(again.exit_code == 0, again.out << again.err);
  std::this_thread::sleep_for(2 * kLease + 500ms);
  const auto m = c.host_metrics();
  BOOST_TEST(series(m, "visorlab_devices", "paused") == 1);
  BOOST_TEST(reverted(m, "pause") == 1);
  c.stop_and_check_leftovers();
}

// An orchestrator with a state dir, killed during a drill and started again
// on the same dir and agent port, re-adopts the cluster: the hosts register
// again, the same devices are listed, the drill is reported aborted, the
// cluster is driven and torn down as before, and a new drill passes.
BOOST_AUTO_TEST_CASE(a_restarted_orchestrator_readopts_the_cluster_from_its_state_dir) {
  const std::string port = std::to_string(free_port());
  const fs::path state = fs::temp_directory_path() / ("visorlab-lease-state-" + std::to_string(::getpid()));
  Cluster c({"--state-dir", state.string(), "--agent-port", port});
  const auto file = c.write(topology("workload:\n  net: {rate: 200/s}\ndrill:\n  duration: 60s\n"));
  {
    Background drill(c.vl_args({"drill", file}));
    c.wait_for_drill_io();
    c.kill_orchestrator();
  }
  BOOST_TEST_REQUIRE(fs::exists(state / "cluster.json"));

  Orchestrator again({"--run-dir", (c.dir / "orchestrator").string(), "--lease", "1s", "--state-dir", state.string(),
                      "--agent-port", port});
  const auto listed = within(20s, [&] {
    const auto d = c.vl({"devices"}, again.address);
    return d.exit_code == 0 && d.out.find(kGuest + "/vhba0") != std::string::npos &&
           d.out.find(kGuest + "/vnic0") != std::string::npos;
  });
  const auto devices = c.vl({"devices"}, again.address);
  BOOST_TEST_REQUIRE(listed.has_value(), "the restarted orchestrator lists: " << devices.out << devices.err);
  const auto events = c.vl({"events"}, again.address);
  BOOST_TEST(events.out.find("readopted") != std::string::npos, events.out);
  BOOST_TEST(events.out.find("drill_aborted") != std::string::npos, events.out);
  BOOST_TEST(!fs::exists(state / "drill-in-progress"));

  // The re-adopted cluster is driven as before: a pause and a resume reach
  // its guest, `down` stops what the first orchestrator started.
  for (const char* verb : {"pause", "resume"}) {
    const auto r = c.vl({verb, kGuest + "/vhba0"}, again.address);
    BOOST_TEST(r.exit_code == 0, verb << ": " << r.out << r.err);
  }
  const auto first_down = c.vl({"down"}, again.address);
  BOOST_TEST_REQUIRE(first_down.exit_code == 0, first_down.out << first_down.err);
  BOOST_TEST(!fs::exists(state / "cluster.json"), "down leaves the state behind");
  // Guests remove their shared memory as they stop, just after down answers.
  BOOST_TEST(within(5s, [&] { return visorlab::test::shm_of_orchestrator(c.orchestrator.process.pid()).empty(); })
                 .has_value(),
             "the re-adopted cluster's shared memory outlives down");

  // A new drill (its workload starts afresh: a drill's workload runs once
  // per applied topology) passes with nothing lost.
  std::ofstream(file, std::ios::trunc)
      << topology("workload:\n  net: {rate: 200/s}\ndrill:\n  duration: 3s\n  steps:\n"
                  "    - {at: 1s, pause: " + kGuest + "/vhba0, for: 500ms}\nexpect: {lost_io: 0}\n");
  const auto drill = c.vl({"drill", file}, again.address);
  BOOST_TEST(drill.exit_code == 0, drill.out << drill.err);

  const auto down = c.vl({"down"}, again.address);
  BOOST_TEST(down.exit_code == 0, down.out << down.err);
  c.stop_and_check_leftovers();
  std::error_code ec;
  fs::remove_all(state, ec);
}

// The agent is not on the data path: killed (kill -9) during a drill and
// started again by hand, then hung (SIGSTOP) and continued, it disturbs
// nothing — the new agent adopts the running partition host, and the drill
// passes with nothing lost.
BOOST_AUTO_TEST_CASE(an_agent_killed_and_hung_during_a_drill_disturbs_nothing) {
  Cluster c;
  const auto file = c.write(topology("workload:\n  net: {rate: 200/s}\ndrill:\n  duration: 6s\n"
                                     "expect: {lost_io: 0}\n"));
  Background drill(c.vl_args({"drill", file}));
  c.wait_for_drill_io();
  std::uint32_t partitions_pid = 0;
  std::ifstream(c.agent_dir() / "hosts" / "a" / "partitions.pid") >> partitions_pid;
  c.agent.signal(SIGKILL);
  BOOST_TEST_REQUIRE(c.agent.wait(10s).has_value());
  Background again(agent_command("a", c.orchestrator.agent_port, c.agent_dir()));
  std::this_thread::sleep_for(1s);
  again.signal(SIGSTOP);
  std::this_thread::sleep_for(1s);
  again.signal(SIGCONT);

  const auto code = drill.wait(60s);
  std::string out;
  while (const auto line = drill.read_line(200ms)) out += *line + "\n";
  BOOST_TEST_REQUIRE(code.has_value(), "the drill did not end");
  BOOST_TEST(*code == 0, out << drill.err());
  std::uint32_t now_pid = 0;
  std::ifstream(c.agent_dir() / "hosts" / "a" / "partitions.pid") >> now_pid;
  BOOST_TEST(now_pid == partitions_pid, "the new agent started another partition host instead of adopting it");

  const auto down = c.vl({"down"});
  BOOST_TEST(down.exit_code == 0, down.out << down.err);
  again.signal(SIGTERM);
  BOOST_TEST(again.wait(20s).has_value(), "the new agent did not stop on SIGTERM");
  c.stop_and_check_leftovers();
}

// A network cut with a lease of its own far longer than the orchestrator's
// (a 20 s partition step): killed mid-cut, the orchestrator's lease lapses
// first and both hosts heal the cut then.
BOOST_AUTO_TEST_CASE(a_killed_orchestrator_leaves_no_network_cut) {
  Cluster c;
  const fs::path b_dir = c.dir / "agent-b";
  Background agent_b(agent_command("b", c.orchestrator.agent_port, b_dir));
  const std::string guest_b = kGuest + "b";
  const auto file = c.write(R"(version: 1
name: cut
hosts:
  - {name: a}
  - {name: b}
command: {host: a}
services:
  - {name: io0, kind: io, host: a}
guests:
  - name: )" + guest_b + R"(
    host: b
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
drill:
  duration: 60s
  steps:
    - {at: 1s, partition: [a, b], for: 20s}
)");
  Background drill(c.vl_args({"drill", file}));
  const auto b_metrics = [&] {
    std::uint16_t port = 0;
    std::ifstream(b_dir / "hosts" / "b" / "metrics.port") >> port;
    const auto r = visorlab::test::http_get("127.0.0.1", port, "/metrics");
    return visorlab::test::parse(r.status == 200 ? r.body : "");
  };
  // The cut is in force once the guest's I/O stops moving.
  BOOST_TEST_REQUIRE(within(30s, [&] {
                       std::error_code ec;
                       return fs::exists(b_dir / "hosts" / "b" / "metrics.port", ec) &&
                              b_metrics().sum("visorlab_io_operations_total") > 100;
                     }).has_value(),
                     "the drill's workload never did I/O");
  std::this_thread::sleep_for(2s);
  const double during = b_metrics().sum("visorlab_io_operations_total");
  std::this_thread::sleep_for(500ms);
  BOOST_TEST_REQUIRE(b_metrics().sum("visorlab_io_operations_total") == during, "no cut in force");
  c.kill_orchestrator();

  const auto healed = within(kLease + kRevertBound, [&] {
    return reverted(c.host_metrics(), "partition") == 1 &&
           b_metrics().sum("visorlab_faults_reverted_by_lease_total", {{"host", "b"}, {"kind", "partition"}}) == 1;
  });
  BOOST_TEST(healed.has_value(), "the cut was not healed when the lease lapsed");
  agent_b.signal(SIGTERM);
  BOOST_TEST(agent_b.wait(20s).has_value(), "agent b did not stop on SIGTERM");
  c.stop_and_check_leftovers();
}
