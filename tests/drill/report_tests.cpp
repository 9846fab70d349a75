// The report: DESIGN.md's JSON contract, every field there with the value the
// history gives; the text summary; and the SVG plot, well-formed and labelled.
#include <boost/test/unit_test.hpp>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

#include <set>
#include <sstream>
#include <string>

#include "drill/plot.hpp"
#include "drill/report.hpp"
#include "synthetic.hpp"

using namespace visorlab::drill;
using namespace visorlab::drill::test;
namespace topo = visorlab::topology;
using json = nlohmann::ordered_json;

namespace {

std::set<std::string> keys(const json& object) {
  std::set<std::string> out;
  for (const auto& [k, v] : object.items()) out.insert(k);
  return out;
}

// The clean drill with a violation and a tight recovery limit: it fails.
History failing_drill() {
  History h = clean_drill();
  h.violations.push_back(Violation{"pause_guard", "g0/vhba0", ms(1020), "insert on queue 0 while paused"});
  return h;
}

topo::Expect limits() {
  topo::Expect e;
  e.lost_io = 0;
  e.max_recovery = std::chrono::milliseconds(50);
  e.others.push_back({"max_stall_ms", 200});
  return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report)

BOOST_AUTO_TEST_CASE(the_json_has_every_contract_field_and_nothing_else) {
  const History h = failing_drill();
  const json j = report_json(h, check(h, limits()));
  BOOST_TEST(keys(j) == (std::set<std::string>{"visorlab_report", "name", "seed", "result", "final_read", "duration_s",
                                                "io", "faults", "violations", "expect"}));
  BOOST_TEST(keys(j["final_read"]) == (std::set<std::string>{"blocks", "ok", "bad"}));
  BOOST_TEST(keys(j["io"]) == (std::set<std::string>{"disk", "net", "input"}));
  BOOST_TEST(keys(j["io"]["disk"]) == (std::set<std::string>{"issued", "completed", "retried", "lost", "duplicated",
                                                              "verify_errors", "iops", "latency_us"}));
  BOOST_TEST(keys(j["io"]["disk"]["latency_us"]) == (std::set<std::string>{"p50", "p99", "max"}));
  BOOST_TEST(keys(j["io"]["net"]) == (std::set<std::string>{"sent", "received", "dropped", "dropped_outside_faults"}));
  BOOST_TEST(keys(j["io"]["input"]) == (std::set<std::string>{"sent", "delivered", "lost", "out_of_order"}));
  BOOST_REQUIRE_EQUAL(j["faults"].size(), 1u);
  BOOST_TEST(keys(j["faults"][0]) == (std::set<std::string>{"step", "kind", "target", "at_s", "detect_ms", "pause_ms",
                                                             "restart_ms", "resume_ms", "total_ms", "stall_ms"}));
  BOOST_REQUIRE_EQUAL(j["violations"].size(), 1u);
  BOOST_TEST(keys(j["violations"][0]) == (std::set<std::string>{"kind", "device", "at_s", "detail"}));
  BOOST_REQUIRE_EQUAL(j["expect"].size(), 3u);
  BOOST_TEST(keys(j["expect"][0]) == (std::set<std::string>{"what", "limit", "value", "ok"}));
}

BOOST_AUTO_TEST_CASE(the_json_values_come_from_the_history) {
  const History h = failing_drill();
  const json j = report_json(h, check(h, limits()));
  BOOST_TEST(j["visorlab_report"] == 1);
  BOOST_TEST(j["name"] == "clean");
  BOOST_TEST(j["seed"] == 7);
  BOOST_TEST(j["result"] == "fail");
  BOOST_TEST(j["duration_s"] == 2);
  const auto& disk = j["io"]["disk"];
  BOOST_TEST(disk["issued"] == 193);
  BOOST_TEST(disk["completed"] == 193);
  BOOST_TEST(disk["retried"] == 1);
  BOOST_TEST(disk["lost"] == 0);
  BOOST_TEST(disk["duplicated"] == 0);
  BOOST_TEST(disk["verify_errors"] == 0);
  BOOST_TEST(disk["iops"] == 96.5);
  BOOST_TEST(disk["latency_us"]["p50"] == 1000);
  BOOST_TEST(disk["latency_us"]["p99"] == 1000);
  BOOST_TEST(disk["latency_us"]["max"] == 75000);
  BOOST_TEST(j["io"]["net"] == json::parse(R"({"sent":40,"received":39,"dropped":1,"dropped_outside_faults":0})"));
  BOOST_TEST(j["io"]["input"] == json::parse(R"({"sent":10,"delivered":10,"lost":0,"out_of_order":0})"));
  BOOST_TEST(j["faults"][0] == json::parse(R"({"step":0,"kind":"crash","target":"io0","at_s":1,"detect_ms":10,
      "pause_ms":5,"restart_ms":45,"resume_ms":10,"total_ms":70,"stall_ms":89})"));
  BOOST_TEST(j["violations"][0] == json::parse(R"({"kind":"pause_guard","device":"g0/vhba0","at_s":1.02,
      "detail":"insert on queue 0 while paused"})"));
  BOOST_TEST(j["expect"] == json::parse(R"([{"what":"lost_io","limit":0,"value":0,"ok":true},
      {"what":"max_recovery_ms","limit":50,"value":70,"ok":false},
      {"what":"max_stall_ms","limit":200,"value":89,"ok":true}])"));
}

BOOST_AUTO_TEST_CASE(the_json_reads_in_the_contracts_order) {
  const History h = clean_drill();
  const auto text = report_json(h, check(h, {})).dump();
  BOOST_TEST(text.rfind(R"({"visorlab_report":1,"name":"clean","seed":7,"result":"pass","final_read":{"blocks":0,"ok":0,"bad":0},"duration_s":2,"io":{"disk":{"issued":193,)", 0) == 0u, text);
  BOOST_TEST(text.find(R"("faults":[{"step":0,"kind":"crash","target":"io0","at_s":1,)") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(a_clean_drill_reports_pass) {
  const History h = clean_drill();
  BOOST_TEST(report_json(h, check(h, {}))["result"] == "pass");
}

BOOST_AUTO_TEST_CASE(the_text_summary_shows_phases_totals_violations_and_result) {
  const History h = failing_drill();
  const auto text = report_text(h, check(h, limits()));
  for (const char* want : {"drill clean", "crash", "io0", "detect", "restart", "10.0", "45.0", "70.0", "89.0",
                           "issued 193", "dropped 1", "delivered 10", "pause_guard", "max_recovery_ms",
                           "violations: 1 > limit 0", "result: FAIL"}) {
    BOOST_TEST(text.find(want) != std::string::npos, "missing \"" << want << "\" in\n" << text);
  }
  BOOST_TEST(report_text(clean_drill(), check(clean_drill(), {})).find("result: PASS") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(plot)

BOOST_AUTO_TEST_CASE(the_svg_is_well_formed_and_labelled) {
  History h = failing_drill();
  h.name = "drill <&> \"quoted\"";  // must be escaped to stay well-formed
  const auto svg = render_svg(h, check(h, limits()));

  boost::property_tree::ptree tree;
  std::istringstream in(svg);
  BOOST_REQUIRE_NO_THROW(boost::property_tree::read_xml(in, tree));
  BOOST_TEST(tree.count("svg") == 1u);

  for (const char* want : {"disk IOPS (ops/s)", "p99 latency (\xc2\xb5s)", "time since drill start (s)",
                           "step 0: crash io0", "detect", "pause", "restart", "resume", "violation",
                           "drill &lt;&amp;&gt; &quot;quoted&quot;", "FAIL"}) {
    BOOST_TEST(svg.find(want) != std::string::npos, "missing \"" << want << "\"");
  }
}

BOOST_AUTO_TEST_CASE(an_empty_history_still_plots) {
  History h;
  const auto svg = render_svg(h, check(h, {}));
  boost::property_tree::ptree tree;
  std::istringstream in(svg);
  BOOST_REQUIRE_NO_THROW(boost::property_tree::read_xml(in, tree));
  BOOST_TEST(svg.find("PASS") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
