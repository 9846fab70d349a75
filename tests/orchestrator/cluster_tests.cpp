// A whole cluster on loopback: the orchestrator daemon, one agent, a small
// topology applied with `visorlab up`, then every cluster command and the
// RunDrill stream, as a user and as automation would drive them.
#define BOOST_TEST_MODULE orchestrator_cluster
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "tests/orchestrator/daemon.hpp"
#include "tests/support/run.hpp"
#include "visorlab/v1/orchestrator.grpc.pb.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using visorlab::test::Background;
using visorlab::test::bin;
using visorlab::test::Orchestrator;
using visorlab::test::run;
using visorlab::test::RunResult;
namespace v1 = visorlab::v1;

namespace {

// Guest names are unique per run: channels live in /dev/shm under them.
const std::string kGuest = "oe" + std::to_string(::getpid()) + "g";
const std::string g0 = kGuest + "0", g1 = kGuest + "1";

const std::string kTopology = R"(version: 1
name: e2e
hosts:
  - {name: a}
command: {host: a}
services:
  - name: io0
    kind: io
    host: a
    switches: [{name: sw0}]
  - {name: con0, kind: console, host: a}
guests:
  - name: )" + kGuest + R"(
    count: 2
    host: a
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
      - {kind: vnic, service: io0, switch: sw0}
      - {kind: keyboard, service: con0}
      - {kind: mouse, service: con0}
drill:
  seed: 3
  duration: 3s
  steps:
    - {at: 1s, recover: io0}
expect: {lost_io: 0}
)";

struct Cluster {
  Cluster()
      : dir(fs::temp_directory_path() / ("visorlab-orch-e2e-" + std::to_string(::getpid()))),
        orchestrator({"--run-dir", (dir / "orchestrator").string()}),
        agent({bin("visorlab"), "agent", "--host", "a", "--orchestrator",
               "127.0.0.1:" + std::to_string(orchestrator.agent_port), "--run-dir", (dir / "agent-a").string()}) {
    fs::create_directories(dir);
    std::ofstream(file()) << kTopology;
  }
  ~Cluster() {
    orchestrator.process.signal(SIGTERM);
    orchestrator.process.wait(30s);
    agent.signal(SIGTERM);
    agent.wait(20s);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string file() const { return (dir / "e2e.yaml").string(); }
  RunResult vl(std::vector<std::string> args, std::chrono::seconds timeout = 120s) {
    args.insert(args.begin(), bin("visorlab"));
    args.push_back("--orchestrator");
    args.push_back(orchestrator.address);
    return run(args, timeout);
  }
  fs::path dir;
  Orchestrator orchestrator;
  Background agent;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(drive_a_cluster_with_every_command, Cluster) {
  // The agent registers on its own; wait for it.
  RunResult r;
  for (int i = 0; i < 100; ++i) {
    r = vl({"agents"});
    if (r.out.find(" up ") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST_REQUIRE(r.out.rfind("a ", 0) == 0, r.out << agent.err());

  r = vl({"up", file()});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err << orchestrator.process.err());
  BOOST_TEST(r.out.find("applied e2e: 2 guests, 8 devices") != std::string::npos, r.out);

  r = vl({"up", file()});
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("already applied") != std::string::npos, r.err);

  // DESIGN.md's bus-tree line, one per device.
  r = vl({"devices"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  const std::regex line(
      R"(vbus([12]):dev(\d+) )" + kGuest +
      R"([01]/(vhba|vnic|keyboard|mouse)\d+ driver=visor(hba|nic|input) typeguid=[0-9a-f-]{36} nbytes=[1-9]\d* state=running)");
  const auto listed = lines(r.out);
  BOOST_TEST(listed.size() == 8u, r.out);
  for (const auto& l : listed) BOOST_TEST(std::regex_match(l, line), l);
  BOOST_TEST(r.out.find("vbus2:dev0 " + g0 + "/vhba0 driver=visorhba typeguid=") != std::string::npos, r.out);

  r = vl({"pause", g0 + "/vhba0"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"devices", "--guest", g0});
  BOOST_TEST(std::regex_search(r.out, std::regex(g0 + "/vhba0 .* state=paused")), r.out);
  BOOST_TEST(lines(r.out).size() == 4u, r.out);
  r = vl({"pause", g0 + "/vhba0"});
  BOOST_TEST(r.exit_code == 2, r.err);
  r = vl({"resume", g0 + "/vhba0"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"pause", g0 + "/vhba7"});
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("no device '" + g0 + "/vhba7' on guest '" + g0 + "'") != std::string::npos, r.err);

  r = vl({"recover", "io0"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(recover io0: 4 devices, pause [\d.]+ ms, restart [\d.]+ ms, resume [\d.]+ ms, total [\d.]+ ms)")), r.out);
  r = vl({"crash", "con0", "--restart-after", "50ms"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(crash con0: 4 devices, detect [\d.]+ ms, pause)")), r.out);

  r = vl({"create", g1, "--kind", "vhba", "--service", "io0", "--disk-size", "16MiB"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out == "created " + g1 + "/vhba1 at vbus2:dev2\n", r.out);
  r = vl({"create", g1, "--kind", "vnic", "--service", "io0", "--switch", "nosuch"});
  BOOST_TEST(r.exit_code == 2, r.err);
  BOOST_TEST(r.err.find("unknown switch 'nosuch'") != std::string::npos, r.err);
  r = vl({"create", g1, "--kind", "keyboard", "--service", "io0"});
  BOOST_TEST(r.exit_code == 2, r.err);
  r = vl({"destroy", g1 + "/vhba1"});
  BOOST_TEST(r.exit_code == 0, r.err);
  r = vl({"destroy", g1 + "/vhba1"});
  BOOST_TEST(r.exit_code == 2, r.err);
  r = vl({"devices", "--guest", g1});
  BOOST_TEST(r.out.find(g1 + "/vhba1") == std::string::npos, r.out);

  r = vl({"events"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(std::regex_search(r.out, std::regex(R"(#\d+ device_paused )" + g0 + "/vhba0")), r.out);

  r = vl({"down"});
  BOOST_TEST(r.exit_code == 0, r.err);
  BOOST_TEST(r.out == "tore down e2e\n", r.out);
  r = vl({"devices"});
  BOOST_TEST(r.exit_code == 2, r.err);

  // RunDrill: progress while it runs, then the report, then the end.
  auto channel = grpc::CreateChannel(orchestrator.address, grpc::InsecureChannelCredentials());
  auto stub = v1::Orchestrator::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 120s);
  v1::RunDrillRequest req;
  req.set_topology_yaml(kTopology);
  req.set_file_label("e2e.yaml");
  auto reader = stub->RunDrill(&ctx, req);
  v1::DrillEvent event;
  int progress = 0, reports = 0;
  v1::DrillReport report;
  while (reader->Read(&event)) {
    if (event.has_progress()) {
      BOOST_TEST(reports == 0, "progress after the report");
      ++progress;
    } else if (event.has_report()) {
      ++reports;
      report = event.report();
    }
  }
  const auto status = reader->Finish();
  BOOST_TEST_REQUIRE(status.ok(), status.error_message() << orchestrator.process.err());
  BOOST_TEST(progress >= 2);
  BOOST_TEST(reports == 1);
  BOOST_TEST(report.json().find("\"visorlab_report\": 1") != std::string::npos, report.json().substr(0, 200));
  BOOST_TEST(report.svg().find("<svg") != std::string::npos);
  BOOST_TEST(!report.summary().empty());

  r = vl({"down"});
  BOOST_TEST(r.exit_code == 0, r.err);
}
