// The bench binaries keep the DESIGN.md output contract. A tiny run checks the
// shape of every line, never a speed: speed goals live in bench/, not in tests.
#define BOOST_TEST_MODULE bench_contract
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/netns.hpp"
#include "tests/support/run.hpp"

using nlohmann::json;
using visorlab::test::bin;
using visorlab::test::run;
using visorlab::test::RunResult;

namespace {

// Checks every stdout line is one contract object and returns their names.
std::set<std::string> contract_names(const RunResult& r) {
  std::istringstream lines(r.out);
  std::set<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line);
    for (const char* key : {"name", "value", "unit", "baseline", "baseline_value", "ratio"})
      BOOST_TEST(j.contains(key), key << " missing in " << line);
    BOOST_TEST(j.size() == 6u, "extra keys in " << line);
    // A count that must stay 0 (drill_lost_io) prints 0 against a target of 0.
    if (j["unit"] == "count") {
      BOOST_TEST(j["value"].get<double>() >= 0);
      BOOST_TEST(j["baseline_value"].get<double>() >= 0);
    } else {
      BOOST_TEST(j["value"].get<double>() > 0);
      BOOST_TEST(j["baseline_value"].get<double>() > 0);
    }
    BOOST_TEST(j["ratio"].get<double>() > 0);
    BOOST_TEST(names.insert(j["name"].get<std::string>()).second, "name twice: " << line);
  }
  return names;
}

bool in_path(const std::string& program) {
  std::istringstream dirs(std::getenv("PATH") ? std::getenv("PATH") : "");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_CASE(channel_bench_prints_one_contract_object_per_line) {
  const auto r = run({bin("channel_bench"), "--json", "--rounds", "1", "--signals", "20000"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  const std::set<std::string> expected = {"channel_throughput_inprocess", "channel_throughput_crossprocess",
                                          "channel_pingpong_rtt", "channel_batch32"};
  BOOST_TEST((contract_names(r) == expected));
}

// fio is the vhba line's baseline, measured in the same run: without it the
// bench must say so and fail, not print a candidate-only number.
BOOST_AUTO_TEST_CASE(io_bench_prints_the_vhba_and_vnic_lines) {
  const auto r = run({bin("io_bench"), "--json", "--rounds", "1", "--seconds", "0.2", "--size", "8"});
  if (!in_path("fio")) {
    BOOST_TEST(r.exit_code != 0);
    BOOST_TEST(r.out.empty(), r.out);
    BOOST_TEST(r.err.find("fio not found") != std::string::npos, r.err);
    return;
  }
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST((contract_names(r) == std::set<std::string>{"vhba_iops_4k_randrw", "vnic_frames_1500"}));
  BOOST_TEST(r.out.find("\"unit\":\"IOPS\",\"baseline\":\"fio_psync\"") != std::string::npos, r.out);
  BOOST_TEST(r.out.find("\"unit\":\"frames/s\",\"baseline\":\"unix_seqpacket_1500\"") != std::string::npos,
             r.out);
}

// The vnic line needs no fio and no scratch file: --only runs it alone.
BOOST_AUTO_TEST_CASE(io_bench_runs_the_vnic_line_alone) {
  const auto r = run({bin("io_bench"), "--json", "--rounds", "1", "--seconds", "0.2", "--only", "vnic"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST((contract_names(r) == std::set<std::string>{"vnic_frames_1500"}));
}

// The _netns lines come only where network namespaces can be made (root).
BOOST_AUTO_TEST_CASE(transport_bench_prints_loopback_and_netns_lines) {
  const auto r = run({bin("transport_bench"), "--json", "--rounds", "1", "--signals", "20000"},
                     std::chrono::seconds(100));
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  std::set<std::string> expected;
  for (const char* name : {"transport_stream_batch32", "transport_stream_single", "transport_pingpong_p50",
                           "transport_vs_caf", "transport_bytes_4k"}) {
    expected.insert(name);
    if (visorlab::test::TestHosts::available()) expected.insert(std::string(name) + "_netns");
  }
  BOOST_TEST((contract_names(r) == expected));

  const auto skipped = run({bin("transport_bench"), "--json", "--rounds", "1", "--signals", "20000", "--no-netns",
                            "--only", "pingpong"});
  BOOST_TEST_REQUIRE(skipped.exit_code == 0, skipped.err);
  BOOST_TEST((contract_names(skipped) == std::set<std::string>{"transport_pingpong_p50"}));
}

// Two small crash drills on a local cluster (agents are `visorlab agent`
// processes from VISORLAB_BIN): every line of issue 6's targets, in the contract
// (the 16-host fleet drill is left out: minutes, not seconds).
BOOST_AUTO_TEST_CASE(drill_bench_prints_the_drill_lines) {
  const auto r = run({bin("drill_bench"), "--json", "--guests", "2", "--crashes", "2", "--spacing", "0.5", "--no-fleet"},
                     std::chrono::seconds(150));
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST((contract_names(r) == std::set<std::string>{"drill_crash_resumed_p99", "drill_stall_p99", "drill_lost_io",
                                                         "drill_overhead_iops"}));
  BOOST_TEST(r.out.find("\"name\":\"drill_lost_io\",\"value\":0") != std::string::npos, r.out);
}

// A small local cluster (5 guests × 4 devices; 16 guests for the recoveries;
// the default topology and a 16-host fleet idle): every line of the cluster
// targets, in the contract.
BOOST_AUTO_TEST_CASE(cluster_bench_prints_the_cluster_lines) {
  const auto r = run({bin("cluster_bench"), "--json", "--rounds", "1", "--guests", "5", "--idle-seconds", "0.5",
                      "--settle-seconds", "1", "--lease-runs", "2"},
                     std::chrono::seconds(200));
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  BOOST_TEST((contract_names(r) == std::set<std::string>{"cluster_devices_up", "cluster_recover_p99", "cluster_crash_p99",
                                                         "cluster_host_rss", "cluster_idle_cpu",
                                                         "cluster_idle_cpu_fleet", "cluster_readopt",
                                                         "cluster_lease_revert_p99"}));
}

// A bad option names itself and stops before any cluster starts.
BOOST_AUTO_TEST_CASE(cluster_bench_refuses_a_bad_lease_run_count) {
  for (const char* bad : {"0", "101", "x"}) {
    const auto r = run({bin("cluster_bench"), "--json", "--lease-runs", bad}, std::chrono::seconds(30));
    BOOST_TEST(r.exit_code == 64, bad << ": " << r.err);
    BOOST_TEST(r.err.find("--lease-runs") != std::string::npos, r.err);
    BOOST_TEST(r.out.empty(), r.out);
  }
}

BOOST_AUTO_TEST_CASE(cluster_bench_refuses_a_bad_guest_count) {
  for (const char* bad : {"0", "1001", "x"}) {
    const auto r = run({bin("cluster_bench"), "--json", "--guests", bad}, std::chrono::seconds(30));
    BOOST_TEST(r.exit_code == 64, bad << ": " << r.err);
    BOOST_TEST(r.err.find("--guests") != std::string::npos, r.err);
    BOOST_TEST(r.out.empty(), r.out);
  }
}
