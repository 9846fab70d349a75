// The bench binaries keep the DESIGN.md output contract. A tiny run checks the
// shape of every line, never a speed: speed goals live in bench/, not in tests.
#define BOOST_TEST_MODULE bench_contract
#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tests/support/run.hpp"

using nlohmann::json;
using visorlab::test::bin;
using visorlab::test::run;

BOOST_AUTO_TEST_CASE(channel_bench_prints_one_contract_object_per_line) {
  const auto r = run({bin("channel_bench"), "--json", "--rounds", "1", "--signals", "20000"});
  BOOST_TEST_REQUIRE(r.exit_code == 0, r.err);
  std::istringstream lines(r.out);
  std::set<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    const json j = json::parse(line);
    for (const char* key : {"name", "value", "unit", "baseline", "baseline_value", "ratio"})
      BOOST_TEST(j.contains(key), key << " missing in " << line);
    BOOST_TEST(j["value"].get<double>() > 0);
    BOOST_TEST(j["baseline_value"].get<double>() > 0);
    BOOST_TEST(j["ratio"].get<double>() > 0);
    names.insert(j["name"].get<std::string>());
  }
  const std::set<std::string> expected = {"channel_throughput_inprocess", "channel_throughput_crossprocess",
                                          "channel_pingpong_rtt", "channel_batch32"};
  BOOST_TEST((names == expected));
}
