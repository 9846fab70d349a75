// Tearing a cluster down never waits on hosts it has nothing left on: a
// local cluster tears down, stops its agents, then destroys its Cluster,
// which tears down again — by then the hosts are gone, and the orchestrator
// may not have heard yet (with 66 hosts a Ctrl-C once took 10 s per host).
// A stopped (SIGSTOP) partition host stands in for one not yet known dead:
// it keeps its connection and answers nothing.
#define BOOST_TEST_MODULE orchestrator_teardown
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "actors/runtime/config.hpp"
#include "orchestrator/local_cluster.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/run.hpp"
#include "topology/load.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const std::string kGuest = "td" + std::to_string(::getpid()) + "g";

const std::string kTopology = R"(version: 1
name: teardown
hosts:
  - {name: a}
command: {host: a}
services:
  - {name: io0, kind: io, host: a, switches: [{name: sw0}]}
guests:
  - name: )" + kGuest + R"(
    host: a
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
)";

}  // namespace

BOOST_AUTO_TEST_CASE(a_second_teardown_does_not_wait_on_a_host_that_answers_nothing) {
  const fs::path dir = fs::temp_directory_path() / ("visorlab-teardown-" + std::to_string(::getpid()));
  const auto topo = visorlab::topology::load_string(kTopology, "teardown.yaml");
  visorlab::actors::Config cfg;
  caf::actor_system sys(cfg);
  visorlab::orchestrator::LocalClusterOptions o;
  o.visorlab_bin = visorlab::test::bin("visorlab");
  o.run_dir = dir;
  auto local = std::make_unique<visorlab::orchestrator::LocalCluster>(sys, topo, o);
  local->cluster().apply(topo);
  local->cluster().teardown();

  const auto hosts = visorlab::test::visorlab_processes([&](const auto& argv, const auto&) {
    return std::find(argv.begin(), argv.end(), "partition-host") != argv.end() &&
           std::find(argv.begin(), argv.end(), dir.string()) != argv.end();
  });
  BOOST_TEST_REQUIRE(hosts.size() == 1u);
  const pid_t host = hosts.begin()->first;
  ::kill(host, SIGSTOP);
  const auto from = std::chrono::steady_clock::now();
  local->cluster().teardown();
  const auto took = std::chrono::steady_clock::now() - from;
  ::kill(host, SIGCONT);
  BOOST_TEST(took < 2s, "the second teardown took "
                            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  local.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}
