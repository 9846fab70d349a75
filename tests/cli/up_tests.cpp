// `visorlab up FILE` without --orchestrator, run as a user would: a local
// cluster in the foreground (orchestrator in the `up` process, one agent
// process per host), which the other commands drive through the address it
// prints, until SIGTERM or `visorlab down`; then nothing of it may remain —
// no process, no shared memory. And `visorlab drill --orchestrator` on it.
#define BOOST_TEST_MODULE cli_up
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/orchestrator/daemon.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/scratch.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using visorlab::test::Background;
using visorlab::test::bin;
using visorlab::test::run;
using visorlab::test::RunResult;
using visorlab::test::read_text;
using visorlab::test::Scratch;

namespace {

constexpr auto kUpLimit = 90s;    // agents register, the topology is applied
constexpr auto kStopLimit = 40s;  // the daemon's own stop limit is 30 s

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }


// Every process this test binary starts carries this tag in its environment
// (children inherit it), so leftovers are ours, not another test's.
const std::string& tag() {
  static const std::string t = [] {
    std::string value = "up-test-" + std::to_string(::getpid());
    ::setenv("VISORLAB_UP_TEST_TAG", value.c_str(), 1);
    ::unsetenv("VISORLAB_ORCHESTRATOR");
    return value;
  }();
  return t;
}

}  // namespace

// The tag is in the environment before the first process starts.
struct Tagged {
  Tagged() { tag(); }
};
BOOST_GLOBAL_FIXTURE(Tagged);

namespace {

// Our `visorlab` processes still running (other than `exclude`).
std::map<pid_t, std::string> our_processes(pid_t exclude = 0) {
  auto found = visorlab::test::visorlab_processes([](const auto&, const auto& environ) {
    return std::find(environ.begin(), environ.end(), "VISORLAB_UP_TEST_TAG=" + tag()) != environ.end();
  });
  found.erase(exclude);
  return found;
}

// Shared memory of the orchestrator in process `pid`.
std::vector<std::string> shm_of(pid_t pid) { return visorlab::test::shm_of_orchestrator(pid); }

void expect_nothing_left(pid_t up_pid) {
  auto left = our_processes();
  for (int i = 0; i < 30 && !left.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
    left = our_processes();
  }
  for (const auto& [pid, cmdline] : left) {
    BOOST_ERROR("left process " << pid << " running: " << cmdline);
    ::kill(pid, SIGKILL);
  }
  for (const auto& name : shm_of(up_pid)) {
    BOOST_ERROR("left /dev/shm/" << name);
    fs::remove(fs::path("/dev/shm") / name);
  }
}

// `visorlab up FILE --listen 127.0.0.1:0`, running, its address read.
struct Up {
  Up(const fs::path& file, const fs::path& run_dir)
      : process({bin("visorlab"), "up", file.string(), "--listen", "127.0.0.1:0", "--run-dir", run_dir.string()}) {
    static const std::regex announce(R"(orchestrator listening on (127\.0\.0\.1:\d+))");
    const auto deadline = std::chrono::steady_clock::now() + kUpLimit;
    while (std::chrono::steady_clock::now() < deadline) {
      const auto line = process.read_line(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!line) break;
      out += *line + "\n";
      std::smatch m;
      if (std::regex_search(*line, m, announce)) {
        address = m[1];
        break;
      }
    }
    // The hint line follows the announcement.
    if (!address.empty())
      if (const auto hint = process.read_line(5s)) out += *hint + "\n";
  }
  Background process;
  std::string address;
  std::string out;
};

RunResult vl(std::vector<std::string> args, const std::string& orchestrator, std::chrono::seconds limit = 60s) {
  args.insert(args.begin(), bin("visorlab"));
  args.push_back("--orchestrator");
  args.push_back(orchestrator);
  return run(args, limit);
}

// Stops `up` with `sig` (0: it was told to stop otherwise) and checks it
// exits 0 in time, leaving nothing behind.
void expect_clean_stop(Up& up, int sig) {
  const pid_t pid = up.process.pid();
  if (sig) up.process.signal(sig);
  const auto code = up.process.wait(kStopLimit);
  BOOST_TEST_REQUIRE(code.has_value(), "visorlab up did not stop within " << kStopLimit.count() << " s");
  BOOST_TEST(*code == 0, up.process.err());
  expect_nothing_left(pid);
}

std::string small_drill(const std::string& steps, const std::string& duration = "4s") {
  return "version: 1\n"
         "name: up-drill\n"
         "hosts:\n"
         "  - {name: a}\n"
         "command: {host: a}\n"
         "services:\n"
         "  - {name: io0, kind: io, host: a, switches: [{name: sw0}]}\n"
         "  - {name: con0, kind: console, host: a}\n"
         "guests:\n"
         "  - name: g\n"
         "    count: 2\n"
         "    host: a\n"
         "    devices:\n"
         "      - {kind: vhba, service: io0, disk_size: 16MiB}\n"
         "      - {kind: vnic, service: io0, switch: sw0}\n"
         "      - {kind: keyboard, service: con0}\n"
         "workload:\n"
         "  disk:  {block_size: 4KiB, queue_depth: 8, read_ratio: 0.5, verify: true}\n"
         "  net:   {frame_size: 1500, rate: 1000/s}\n"
         "  input: {rate: 200/s}\n"
         "drill:\n"
         "  seed: 3\n"
         "  duration: " + duration + "\n"
         "  steps:\n" +
         steps + "expect: {lost_io: 0, max_recovery_ms: 1000}\n";
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_bad_file_is_exit_2_naming_the_place_and_starts_nothing) {
  Scratch s;
  const auto file = s.file("bad.yaml",
                           "version: 1\nname: bad\nhosts:\n  - {name: a}\ncommand: {host: a}\n"
                           "services:\n  - {name: io0, kind: io, host: a}\n"
                           "guests:\n  - name: g\n    host: a\n    devices:\n"
                           "      - {kind: vhba, service: nosuch, disk_size: 16MiB}\n");
  const fs::path run_dir = s.dir / "run";
  auto r = run({bin("visorlab"), "up", file.string(), "--listen", "127.0.0.1:0", "--run-dir", run_dir.string()}, 30s);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(std::regex_search(r.err, std::regex(R"(bad\.yaml:\d+:\d+: )")), r.err);
  BOOST_TEST(contains(r.err, "nosuch"), r.err);
  BOOST_TEST(!fs::exists(run_dir), "a run dir was created for a bad file");
  BOOST_TEST(our_processes().empty());

  r = run({bin("visorlab"), "up", (s.dir / "missing.yaml").string(), "--listen", "127.0.0.1:0"}, 30s);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(contains(r.err, "missing.yaml"), r.err);

  r = run({bin("visorlab"), "up", file.string(), "--listen", "127.0.0.1:99999"}, 30s);
  BOOST_TEST(r.exit_code == 2, r.err);

  // Local-only options with an orchestrator: bad usage, nothing contacted.
  r = run({bin("visorlab"), "up", file.string(), "--listen", "127.0.0.1:0", "--orchestrator", "127.0.0.1:1"}, 30s);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(contains(r.err, "--listen"), r.err);

  r = run({bin("visorlab"), "up", "--help"}, 30s);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.out, "--listen"));
  BOOST_TEST(contains(r.out, "--run-dir"));
}

BOOST_AUTO_TEST_CASE(up_serves_the_other_commands_until_sigterm) {
  Scratch s;
  Up up(fs::path(VISORLAB_EXAMPLES_DIR) / "single-host.yaml", s.dir / "run");
  BOOST_TEST_REQUIRE(!up.address.empty(), "no address line; stdout:\n" << up.out << "stderr:\n" << up.process.err());
  BOOST_TEST(contains(up.out, "export VISORLAB_ORCHESTRATOR=" + up.address), up.out);

  auto r = vl({"devices"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(vbus2:dev\d+ g0/vhba0 driver=visorhba typeguid=\S+ nbytes=\d+ state=running)")),
             r.out);
  BOOST_TEST(contains(r.out, "g1/vnic0"), r.out);

  r = vl({"pause", "g1/vnic0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"devices", "--guest", "g1"}, up.address);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(g1/vnic0 .*state=paused)")), r.out);
  r = vl({"resume", "g1/vnic0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"recover", "io0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.out, "recover io0"), r.out);

  // A recover leaves a device an operator paused as it was: paused until
  // resumed (it used to fail with EBUSY and leave every io0 device paused).
  r = vl({"pause", "g1/vhba0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"recover", "io0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.out << r.err);
  r = vl({"devices", "--guest", "g1"}, up.address);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(g1/vhba0 .*state=paused)")), r.out);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(g1/vnic0 .*state=running)")), r.out);
  r = vl({"resume", "g1/vhba0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"crash", "io0"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.out << r.err);

  // A create that fails late (its fresh disk cannot be made: a directory
  // with a file in it stands where the disk goes) leaves no ghost on the
  // guest's bus, and the same create works once the way is clear.
  const fs::path blocker = s.dir / "run" / "disks" / "g1_vhba1.img";
  fs::create_directories(blocker);
  std::ofstream(blocker / "in-the-way");
  r = vl({"create", "g1", "--kind", "vhba", "--service", "io0", "--disk-size", "16MiB"}, up.address);
  BOOST_TEST(r.exit_code != 0, r.out);
  BOOST_TEST(contains(r.err, "g1/vhba1"), r.err);
  r = vl({"devices", "--guest", "g1"}, up.address);
  BOOST_TEST(!contains(r.out, "g1/vhba1"), r.out);
  fs::remove_all(blocker);
  r = vl({"create", "g1", "--kind", "vhba", "--service", "io0", "--disk-size", "16MiB"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.out, "created g1/vhba1"), r.out);

  // The environment variable works as well as the flag.
  ::setenv("VISORLAB_ORCHESTRATOR", up.address.c_str(), 1);
  r = run({bin("visorlab"), "agents"}, 30s);
  ::unsetenv("VISORLAB_ORCHESTRATOR");
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.out, "a "), r.out);
  BOOST_TEST(contains(r.out, " up "), r.out);

  // A second topology cannot be applied over the first.
  r = vl({"up", (fs::path(VISORLAB_EXAMPLES_DIR) / "single-host.yaml").string()}, up.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(contains(r.err, "already applied"), r.err);

  expect_clean_stop(up, SIGTERM);
  BOOST_TEST(fs::exists(s.dir / "run" / "logs"));
}

BOOST_AUTO_TEST_CASE(down_tears_it_down_and_up_exits) {
  Scratch s;
  Up up(fs::path(VISORLAB_EXAMPLES_DIR) / "single-host.yaml", s.dir / "run");
  BOOST_TEST_REQUIRE(!up.address.empty(), "no address line; stdout:\n" << up.out << "stderr:\n" << up.process.err());
  // An agent killed behind the cluster's back is started again (it used to
  // stay `lost`, and down left its partition host running).
  pid_t agent = 0;
  for (const auto& [pid, cmdline] : our_processes())
    if (contains(cmdline, " agent --host a ")) agent = pid;
  BOOST_TEST_REQUIRE(agent != 0);
  ::kill(agent, SIGKILL);
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    std::this_thread::sleep_for(100ms);
    for (const auto& [pid, cmdline] : our_processes())
      if (pid != agent && contains(cmdline, " agent --host a ")) back = true;
  }
  BOOST_TEST(back, "no new agent for host a within 10 s");
  RunResult agents;
  for (int i = 0; i < 100; ++i) {  // it registers again
    agents = vl({"agents"}, up.address);
    if (contains(agents.out, " up ")) break;
    std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(contains(agents.out, " up "), agents.out);
  const auto r = vl({"down"}, up.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(contains(r.out, "tore down single-host"), r.out);
  expect_clean_stop(up, 0);
  BOOST_TEST(contains(up.process.err(), "visorlab down"), up.process.err());
}

// `up` killed with SIGKILL (it cannot clean up): its agents notice their
// parent is gone and stop their partitions; nothing is left running and no
// shared memory stays behind.
BOOST_AUTO_TEST_CASE(a_killed_up_leaves_nothing_running) {
  Scratch s;
  Up up(fs::path(VISORLAB_EXAMPLES_DIR) / "single-host.yaml", s.dir / "run");
  BOOST_TEST_REQUIRE(!up.address.empty(), "no address line; stdout:\n" << up.out << "stderr:\n" << up.process.err());
  const pid_t pid = up.process.pid();
  BOOST_TEST_REQUIRE(!our_processes(pid).empty());
  up.process.signal(SIGKILL);
  (void)up.process.wait(10s);
  for (int i = 0; i < 150 && !our_processes().empty(); ++i) std::this_thread::sleep_for(100ms);
  expect_nothing_left(pid);
}

// The drill runs inside the orchestrator `up` serves, which owns its agents:
// a recovery and a kill_agent step, the same outputs as a local drill.
BOOST_AUTO_TEST_CASE(drill_through_the_orchestrator_of_up) {
  Scratch s;
  const auto file = s.file("up-drill.yaml", small_drill("    - {at: 1s, recover: io0}\n"
                                                       "    - {at: 2s, kill_agent: a, restart_after: 300ms}\n"));
  Up up(file, s.dir / "run");
  BOOST_TEST_REQUIRE(!up.address.empty(), "no address line; stdout:\n" << up.out << "stderr:\n" << up.process.err());
  const fs::path report = s.dir / "r.json", plot = s.dir / "p.svg";
  const auto r = vl({"drill", file.string(), "--report", report.string(), "--plot", plot.string()}, up.address,
                    180s);
  BOOST_TEST(!r.timed_out);
  BOOST_TEST(r.exit_code == 0, "stdout:\n" << r.out << "\nstderr:\n" << r.err);
  BOOST_TEST(contains(r.out, "step:"), r.out);  // progress lines
  BOOST_TEST(contains(r.out, "result: PASS"), r.out);
  BOOST_TEST_REQUIRE(fs::exists(report));
  const json j = json::parse(read_text(report));
  BOOST_TEST(j["visorlab_report"] == 1);
  BOOST_TEST(j["name"] == "up-drill");
  BOOST_TEST(j["result"] == "pass", j.dump(2));
  BOOST_TEST_REQUIRE(j["faults"].size() == 2u, j["faults"].dump(2));
  BOOST_TEST(j["faults"][0]["kind"] == "recover");
  BOOST_TEST(j["faults"][1]["kind"] == "kill_agent");
  BOOST_TEST(contains(read_text(plot), "<svg"));

  // The cluster is still up and answers after the drill.
  const auto d = vl({"devices"}, up.address);
  BOOST_TEST(d.exit_code == 0, d.err);
  expect_clean_stop(up, SIGINT);
}

// A client that goes away (here: Ctrl-C) cancels its drill: the orchestrator
// stops it — the step under way reverts its fault — instead of running the
// rest of its minute, so the next drill runs at once.
BOOST_AUTO_TEST_CASE(a_cancelled_drill_stops_and_the_next_one_runs) {
  Scratch s;
  const auto long_file = s.file("long.yaml", small_drill("    - {at: 1s, pause: g0/vhba0, for: 500ms}\n"
                                                         "    - {at: 50s, recover: io0}\n",
                                                         "60s"));
  const auto short_file = s.file("short.yaml", small_drill("    - {at: 1s, recover: io0}\n"));
  Up up(long_file, s.dir / "run");
  BOOST_TEST_REQUIRE(!up.address.empty(), "no address line; stdout:\n" << up.out << "stderr:\n" << up.process.err());

  Background client({bin("visorlab"), "drill", long_file.string(), "--orchestrator", up.address});
  bool progressing = false;
  for (int i = 0; i < 60 && !progressing; ++i)
    if (const auto line = client.read_line(1000ms)) progressing = contains(*line, "step:");
  BOOST_TEST_REQUIRE(progressing, "no progress from the remote drill: " << client.err());
  std::this_thread::sleep_for(1500ms);  // into the pause step
  client.signal(SIGINT);
  BOOST_TEST(client.wait(10s).has_value());

  // The cancelled drill winds down (the pause step ends, the workload stops,
  // the history is judged) in seconds, not the 50 s left of its schedule: the
  // orchestrator takes a new drill request again. (Its guests' workloads have
  // run a drill, which they say: another one needs the topology applied anew.)
  const auto start = std::chrono::steady_clock::now();
  RunResult r;
  do {
    if (r.exit_code != -1) std::this_thread::sleep_for(200ms);
    r = vl({"drill", short_file.string()}, up.address, 120s);
  } while (contains(r.err, "already running") && std::chrono::steady_clock::now() - start < 15s);
  BOOST_TEST(!contains(r.err, "already running"), r.err);
  BOOST_TEST(contains(r.err, "visorlab down"), r.err);
  std::string said = up.process.err();  // the daemon's log, stdout or stderr
  while (!contains(said, "cancelled"))
    if (const auto line = up.process.read_line(2000ms)) said += *line + "\n";
    else break;
  BOOST_TEST(contains(said, "cancelled"), said);
  const auto d = vl({"devices"}, up.address);
  BOOST_TEST(std::regex_search(d.out, std::regex(R"(g0/vhba0 .*state=running)")), d.out);  // the pause was reverted
  expect_clean_stop(up, SIGTERM);
}

// A partition host told to stop on its own (SIGTERM, as a service manager's
// stop sends to every process of the agent's unit) exits cleanly: its exit
// handler once read the actor state CAF had already freed and died of a
// segfault. The agent reaps it and logs how it ended.
BOOST_AUTO_TEST_CASE(a_partition_host_stops_cleanly_on_sigterm) {
  Scratch s;
  Up up(fs::path(VISORLAB_EXAMPLES_DIR) / "single-host.yaml", s.dir / "run");
  BOOST_TEST_REQUIRE(!up.address.empty(), "no address line; stdout:\n" << up.out << "stderr:\n" << up.process.err());
  // Running as a service manager would find it: its keepers' warm spares up
  // too (each service partition "serving" twice). A keeper that is still
  // starting its spare sees the stop only after that blocking start returns;
  // the partition host's 4 s stop bound covers that case (exit 1, logged).
  const fs::path log = s.dir / "run" / "logs" / "host-a.log";
  const auto count = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  for (int i = 0; i < 300 && count(read_text(log), ") serving on ") < 4; ++i) std::this_thread::sleep_for(100ms);
  BOOST_TEST_REQUIRE(count(read_text(log), ") serving on ") >= 4u, read_text(log));
  std::this_thread::sleep_for(500ms);

  pid_t host = 0;
  for (const auto& [pid, cmdline] : our_processes())
    if (contains(cmdline, " partition-host ")) host = pid;
  BOOST_TEST_REQUIRE(host != 0, "no partition host running");
  BOOST_TEST_REQUIRE(::kill(host, SIGTERM) == 0);

  const std::string said = "partition host (pid " + std::to_string(host) + ") ";
  std::string text;
  for (int i = 0; i < 150 && !contains(text, said); ++i) {
    std::this_thread::sleep_for(100ms);
    text = read_text(log);
  }
  BOOST_TEST(contains(text, said + "exited with status 0"), text);
  expect_clean_stop(up, SIGTERM);
}

