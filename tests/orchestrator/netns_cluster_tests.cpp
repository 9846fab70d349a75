// A cluster across real hosts: three network namespaces (h0, h1, h2), an
// agent in each, the orchestrator in a fourth (outside them), every host on
// its own veth address behind one bridge. Guests and service partitions are
// spread so that most channels cross hosts over TCP. Through the gRPC API
// (the `visorlab` CLI): the agents, the bus tree; then a drill with every
// fault kind — recover and crash of the IO partition (guests resumed, no
// write lost), pause, destroy, create, a network partition, an agent killed
// (and noticed, in the event stream) — judged by the checker.
//
// The orchestrator side runs in a child forked into the fourth namespace
// (the test process itself stays outside every namespace); it reports
// through its exit code and a log the test prints on failure. Skipped
// without root / `ip netns`. TestHosts removes the namespaces whatever
// happens; the cluster tears itself down.
#define BOOST_TEST_MODULE orchestrator_netns
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <caf/actor_system.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "actors/runtime/config.hpp"
#include "drill/runner.hpp"
#include "api/grpc_service.hpp"
#include "orchestrator/local_cluster.hpp"
#include "api/server.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/run.hpp"
#include "topology/load.hpp"

namespace fs = std::filesystem;
namespace utf = boost::unit_test;
namespace orch = visorlab::orchestrator;
using namespace std::chrono_literals;
using visorlab::test::TestHosts;

namespace {

boost::test_tools::assertion_result netns_available(utf::test_unit_id) {
  boost::test_tools::assertion_result ok = TestHosts::available();
  if (!ok) ok.message() << "skipped: needs root and a working `ip netns add`";
  return ok;
}

// Guest names are unique per run: shared-memory channels are named by them.
std::string topology_yaml(const TestHosts& hosts, const std::string& guest) {
  std::ostringstream y;
  y << "version: 1\nname: netns\nhosts:\n";
  for (int i = 0; i < 3; ++i) y << "  - {name: h" << i << ", address: \"" << hosts.address(i) << ":4710\"}\n";
  y << R"(command: {host: h0}
services:
  - name: io0
    kind: io
    host: h1
    switches: [{name: sw0}]
  - {name: con0, kind: console, host: h2}
guests:
  - name: )" << guest << R"(
    count: 3
    host: [h0, h1, h2]
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
      - {kind: vnic, service: io0, switch: sw0}
      - {kind: keyboard, service: con0}
      - {kind: mouse, service: con0}
workload:
  disk:  {block_size: 4KiB, queue_depth: 4, read_ratio: 0.5, verify: true}
  net:   {frame_size: 1500, rate: 200/s}
  input: {rate: 100/s}
drill:
  seed: 7
  duration: 8s
  steps:
    - {at: 1s, recover: io0}
    - {at: 2s, crash: io0, restart_after: 50ms}
    - {at: 3s, pause: )" << guest << R"(0/vnic0, for: 300ms}
    - {at: 3.5s, destroy: )" << guest << R"(2/vhba0}
    - {at: 4s, create: {guest: )" << guest << R"(2, device: {kind: vhba, service: io0, disk_size: 16MiB}}}
    - {at: 5s, partition: [h0, h1], for: 500ms}
    - {at: 6s, kill_agent: h2, restart_after: 1s}
expect: {lost_io: 0}
)";
  return y.str();
}

// The orchestrator's host: runs in the fourth namespace. Returns the number
// of failed checks (0: all held); says what failed in `log`.
int orchestrate(const TestHosts& hosts, const fs::path& dir, const std::string& guest, std::ostream& log) {
  int failed = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      ++failed;
      log << "FAILED: " << what << "\n" << std::flush;
    }
  };
  const auto topo = visorlab::topology::load_string(topology_yaml(hosts, guest), "netns.yaml");
  visorlab::actors::Config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  orch::LocalClusterOptions o;
  o.visorlab_bin = visorlab::test::bin("visorlab");
  o.run_dir = dir;
  o.bind = hosts.address(3);
  for (int i = 0; i < 3; ++i) o.launch_prefix["h" + std::to_string(i)] = {"ip", "netns", "exec", hosts.name(i)};
  orch::LocalCluster local(sys, topo, o);
  local.cluster().apply(topo);

  // The API on the orchestrator host's own address, driven by the CLI.
  visorlab::api::OrchestratorService service(local.cluster());
  visorlab::api::Server server(service, hosts.address(3) + ":0");
  const std::string api = server.address().text();
  auto vl = [&](std::vector<std::string> args) {
    args.insert(args.begin(), visorlab::test::bin("visorlab"));
    args.push_back("--orchestrator");
    args.push_back(api);
    return visorlab::test::run(args, 60s);
  };
  auto r = vl({"agents"});
  check(r.exit_code == 0, "visorlab agents: " + r.err);
  for (int i = 0; i < 3; ++i)
    check(r.out.find("h" + std::to_string(i) + " ") != std::string::npos, "agent h" + std::to_string(i) + " listed:\n" + r.out);
  r = vl({"devices"});
  check(r.exit_code == 0, "visorlab devices: " + r.err);
  for (int g = 0; g < 3; ++g) {
    const std::string name = guest + std::to_string(g);
    for (const std::string& d : {"vbus2:dev0 " + name + "/vhba0 driver=visorhba", "vbus2:dev1 " + name + "/vnic0 driver=visornic",
                                "vbus1:dev0 " + name + "/keyboard0 driver=visorinput",
                                "vbus1:dev1 " + name + "/mouse0 driver=visorinput"})
      check(r.out.find(d) != std::string::npos, "bus tree has '" + d + "':\n" + r.out);
  }
  check(r.out.find("state=running") != std::string::npos, "devices running:\n" + r.out);

  const auto outcome = visorlab::drill::run_drill(local.cluster(), topo, [](const visorlab::drill::DrillProgress&) {});
  log << outcome.summary << std::flush;
  check(outcome.passed, "the drill passed");
  const auto& io = outcome.report["io"];
  check(io["disk"]["lost"] == 0 && io["disk"]["completed"].get<long>() > 0, "disk I/O flowed, none lost: " + io.dump());
  check(io["disk"]["verify_errors"] == 0, "no verify error: " + io.dump());
  std::set<std::string> kinds;
  for (const auto& f : outcome.report["faults"]) kinds.insert(f["kind"].get<std::string>());
  for (const char* k : {"recover", "crash", "pause", "destroy", "create", "partition", "kill_agent"})
    check(kinds.contains(k), std::string("fault ") + k + " ran: " + outcome.report["faults"].dump());

  r = vl({"events"});
  check(r.exit_code == 0, "visorlab events: " + r.err);
  check(r.out.find("agent_lost") != std::string::npos && r.out.find("h2") != std::string::npos,
        "the killed agent was noticed:\n" + r.out);
  service.stop();
  server.shutdown();
  return failed;
}

}  // namespace

BOOST_AUTO_TEST_CASE(three_hosts_drive_a_cluster_and_a_drill_with_every_fault, *utf::precondition(netns_available)) {
  TestHosts hosts(4);  // h0..h2: agents; host 3: the orchestrator
  const fs::path dir = fs::temp_directory_path() / ("visorlab-netns-cluster-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path log_file = dir / "orchestrator.log";
  const std::string guest = "nc" + std::to_string(::getpid()) + "g";
  std::cout.flush();  // the child must not print the parent's buffer again
  const pid_t child = hosts.spawn(3, [&] {
    std::ofstream log(log_file);
    try {
      return std::min(orchestrate(hosts, dir / "run", guest, log), 100);
    } catch (const std::exception& e) {
      log << "FAILED: " << e.what() << "\n";
      return 101;
    }
  });
  const int code = hosts.wait(child, 240s);
  std::ifstream in(log_file);
  const std::string log((std::istreambuf_iterator<char>(in)), {});
  BOOST_TEST(code == 0, "the orchestrator host reported " << code << ":\n" << log);
  BOOST_TEST_MESSAGE(log);
  // Nothing left behind: no agent, partition host or service partition of
  // this run, no shared memory of its guests.
  const auto left = visorlab::test::run({"/bin/sh", "-c", "pgrep -f '[v]isorlab-netns-cluster-" + std::to_string(::getpid()) + "' || true"}, 10s);
  BOOST_TEST(left.out.empty(), "processes left: " << left.out);
  for (const auto& e : fs::directory_iterator("/dev/shm"))
    BOOST_TEST(e.path().filename().string().find(guest) == std::string::npos, "left in /dev/shm: " << e.path());
  if (code == 0) fs::remove_all(dir);
}
