#define BOOST_TEST_MODULE cli_drill
#include <boost/test/unit_test.hpp>
// `visorlab drill` run as a user would: the real binary, real processes, real
// shared memory.

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/run.hpp"

namespace fs = std::filesystem;
using visorlab::test::bin;
using visorlab::test::run;

namespace {

constexpr std::string_view kShmPrefix = "visorlab-drill-";

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The summary row of one channel: the line that starts with its name.
std::string summary_row(const std::string& output, const std::string& device) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(device + " ", 0) == 0) return line;
  return "";
}

// Drill channel names in /dev/shm ("visorlab-drill-<pid>-<type>") whose
// creating process is gone: those were leaked.
std::set<std::string> leaked_drill_channels() {
  std::set<std::string> leaked;
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kShmPrefix, 0) != 0) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + kShmPrefix.size()));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) leaked.insert(name);
  }
  return leaked;
}

}  // namespace

BOOST_AUTO_TEST_CASE(channel_drill_passes_on_the_builtin_device_set) {
  const auto before = leaked_drill_channels();
  const fs::path report = fs::temp_directory_path() / ("visorlab-drill-test-" + std::to_string(getpid()) + ".json");
  const auto r = run({bin("visorlab"), "drill", "--signals", "2000", "--report", report.string()});
  BOOST_TEST_INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  BOOST_TEST_REQUIRE(!r.timed_out);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.out, "channel drill on the built-in device set"));
  for (const std::string device : {"controlvm", "vhba", "vnic", "keyboard", "mouse"}) {
    const std::string row = summary_row(r.out, device);
    BOOST_TEST_INFO(device << " row: '" << row << "'");
    BOOST_TEST(contains(row, " 2000 "));
    BOOST_TEST(contains(row, "pass"));
  }
  BOOST_TEST(contains(r.out, "0 pause guard violations"));
  BOOST_TEST(contains(r.out, "result: pass"));

  std::ifstream file(report);
  BOOST_TEST_REQUIRE(file.good(), "no report at " << report);
  const auto json = nlohmann::json::parse(file);
  BOOST_TEST(json["visorlab_report"] == 1);
  BOOST_TEST(json["result"] == "pass");
  BOOST_TEST(json["channels"].size() == 5u);
  for (const auto& c : json["channels"]) {
    BOOST_TEST(c["sent"] == 2000);
    BOOST_TEST(c["received"] == 2000);
    BOOST_TEST(c["lost"] == 0);
    BOOST_TEST(c["result"] == "pass");
  }
  BOOST_TEST(json["faults"].size() == 1u);
  file.close();
  fs::remove(report);

  for (const auto& name : leaked_drill_channels()) BOOST_TEST(before.count(name) == 1u, "left behind: /dev/shm/" << name);
}

BOOST_AUTO_TEST_CASE(drill_with_a_topology_file_is_refused_with_exit_2) {
  const auto r = run({bin("visorlab"), "drill", "some-file.yaml"});
  BOOST_TEST_INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  BOOST_TEST(r.exit_code == 2);
  BOOST_TEST(contains(r.err, "some-file.yaml"));
  BOOST_TEST(contains(r.err, "topology files arrive with the drill engine; run `visorlab drill` without a file"));
}

BOOST_AUTO_TEST_CASE(drill_help_exits_0) {
  const auto r = run({bin("visorlab"), "drill", "--help"});
  BOOST_TEST_INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.out, "--signals"));
  BOOST_TEST(contains(r.out, "--report"));
}

BOOST_AUTO_TEST_CASE(drill_refuses_bad_options_with_exit_2) {
  BOOST_TEST(run({bin("visorlab"), "drill", "--signals", "0"}).exit_code == 2);
  BOOST_TEST(run({bin("visorlab"), "drill", "--report", "/nonexistent-dir/r.json"}).exit_code == 2);
}
