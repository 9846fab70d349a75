// Which devices a drill step disturbs: what fault windows tell the checker.
#include <boost/test/unit_test.hpp>

#include <algorithm>

#include "drill/affected.hpp"

using namespace visorlab::drill;
namespace topo = visorlab::topology;

namespace {

// Hosts a and b; io0 on b, con0 on a; g0 on a and g1 on b, each with a vhba,
// a vnic and a keyboard.
topo::Topology two_hosts() {
  topo::Topology t;
  t.hosts = {{"a", {}}, {"b", {}}};
  t.services = {{"io0", topo::ServiceKind::io, "b", {}, {}}, {"con0", topo::ServiceKind::console, "a", {}, {}}};
  for (const char* host : {"a", "b"}) {
    topo::Guest g;
    g.name = std::string("g") + (host[0] == 'a' ? "0" : "1");
    g.host = host;
    for (const auto& [kind, service] : {std::pair{"vhba0", "io0"}, {"vnic0", "io0"}, {"keyboard0", "con0"}}) {
      topo::Device d;
      d.name = g.name + "/" + kind;
      d.service = service;
      g.devices.push_back(d);
    }
    t.guests.push_back(g);
  }
  return t;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

topo::Step step(topo::StepKind kind, std::vector<std::string> targets) {
  topo::Step s;
  s.index = 3;
  s.kind = kind;
  s.targets = std::move(targets);
  return s;
}

using Names = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_SUITE(affected)

BOOST_AUTO_TEST_CASE(each_step_kind_disturbs_the_devices_it_reaches) {
  const auto t = two_hosts();
  BOOST_TEST(sorted(affected_devices(t, step(topo::StepKind::crash, {"io0"}))) ==
                 (Names{"g0/vhba0", "g0/vnic0", "g1/vhba0", "g1/vnic0"}),
             boost::test_tools::per_element());
  BOOST_TEST(sorted(affected_devices(t, step(topo::StepKind::recover, {"con0"}))) ==
                 (Names{"g0/keyboard0", "g1/keyboard0"}),
             boost::test_tools::per_element());
  BOOST_TEST(affected_devices(t, step(topo::StepKind::pause, {"g1/vnic0"})) == (Names{"g1/vnic0"}),
             boost::test_tools::per_element());
  // Guest on one side, its service on the other.
  BOOST_TEST(sorted(affected_devices(t, step(topo::StepKind::partition, {"a", "b"}))) ==
                 (Names{"g0/vhba0", "g0/vnic0", "g1/keyboard0"}),
             boost::test_tools::per_element());
  // Guests on b, and everything io0 (on b) serves.
  BOOST_TEST(sorted(affected_devices(t, step(topo::StepKind::kill_agent, {"b"}))) ==
                 (Names{"g0/vhba0", "g0/vnic0", "g1/keyboard0", "g1/vhba0", "g1/vnic0"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_fault_window_carries_the_step) {
  auto t = two_hosts();
  auto s = step(topo::StepKind::partition, {"a", "b"});
  s.for_duration = std::chrono::milliseconds(500);
  const auto w = fault_window(t, s, 100, 600);
  BOOST_TEST(w.step == 3u);
  BOOST_TEST(w.kind == "partition");
  BOOST_TEST(w.target == "a,b");
  BOOST_TEST(w.held);
  BOOST_TEST(w.start == 100);
  BOOST_TEST(w.end == 600);
  BOOST_TEST(w.affected.size() == 3u);
}

BOOST_AUTO_TEST_SUITE_END()
