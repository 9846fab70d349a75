// The orchestrator daemon and the cluster commands, run as a user would: the
// real `visorlab` binary, a real daemon on a loopback port.
#define BOOST_TEST_MODULE orchestrator_cli
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "tests/metrics/exposition.hpp"
#include "tests/metrics/http_client.hpp"
#include "tests/orchestrator/daemon.hpp"
#include "tests/support/run.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using visorlab::test::Background;
using visorlab::test::bin;
using visorlab::test::Orchestrator;
using visorlab::test::run;
using visorlab::test::RunResult;

namespace {

constexpr const char* kHint =
    "no cluster: pass --orchestrator HOST:PORT or set VISORLAB_ORCHESTRATOR (start one with `visorlab "
    "orchestrator`, or run `visorlab drill` for a local cluster)";

// A topology file for the commands that take one; removed at exit.
struct TopologyFile {
  TopologyFile() { std::ofstream(path) << "version: 1\n"; }
  ~TopologyFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
  const fs::path path = fs::temp_directory_path() / ("visorlab-orch-cli-" + std::to_string(::getpid()) + ".yaml");
};

// Commands that talk to a cluster, each with arguments that parse.
std::vector<std::vector<std::string>> cluster_commands() {
  static const TopologyFile file;
  const std::string topology = file.path.string();
  return {
      {"up", topology}, {"down"}, {"devices"}, {"agents"},
      {"create", "g0", "--kind", "vhba", "--service", "io0", "--disk-size", "16MiB"},
      {"destroy", "g0/vhba0"}, {"pause", "g0/vhba0"}, {"resume", "g0/vhba0"},
      {"recover", "io0"}, {"crash", "io0", "--restart-after", "50ms"}, {"events"},
  };
}

struct TempDir {
  TempDir() : path(fs::temp_directory_path() / ("visorlab-orch-cli-" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto file = (path / name).string();
    std::ofstream(file) << text;
    return file;
  }
  fs::path path;
};

RunResult vl(std::vector<std::string> args, const std::string& orchestrator = "") {
  args.insert(args.begin(), bin("visorlab"));
  if (!orchestrator.empty()) {
    args.push_back("--orchestrator");
    args.push_back(orchestrator);
  }
  return run(args, 60s);
}

struct NoEnv {
  NoEnv() { ::unsetenv("VISORLAB_ORCHESTRATOR"); }
};

}  // namespace

BOOST_GLOBAL_FIXTURE(NoEnv);

BOOST_AUTO_TEST_CASE(every_new_command_has_help) {
  for (const std::string cmd : {"orchestrator", "up", "down", "devices", "agents", "create", "destroy", "pause",
                                "resume", "recover", "crash", "events"}) {
    const auto r = vl({cmd, "--help"});
    BOOST_TEST(r.exit_code == 0, cmd << ": " << r.err);
    BOOST_TEST(r.out.find(cmd == "orchestrator" ? "--listen" : "--orchestrator") != std::string::npos, cmd << ": " << r.out);
  }
}

BOOST_AUTO_TEST_CASE(without_an_orchestrator_commands_say_how_to_get_one) {
  for (const auto& args : cluster_commands()) {
    if (args[0] == "up") {
      // `up` starts a local cluster instead: this file has no hosts, so it
      // is bad input naming the file, and nothing starts.
      const auto r = vl(args);
      BOOST_TEST(r.exit_code == 2, r.err);
      BOOST_TEST(r.err.find(args[1]) != std::string::npos, r.err);
      continue;
    }
    const auto r = vl(args);
    BOOST_TEST(r.exit_code == 2, args[0] << ": " << r.err);
    BOOST_TEST(r.err.find(kHint) != std::string::npos, args[0] << ": " << r.err);
  }
}

BOOST_AUTO_TEST_CASE(an_unreachable_orchestrator_is_exit_3_naming_it) {
  for (const auto& args : cluster_commands()) {
    const auto r = vl(args, "127.0.0.1:1");
    BOOST_TEST(r.exit_code == 3, args[0] << ": " << r.err);
    BOOST_TEST(r.err.find("127.0.0.1:1") != std::string::npos, args[0] << ": " << r.err);
  }
}

BOOST_AUTO_TEST_CASE(the_environment_variable_picks_the_orchestrator) {
  ::setenv("VISORLAB_ORCHESTRATOR", "127.0.0.1:1", 1);
  const auto r = vl({"agents"});
  ::unsetenv("VISORLAB_ORCHESTRATOR");
  BOOST_TEST(r.exit_code == 3, r.err);
  BOOST_TEST(r.err.find("cannot reach the orchestrator at 127.0.0.1:1") != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(a_malformed_address_is_bad_input) {
  const auto r = vl({"agents"}, "no-port-here");
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no-port-here") != std::string::npos, r.err);
  const auto d = vl({"orchestrator", "--listen", "127.0.0.1:99999"});
  BOOST_TEST(d.exit_code == 2, d.err);
}

BOOST_AUTO_TEST_CASE(a_bad_lease_or_state_dir_is_bad_input_naming_it) {
  for (const char* lease : {"soon", "5ms"}) {
    const auto r = vl({"orchestrator", "--lease", lease});
    BOOST_TEST(r.exit_code == 2, lease << ": " << r.err);
    BOOST_TEST(r.err.find("--lease") != std::string::npos, r.err);
  }
  TempDir tmp;
  const auto state = tmp.write("cluster.json", "{\"version\": 1, \"tag\": ");
  const auto r = vl({"orchestrator", "--listen", "127.0.0.1:0", "--agent-port", "0", "--state-dir", tmp.path.string()});
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("--state-dir") != std::string::npos, r.err);
  BOOST_TEST(r.err.find(state) != std::string::npos, r.err);
}

BOOST_AUTO_TEST_CASE(bad_local_arguments_are_bad_input) {
  TempDir tmp;
  const std::string nowhere = "127.0.0.1:1";  // never reached: the arguments fail first
  auto r = vl({"up", (tmp.path / "missing.yaml").string()}, nowhere);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("missing.yaml") != std::string::npos, r.err);
  r = vl({"crash", "io0", "--restart-after", "soon"}, nowhere);
  BOOST_TEST(r.exit_code == 2, r.err);
  r = vl({"create", "g0", "--kind", "vhba", "--service", "io0", "--disk-size", "lots"}, nowhere);
  BOOST_TEST(r.exit_code == 2, r.err);
  r = vl({"create", "g0", "--kind", "floppy", "--service", "io0"}, nowhere);
  BOOST_TEST(r.exit_code == 2, r.err);
  r = vl({"pause"}, nowhere);
  BOOST_TEST(r.exit_code == 2, r.err);
}

BOOST_AUTO_TEST_CASE(a_fresh_orchestrator_answers_every_command_clearly) {
  Orchestrator o;
  TempDir tmp;

  auto r = vl({"agents"}, o.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.empty(), r.out);

  r = vl({"devices"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no topology is applied") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("visorlab up FILE") != std::string::npos, r.err);

  r = vl({"pause", "nosuch/vhba0"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no device 'nosuch/vhba0'") != std::string::npos, r.err);

  r = vl({"resume", "not-a-device"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("'not-a-device' is not a device name") != std::string::npos, r.err);

  r = vl({"recover", "io9"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no service 'io9'") != std::string::npos, r.err);

  r = vl({"crash", "io9", "--restart-after", "50ms"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);

  r = vl({"create", "g0", "--kind", "vhba", "--service", "io0", "--disk-size", "16MiB"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no topology is applied") != std::string::npos, r.err);

  r = vl({"agents", "--host", "b"}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no agent 'b'") != std::string::npos, r.err);

  r = vl({"down"}, o.address);
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out.find("nothing was applied") != std::string::npos, r.out);

  r = vl({"events"}, o.address);  // the backlog, then the stream ends
  BOOST_TEST(r.exit_code == 0, r.err);

  // A YAML syntax error and a validation error both come back with the
  // file's name, line and column, as exit 2.
  const auto broken = tmp.write("broken.yaml", "version: 1\nname: x\nhosts: [a, b\n");
  r = vl({"up", broken}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(std::regex_search(r.err, std::regex("broken\\.yaml:\\d+:\\d+: ")), r.err);

  const auto wrong = tmp.write("wrong.yaml", "version: 1\nname: x\nhosts:\n  - {name: a}\ncommand: {host: zz}\n");
  r = vl({"up", wrong}, o.address);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(std::regex_search(r.err, std::regex("wrong\\.yaml:5:\\d+: command\\.host: ")), r.err);

  o.process.signal(SIGTERM);
  const auto code = o.process.wait(20s);
  BOOST_TEST_REQUIRE(code.has_value(), "the orchestrator did not stop on SIGTERM");
  BOOST_TEST(*code == 0, o.process.err());
}

BOOST_AUTO_TEST_CASE(events_follow_until_interrupted) {
  Orchestrator o;
  Background follow({bin("visorlab"), "events", "-f", "--orchestrator", o.address});
  std::this_thread::sleep_for(700ms);
  BOOST_TEST(!follow.wait(0ms).has_value(), "events -f ended by itself: " << follow.err());
  follow.signal(SIGINT);
  const auto code = follow.wait(10s);
  BOOST_TEST_REQUIRE(code.has_value(), "events -f did not stop on SIGINT");
  BOOST_TEST(*code == 0, follow.err());

  // A follower does not hold the orchestrator up either.
  Background again({bin("visorlab"), "events", "-f", "--orchestrator", o.address});
  std::this_thread::sleep_for(500ms);
  o.process.signal(SIGTERM);
  const auto stopped = o.process.wait(20s);
  BOOST_TEST_REQUIRE(stopped.has_value(), "the orchestrator did not stop with a follower attached");
  BOOST_TEST(*stopped == 0, o.process.err());
  const auto ended = again.wait(10s);
  BOOST_TEST_REQUIRE(ended.has_value(), "events -f outlived its orchestrator");
  BOOST_TEST(*ended == 3, again.err());
}

BOOST_AUTO_TEST_CASE(ports_are_bound_to_loopback_only) {
  Orchestrator o;
  for (const auto port : {o.port, o.agent_port}) {
    const auto addresses = visorlab::test::listening_addresses(port);
    BOOST_TEST_REQUIRE(!addresses.empty(), "nothing listens on " << port);
    // gRPC binds a dual-stack socket to the v4-mapped loopback address.
    for (const auto& a : addresses)
      BOOST_TEST((a == "127.0.0.1" || a == "::ffff:127.0.0.1"), "port " << port << " listens on " << a);
  }
}

BOOST_AUTO_TEST_CASE(a_taken_port_is_exit_3) {
  Orchestrator first;
  auto r = run({bin("visorlab"), "orchestrator", "--listen", first.address, "--agent-port", "0"}, 30s);
  BOOST_TEST(r.exit_code == 3, r.err);
  BOOST_TEST(r.err.find(first.address) != std::string::npos, r.err);
  BOOST_TEST(r.err.find("taken") != std::string::npos, r.err);

  r = run({bin("visorlab"), "orchestrator", "--listen", "127.0.0.1:0", "--agent-port",
           std::to_string(first.agent_port)},
          30s);
  BOOST_TEST(r.exit_code == 3, r.err);
  BOOST_TEST(r.err.find(std::to_string(first.agent_port)) != std::string::npos, r.err);
}

// --metrics (default 127.0.0.1:0): the daemon's /metrics, announced at start,
// on loopback, accepted by promtool.
BOOST_AUTO_TEST_CASE(the_daemon_serves_metrics_that_promtool_accepts) {
  Orchestrator o;
  BOOST_TEST_REQUIRE(o.metrics_port != 0, "the announcement names no metrics port");
  for (const auto& a : visorlab::test::listening_addresses(o.metrics_port))
    BOOST_TEST((a == "127.0.0.1" || a == "::ffff:127.0.0.1"), "metrics listen on " << a);
  const auto r = visorlab::test::http_get("127.0.0.1", o.metrics_port, "/metrics");
  BOOST_TEST_REQUIRE(r.status == 200, "/metrics answered " << r.status);
  BOOST_TEST(r.body.find("visorlab_") != std::string::npos, r.body);
  const auto promtool = visorlab::test::find_in_path("promtool");
  BOOST_TEST_REQUIRE(promtool.has_value(), "promtool is not in PATH (Debian package `prometheus`)");
  const auto check = visorlab::test::run_with_stdin({*promtool, "check", "metrics"}, r.body);
  BOOST_TEST(check.exit_code == 0, "promtool check metrics failed:\n" << check.output << "\non:\n" << r.body);
  BOOST_TEST(check.output.empty(), "promtool complained:\n" << check.output);

  Orchestrator quiet({"--metrics", "none"});
  BOOST_TEST(quiet.metrics_port == 0);
}

BOOST_AUTO_TEST_CASE(a_bad_metrics_address_is_bad_input) {
  auto r = run({bin("visorlab"), "orchestrator", "--listen", "127.0.0.1:0", "--agent-port", "0", "--metrics",
                "nowhere"},
               30s);
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("--metrics") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("nowhere") != std::string::npos, r.err);
  // A taken metrics port is the machine's fault: 3.
  Orchestrator first;
  r = run({bin("visorlab"), "orchestrator", "--listen", "127.0.0.1:0", "--agent-port", "0", "--metrics",
           "127.0.0.1:" + std::to_string(first.metrics_port)},
          30s);
  BOOST_TEST(r.exit_code == 3, r.err);
}

// A plain daemon does not own its agents: a drill with a kill_agent step is
// refused before anything is applied (exit 2, saying why and what to do).
BOOST_AUTO_TEST_CASE(a_plain_orchestrator_refuses_kill_agent_drills) {
  TempDir tmp;
  const auto file = tmp.write("kill.yaml",
                              "version: 1\nname: kill\nhosts:\n  - {name: a}\ncommand: {host: a}\n"
                              "services:\n  - {name: io0, kind: io, host: a}\n"
                              "guests:\n  - name: g\n    host: a\n    devices:\n"
                              "      - {kind: vhba, service: io0, disk_size: 16MiB}\n"
                              "drill:\n  duration: 3s\n  steps:\n    - {at: 1s, kill_agent: a, restart_after: 500ms}\n");
  Orchestrator o;
  const auto r = vl({"drill", file}, o.address);
  BOOST_TEST(r.exit_code == 2, r.out << r.err);
  BOOST_TEST(r.err.find("kill_agent a") != std::string::npos, r.err);
  BOOST_TEST(r.err.find("visorlab up") != std::string::npos, r.err);
  // Nothing was applied.
  const auto d = vl({"devices"}, o.address);
  BOOST_TEST(d.out.empty(), d.out);

  // Local-only options make no sense with an orchestrator.
  const auto k = vl({"drill", file, "--run-dir", tmp.path.string()}, o.address);
  BOOST_TEST(k.exit_code == 2, k.err);
  BOOST_TEST(k.err.find("--run-dir") != std::string::npos, k.err);
}

// An agent whose partition host cannot stay up (no orchestrator to reach)
// starts it again less and less often, not five times a second; SIGTERM
// still stops it at once, leaving no partition host behind.
BOOST_AUTO_TEST_CASE(an_agent_backs_off_restarting_a_failing_partition_host) {
  TempDir tmp;
  Background agent({bin("visorlab"), "agent", "--host", "a", "--orchestrator", "127.0.0.1:1", "--run-dir",
                    tmp.path.string()});
  std::this_thread::sleep_for(8s);
  agent.signal(SIGTERM);
  const auto code = agent.wait(10s);
  BOOST_TEST_REQUIRE(code.has_value(), "the agent did not stop on SIGTERM");
  BOOST_TEST(*code == 0, agent.err());
  std::string log;  // the agent logs to stdout
  while (const auto line = agent.read_line(1s)) log += *line + "\n";
  std::size_t restarts = 0;
  for (auto at = log.find("starting a new one"); at != std::string::npos; at = log.find("starting a new one", at + 1))
    ++restarts;
  BOOST_TEST_MESSAGE("restarts in 8 s: " << restarts);
  // 0, 200, 400, 800, 1600, 3200 ms apart: 6 or 7; without the back-off 30 or more.
  BOOST_TEST(restarts >= 3u, log);
  BOOST_TEST(restarts <= 9u, log);
  BOOST_TEST(log.find("starting a new one in 800 ms") != std::string::npos, log);
}
