#define BOOST_TEST_MODULE cli_interrupt
#include <boost/test/unit_test.hpp>
// Ctrl-C (SIGINT) and SIGTERM of a local `visorlab drill`, as a user at a
// terminal does it: the drill stops, every process it started goes (however
// many hosts: more than 64 here), its shared memory and its temporary run dir
// are removed, it says so and exits 130 — promptly: a fault held for 50 s is
// reverted at once. A second Ctrl-C forces the same.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/orchestrator/daemon.hpp"
#include "tests/support/leftovers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/scratch.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using visorlab::test::Background;
using visorlab::test::bin;
using visorlab::test::Scratch;
using visorlab::test::write_text;

namespace {

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// `hosts` hosts; everything runs on the first, the others are idle agents
// and partition hosts — what a fleet drill's Ctrl-C must stop too.
std::string many_hosts(int hosts) {
  std::string text = "version: 1\nname: interrupted\nhosts:\n";
  for (int i = 0; i < hosts; ++i) text += "  - {name: h" + std::to_string(i) + "}\n";
  text +=
      "command: {host: h0}\n"
      "services:\n"
      "  - {name: io0, kind: io, host: h0, switches: [{name: sw0}]}\n"
      "guests:\n"
      "  - name: g\n"
      "    count: 2\n"
      "    host: h0\n"
      "    devices:\n"
      "      - {kind: vhba, service: io0, disk_size: 16MiB}\n"
      "workload:\n"
      "  disk: {queue_depth: 8}\n"
      "drill:\n"
      "  duration: 60s\n"
      "  steps:\n"
      "    - {at: 1s, pause: g0/vhba0, for: 50s}\n";
  return text;
}

// Agents, partition hosts and service partitions of the drill whose run dir is `run_dir`.
std::map<pid_t, std::string> processes_of(const fs::path& run_dir) {
  return visorlab::test::visorlab_processes([&](const auto& argv, const auto&) {
    return std::find(argv.begin(), argv.end(), run_dir.string()) != argv.end();
  });
}

// Writes a `hosts`-host drill, starts it in the default (temporary) run dir
// and waits for it to run.
struct Interrupted {
  Interrupted(const Scratch& s, int hosts) : Interrupted(written(s, hosts)) {}
  explicit Interrupted(const fs::path& file)
      : drill({bin("visorlab"), "drill", file.string()}),
        run_dir(fs::temp_directory_path() / ("visorlab-drill-" + std::to_string(drill.pid()))) {
    for (int i = 0; i < 240 && !running; ++i)
      if (const auto line = drill.read_line(1000ms)) running = contains(*line, "step:");
  }
  static fs::path written(const Scratch& s, int hosts) {
    const fs::path file = s.dir / ("hosts-" + std::to_string(hosts) + ".yaml");
    write_text(file, many_hosts(hosts));
    return file;
  }

  // It exits 130 within `limit`, its stderr saying `says`.
  void expect_stopped(std::chrono::seconds limit, const std::string& says) {
    const auto code = drill.wait(limit);
    BOOST_TEST_REQUIRE(code.has_value(), "still running " << limit.count() << " s after the signal");
    BOOST_TEST(*code == 130, drill.err());
    BOOST_TEST(contains(drill.err(), says), drill.err());
  }

  Background drill;
  fs::path run_dir;
  bool running = false;
};

void expect_nothing_left(const Interrupted& d) {
  auto left = processes_of(d.run_dir);
  for (int i = 0; i < 30 && !left.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
    left = processes_of(d.run_dir);
  }
  BOOST_TEST(left.size() == 0u);
  for (const auto& [pid, cmdline] : left) {
    BOOST_ERROR("left process " << pid << " running: " << cmdline);
    ::kill(pid, SIGKILL);
  }
  for (const auto& name : visorlab::test::shm_of_orchestrator(d.drill.pid())) {
    BOOST_ERROR("left /dev/shm/" << name);
    fs::remove(fs::path("/dev/shm") / name);
  }
  BOOST_TEST(!fs::exists(d.run_dir), "the temporary run dir is left: " << d.run_dir);
  std::error_code ec;
  fs::remove_all(d.run_dir, ec);
}

}  // namespace

BOOST_AUTO_TEST_CASE(ctrl_c_of_a_66_host_drill_stops_everything_and_removes_its_files) {
  Scratch s;
  Interrupted d(s, 66);
  BOOST_TEST_REQUIRE(d.running, "the drill never ran: " << d.drill.err());
  BOOST_TEST(processes_of(d.run_dir).size() >= 66u * 2);  // an agent and a partition host per host
  d.drill.signal(SIGINT);
  // Promptly: the 50 s pause under way is reverted at once, not waited out.
  d.expect_stopped(30s, "interrupted (SIGINT): every process stopped");
  BOOST_TEST(contains(d.drill.err(), "SIGINT: stopping"), d.drill.err());
  expect_nothing_left(d);
}

BOOST_AUTO_TEST_CASE(sigterm_stops_it_the_same_way) {
  Scratch s;
  Interrupted d(s, 1);
  BOOST_TEST_REQUIRE(d.running, "the drill never ran: " << d.drill.err());
  std::this_thread::sleep_for(1500ms);  // into the 50 s pause
  d.drill.signal(SIGTERM);
  d.expect_stopped(20s, "interrupted (SIGTERM)");
  expect_nothing_left(d);
}

BOOST_AUTO_TEST_CASE(a_second_ctrl_c_forces_and_still_leaves_nothing) {
  Scratch s;
  Interrupted d(s, 3);
  BOOST_TEST_REQUIRE(d.running, "the drill never ran: " << d.drill.err());
  d.drill.signal(SIGINT);
  std::this_thread::sleep_for(100ms);
  d.drill.signal(SIGINT);
  d.expect_stopped(30s, "forcing");
  expect_nothing_left(d);
}
