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

// Starts the drill in the default (temporary) run dir and waits for it to run.
struct Interrupted {
  explicit Interrupted(const fs::path& file)
      : drill({bin("visorlab"), "drill", file.string()}),
        run_dir(fs::temp_directory_path() / ("visorlab-drill-" + std::to_string(drill.pid()))) {
    for (int i = 0; i < 240 && !running; ++i)
      if (const auto line = drill.read_line(1000ms)) running = contains(*line, "step:");
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
  const fs::path file = s.dir / "many.yaml";
  write_text(file, many_hosts(66));
  Interrupted d(file);
  BOOST_TEST_REQUIRE(d.running, "the drill never ran: " << d.drill.err());
  BOOST_TEST(processes_of(d.run_dir).size() >= 66u * 2);  // an agent and a partition host per host
  d.drill.signal(SIGINT);
  // Promptly: the 50 s pause under way is reverted at once, not waited out.
  const auto code = d.drill.wait(30s);
  BOOST_TEST_REQUIRE(code.has_value(), "still running 30 s after Ctrl-C");
  BOOST_TEST(*code == 130, d.drill.err());
  BOOST_TEST(contains(d.drill.err(), "SIGINT: stopping"), d.drill.err());
  BOOST_TEST(contains(d.drill.err(), "interrupted (SIGINT): every process stopped"), d.drill.err());
  expect_nothing_left(d);
}

BOOST_AUTO_TEST_CASE(sigterm_stops_it_the_same_way) {
  Scratch s;
  const fs::path file = s.dir / "one.yaml";
  write_text(file, many_hosts(1));
  Interrupted d(file);
  BOOST_TEST_REQUIRE(d.running, "the drill never ran: " << d.drill.err());
  std::this_thread::sleep_for(1500ms);  // into the 50 s pause
  d.drill.signal(SIGTERM);
  const auto code = d.drill.wait(20s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 130, d.drill.err());
  BOOST_TEST(contains(d.drill.err(), "interrupted (SIGTERM)"), d.drill.err());
  expect_nothing_left(d);
}

BOOST_AUTO_TEST_CASE(a_second_ctrl_c_forces_and_still_leaves_nothing) {
  Scratch s;
  const fs::path file = s.dir / "two.yaml";
  write_text(file, many_hosts(3));
  Interrupted d(file);
  BOOST_TEST_REQUIRE(d.running, "the drill never ran: " << d.drill.err());
  d.drill.signal(SIGINT);
  std::this_thread::sleep_for(100ms);
  d.drill.signal(SIGINT);
  const auto code = d.drill.wait(30s);
  BOOST_TEST_REQUIRE(code.has_value());
  BOOST_TEST(*code == 130, d.drill.err());
  BOOST_TEST(contains(d.drill.err(), "forcing"), d.drill.err());
  expect_nothing_left(d);
}
