// metrics/: every visorlab family served on /metrics over a real TCP
// connection and accepted by `promtool check metrics`; /healthz; a taken port
// fails clearly; the default bind is loopback; label values are validated;
// the hot-path batching helpers publish exactly what they counted.
#define BOOST_TEST_MODULE metrics
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/client_metric.h>

#include "metrics/exposer.hpp"
#include "metrics/local.hpp"
#include "metrics/registry.hpp"
#include "metrics/state_share.hpp"
#include "tests/metrics/exposition.hpp"
#include "tests/metrics/http_client.hpp"

namespace vm = visorlab::metrics;
using visorlab::test::http_get;
using visorlab::test::http_request;
using visorlab::test::HttpResponse;
using visorlab::test::Socket;
using visorlab::test::try_connect;
using visorlab::test::Exposition;
using visorlab::test::find_in_path;
using visorlab::test::LabelMap;
using visorlab::test::parse;
using visorlab::test::run_with_stdin;
using visorlab::test::ToolResult;

namespace {

// ---- fixtures ---------------------------------------------------------------------

// Touches every family once, with recognisable values.
void update_every_family(vm::Metrics& m) {
  m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::read).Increment(3);
  m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::write).Increment(2);
  m.io_latency("a", "g0", "g0/vhba0").Observe(42e-6);
  m.io_latency("a", "g0", "g0/vhba0").Observe(3e-3);
  m.queue_depth("a", "g0", "g0/vhba0", "cmd").Set(5);
  m.queue_overflows("a", "g0", "g0/vhba0", "cmd").Increment();
  m.transport_events("b", "io0", "g1/vnic0", vm::TransportEvent::partner_failed).Increment();
  m.transport_events("b", "io0", "g1/vnic0", vm::TransportEvent::deregistered).Increment();
  m.transport_events("b", "io0", "g1/vnic0", vm::TransportEvent::migrated).Increment();
  m.controlvm_messages("a", "command", "device_create", vm::ControlvmResult::ok).Increment(4);
  m.controlvm_messages("a", "command", "DEVICE_DESTROY", vm::ControlvmResult::error).Increment();
  m.controlvm_messages("a", "command", "chipset_init", vm::ControlvmResult::timeout).Increment();
  for (const auto phase : {vm::RecoveryPhase::detect, vm::RecoveryPhase::pause, vm::RecoveryPhase::restart,
                           vm::RecoveryPhase::resume, vm::RecoveryPhase::total})
    m.recovery_phase("b", "io0", phase).Observe(0.012);
  m.partitions("a", "running").Set(3);
  m.partitions("b", "paused").Set(1);
  m.devices("a", "running").Set(8);
  m.devices("b", "standby").Set(2);
  m.agent_up("a").Set(1);
  m.agent_up("b").Set(1);
  m.faults_reverted_by_lease("a", vm::LeasedFault::pause).Increment();
}

const std::set<std::string> kFamilies = {
    "visorlab_io_operations_total", "visorlab_io_latency_seconds",     "visorlab_channel_queue_depth",
    "visorlab_channel_overflows_total", "visorlab_transport_events_total", "visorlab_controlvm_messages_total",
    "visorlab_recovery_phase_seconds",  "visorlab_partitions",             "visorlab_devices",
    "visorlab_agent_up",                "visorlab_build_info",             "visorlab_faults_reverted_by_lease_total",
};

// A non-loopback IPv4 address of this machine, if it has one.
std::optional<std::string> non_loopback_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* i = list; i != nullptr && !found; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN];
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) && std::string(text).rfind("127.", 0) != 0)
      found = text;
  }
  freeifaddrs(list);
  return found;
}

// The local address (hex, as in /proc/net/tcp) of the socket listening on `port`.
std::vector<std::string> listen_addresses(std::uint16_t port) {
  std::vector<std::string> out;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  char want_port[8];
  std::snprintf(want_port, sizeof want_port, "%04X", port);
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string slot, local, remote, state;
    f >> slot >> local >> remote >> state;
    if (state == "0A" && local.substr(local.find(':') + 1) == want_port) out.push_back(local.substr(0, local.find(':')));
  }
  return out;
}

}  // namespace

// ---- /metrics end to end ---------------------------------------------------------

BOOST_AUTO_TEST_CASE(every_family_is_served_and_promtool_accepts_it) {
  vm::Metrics m;
  update_every_family(m);
  vm::MetricsServer server(m);
  BOOST_TEST_REQUIRE(server.port() != 0);

  const HttpResponse r = http_get("127.0.0.1", server.port(), "/metrics");
  BOOST_TEST_REQUIRE(r.status == 200);
  BOOST_TEST(r.headers.at("content-type").find("text/plain; version=0.0.4") == 0u, r.headers.at("content-type"));
  BOOST_TEST(r.body == m.serialize());

  // promtool: the DESIGN.md contract, on exactly what was served.
  if (const auto promtool = find_in_path("promtool")) {
    const ToolResult check = run_with_stdin({*promtool, "check", "metrics"}, r.body);
    BOOST_TEST(check.exit_code == 0, "promtool check metrics failed:\n" << check.output << "\non:\n" << r.body);
    BOOST_TEST(check.output.empty(), "promtool complained:\n" << check.output);
    // And promtool can fail: a counter without _total and without help must be refused.
    const ToolResult bad = run_with_stdin({*promtool, "check", "metrics"}, "# TYPE visorlab_bad counter\nvisorlab_bad 1\n");
    BOOST_TEST(bad.exit_code != 0, "promtool accepted a bad exposition: " << bad.output);
  } else {
    BOOST_TEST_MESSAGE("SKIPPED promtool check: promtool not in PATH (Debian package `prometheus`)");
  }

  const Exposition e = parse(r.body);
  // Every family, typed as declared, with help text; nothing else is served.
  const std::map<std::string, std::string> types = {
      {"visorlab_io_operations_total", "counter"},     {"visorlab_io_latency_seconds", "histogram"},
      {"visorlab_channel_queue_depth", "gauge"},       {"visorlab_channel_overflows_total", "counter"},
      {"visorlab_transport_events_total", "counter"},  {"visorlab_controlvm_messages_total", "counter"},
      {"visorlab_recovery_phase_seconds", "histogram"}, {"visorlab_partitions", "gauge"},
      {"visorlab_devices", "gauge"},                   {"visorlab_agent_up", "gauge"},
      {"visorlab_faults_reverted_by_lease_total", "counter"}, {"visorlab_build_info", "gauge"}};
  BOOST_TEST((e.types == types));
  for (const auto& [name, type] : types) BOOST_TEST((e.helps.count(name) && !e.helps.at(name).empty()), name << " has no help");

  // Prefix, and `le` only on histogram buckets.
  for (const auto& s : e.samples) {
    BOOST_TEST(s.name.rfind("visorlab_", 0) == 0u, s.name);
    const bool bucket = s.name.size() > 7 && s.name.compare(s.name.size() - 7, 7, "_bucket") == 0;
    BOOST_TEST((s.labels.count("le") == 1) == bucket, s.name << " and its le label");
  }

  // The series with their exact label sets.
  using L = LabelMap;
  BOOST_TEST(e.value("visorlab_io_operations_total", L{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}, {"op", "read"}}) == 3.0);
  BOOST_TEST(e.value("visorlab_io_operations_total", L{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}, {"op", "write"}}) == 2.0);
  const L dev{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}};
  BOOST_TEST(e.value("visorlab_io_latency_seconds_count", dev) == 2.0);
  BOOST_TEST(std::abs(e.value("visorlab_io_latency_seconds_sum", dev) - 3.042e-3) < 1e-12);
  auto bucket = [](L l, const char* le) {
    l["le"] = le;
    return l;
  };
  BOOST_TEST(e.value("visorlab_io_latency_seconds_bucket", bucket(dev, "1e-05")) == 0.0);
  BOOST_TEST(e.value("visorlab_io_latency_seconds_bucket", bucket(dev, "5e-05")) == 1.0);
  BOOST_TEST(e.value("visorlab_io_latency_seconds_bucket", bucket(dev, "0.005")) == 2.0);
  BOOST_TEST(e.value("visorlab_io_latency_seconds_bucket", bucket(dev, "+Inf")) == 2.0);
  BOOST_TEST(e.series("visorlab_io_latency_seconds_bucket").size() == vm::io_latency_buckets().size() + 1);
  BOOST_TEST(e.value("visorlab_channel_queue_depth", L{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}, {"queue", "cmd"}}) == 5.0);
  BOOST_TEST(e.value("visorlab_channel_overflows_total", L{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}, {"queue", "cmd"}}) == 1.0);
  for (const char* event : {"partner_failed", "deregistered", "migrated"})
    BOOST_TEST(e.value("visorlab_transport_events_total", L{{"host", "b"}, {"partition", "io0"}, {"device", "g1/vnic0"}, {"event", event}}) == 1.0, event);
  BOOST_TEST(e.value("visorlab_controlvm_messages_total", L{{"host", "a"}, {"partition", "command"}, {"id", "device_create"}, {"result", "ok"}}) == 4.0);
  BOOST_TEST(e.value("visorlab_controlvm_messages_total", L{{"host", "a"}, {"partition", "command"}, {"id", "device_destroy"}, {"result", "error"}}) == 1.0);
  BOOST_TEST(e.value("visorlab_controlvm_messages_total", L{{"host", "a"}, {"partition", "command"}, {"id", "chipset_init"}, {"result", "timeout"}}) == 1.0);
  for (const char* phase : {"detect", "pause", "restart", "resume", "total"}) {
    const L p{{"host", "b"}, {"partition", "io0"}, {"phase", phase}};
    BOOST_TEST(e.value("visorlab_recovery_phase_seconds_count", p) == 1.0, phase);
    BOOST_TEST(e.value("visorlab_recovery_phase_seconds_bucket", bucket(p, "0.01")) == 0.0, phase);
    BOOST_TEST(e.value("visorlab_recovery_phase_seconds_bucket", bucket(p, "0.025")) == 1.0, phase);
  }
  BOOST_TEST(e.series("visorlab_recovery_phase_seconds_bucket").size() == 5 * (vm::recovery_phase_buckets().size() + 1));
  BOOST_TEST(e.value("visorlab_partitions", L{{"host", "a"}, {"state", "running"}}) == 3.0);
  BOOST_TEST(e.value("visorlab_partitions", L{{"host", "b"}, {"state", "paused"}}) == 1.0);
  BOOST_TEST(e.value("visorlab_devices", L{{"host", "a"}, {"state", "running"}}) == 8.0);
  BOOST_TEST(e.value("visorlab_devices", L{{"host", "b"}, {"state", "standby"}}) == 2.0);
  BOOST_TEST(e.value("visorlab_agent_up", L{{"host", "a"}}) == 1.0);
  BOOST_TEST(e.value("visorlab_agent_up", L{{"host", "b"}}) == 1.0);
  BOOST_TEST(e.value("visorlab_build_info", L{{"version", std::string(vm::build_version())}}) == 1.0);
  BOOST_TEST(vm::build_version() != "unknown");
}

BOOST_AUTO_TEST_CASE(a_fresh_registry_passes_promtool_too) {
  // Families with no series yet (an agent that just started) must not break the check.
  vm::Metrics m;
  vm::MetricsServer server(m);
  const HttpResponse r = http_get("127.0.0.1", server.port(), "/metrics");
  BOOST_TEST_REQUIRE(r.status == 200);
  BOOST_TEST(r.body.find("visorlab_build_info{") != std::string::npos);
  if (const auto promtool = find_in_path("promtool")) {
    const ToolResult check = run_with_stdin({*promtool, "check", "metrics"}, r.body);
    BOOST_TEST(check.exit_code == 0, check.output << "\non:\n" << r.body);
  } else {
    BOOST_TEST_MESSAGE("SKIPPED promtool check: promtool not in PATH");
  }
}

BOOST_AUTO_TEST_CASE(scrapes_see_live_values_and_label_values_are_escaped) {
  vm::Metrics m;
  vm::MetricsServer server(m);
  auto& c = m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::read);
  for (int i = 1; i <= 3; ++i) {
    c.Increment();
    const Exposition e = parse(http_get("127.0.0.1", server.port(), "/metrics").body);
    BOOST_TEST(e.value("visorlab_io_operations_total", LabelMap{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}, {"op", "read"}}) == double(i));
  }
  m.devices("a", "odd \"state\" \\ here").Set(1);
  const std::string body = http_get("127.0.0.1", server.port(), "/metrics").body;
  BOOST_TEST(parse(body).value("visorlab_devices", LabelMap{{"host", "a"}, {"state", "odd \"state\" \\ here"}}) == 1.0);
  if (const auto promtool = find_in_path("promtool")) {
    const ToolResult check = run_with_stdin({*promtool, "check", "metrics"}, body);
    BOOST_TEST(check.exit_code == 0, check.output);
  }
}

// ---- /healthz and other paths ------------------------------------------------------

BOOST_AUTO_TEST_CASE(healthz_answers_200_ok) {
  vm::Metrics m;
  vm::MetricsServer server(m);
  const HttpResponse r = http_get("127.0.0.1", server.port(), "/healthz");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == "ok");
  const HttpResponse head = http_request("127.0.0.1", server.port(), "HEAD", "/healthz");
  BOOST_TEST(head.status == 200);
  BOOST_TEST(head.body.empty());
  BOOST_TEST(http_get("127.0.0.1", server.port(), "/nothing-here").status == 404);
  BOOST_TEST(http_get("127.0.0.1", server.port(), "/metricsx").status == 404);
  BOOST_TEST(server.url() == "http://127.0.0.1:" + std::to_string(server.port()) + "/metrics");
  BOOST_TEST(server.url("/healthz") == "http://127.0.0.1:" + std::to_string(server.port()) + "/healthz");
}

BOOST_AUTO_TEST_CASE(the_server_may_outlive_its_metrics) {
  auto m = std::make_unique<vm::Metrics>();
  vm::MetricsServer server(*m);
  m.reset();
  const HttpResponse r = http_get("127.0.0.1", server.port(), "/metrics");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body.empty());
  BOOST_TEST(http_get("127.0.0.1", server.port(), "/healthz").body == "ok");
}

// ---- listening ---------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_taken_port_fails_with_a_clear_message) {
  vm::Metrics m;
  // Taken by a plain listening socket …
  Socket taker(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_TEST_REQUIRE(::bind(taker.fd(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  BOOST_TEST_REQUIRE(::listen(taker.fd(), 1) == 0);
  socklen_t len = sizeof sa;
  BOOST_TEST_REQUIRE(::getsockname(taker.fd(), reinterpret_cast<sockaddr*>(&sa), &len) == 0);
  const std::uint16_t port = ntohs(sa.sin_port);
  try {
    vm::MetricsServer server(m, port);
    BOOST_FAIL("a MetricsServer started on taken port " << port);
  } catch (const vm::MetricsServerError& e) {
    const std::string what = e.what();
    BOOST_TEST_MESSAGE("taken port: " << what);
    BOOST_TEST(what.find("127.0.0.1:" + std::to_string(port)) != std::string::npos, what);
    BOOST_TEST(what.find("already in use") != std::string::npos, what);
  }
  // … and by another MetricsServer.
  vm::MetricsServer first(m);
  BOOST_CHECK_EXCEPTION(vm::MetricsServer(m, first.port()), vm::MetricsServerError, [&](const auto& e) {
    return std::string(e.what()).find(std::to_string(first.port()) + ": port " + std::to_string(first.port()) +
                                      " is already in use") != std::string::npos;
  });
  BOOST_TEST(http_get("127.0.0.1", first.port(), "/healthz").status == 200);  // unharmed
}

BOOST_AUTO_TEST_CASE(bad_bind_addresses_are_refused) {
  vm::Metrics m;
  for (const char* bad : {"", "localhost", "::1", "127.0.0.1:80", "300.1.1.1"})
    BOOST_CHECK_THROW(vm::MetricsServer(m, 0, bad), std::invalid_argument);
  // An IPv4 address that is not this host's: it cannot listen there.
  BOOST_CHECK_THROW(vm::MetricsServer(m, 0, "192.0.2.1"), vm::MetricsServerError);  // TEST-NET-1
}

BOOST_AUTO_TEST_CASE(the_default_bind_is_loopback_only) {
  vm::Metrics m;
  vm::MetricsServer server(m);
  BOOST_TEST(server.bind_address() == "127.0.0.1");
  // The kernel's view: one listener on this port, on 127.0.0.1 (0100007F).
  const auto listeners = listen_addresses(server.port());
  BOOST_TEST(listeners.size() == 1u);
  for (const auto& a : listeners) BOOST_TEST(a == "0100007F");
  // And from outside loopback nobody gets in.
  if (const auto other = non_loopback_address()) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int e = try_connect(*other, server.port(), s, std::chrono::seconds(2));
    BOOST_TEST(e != 0, "connected to the default-bound server through " << *other);
    BOOST_TEST_MESSAGE("connect via " << *other << ": " << std::strerror(e));
  } else {
    BOOST_TEST_MESSAGE("no non-loopback IPv4 address here; checked /proc/net/tcp only");
  }
}

BOOST_AUTO_TEST_CASE(an_explicit_bind_address_is_used) {
  vm::Metrics m;
  const auto other = non_loopback_address();
  if (!other) {
    BOOST_TEST_MESSAGE("SKIPPED: no non-loopback IPv4 address to bind to");
    return;
  }
  vm::MetricsServer server(m, 0, *other);
  BOOST_TEST(server.bind_address() == *other);
  BOOST_TEST(http_get(*other, server.port(), "/healthz").status == 200);
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  BOOST_TEST(try_connect("127.0.0.1", server.port(), s, std::chrono::seconds(2)) != 0);
}

// ---- registry API -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(accessors_return_the_same_object_for_the_same_labels) {
  vm::Metrics m;
  BOOST_TEST(&m.io_ops("a", "g0", "d", vm::IoOp::read) == &m.io_ops("a", "g0", "d", vm::IoOp::read));
  BOOST_TEST(&m.io_ops("a", "g0", "d", vm::IoOp::read) != &m.io_ops("a", "g0", "d", vm::IoOp::write));
  BOOST_TEST(&m.io_latency("a", "g0", "d") == &m.io_latency("a", "g0", "d"));
  BOOST_TEST(&m.controlvm_messages("a", "c", "DEVICE_CREATE", vm::ControlvmResult::ok) ==
             &m.controlvm_messages("a", "c", "device_create", vm::ControlvmResult::ok));
  BOOST_TEST(&m.agent_up("a") != &m.agent_up("b"));
}

BOOST_AUTO_TEST_CASE(label_values_are_validated) {
  vm::Metrics m;
  try {
    m.io_ops("a", "g0", "", vm::IoOp::read);
    BOOST_FAIL("an empty device label was accepted");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    BOOST_TEST(what.find("visorlab_io_operations_total") != std::string::npos, what);
    BOOST_TEST(what.find("'device'") != std::string::npos, what);
    BOOST_TEST(what.find("empty") != std::string::npos, what);
  }
  BOOST_CHECK_THROW(m.agent_up(""), std::invalid_argument);
  BOOST_CHECK_THROW(m.partitions("a", ""), std::invalid_argument);
  BOOST_CHECK_THROW(m.queue_depth("a", "g0", "d", ""), std::invalid_argument);
  BOOST_CHECK_THROW(m.devices("a", "bad\nstate"), std::invalid_argument);
  BOOST_CHECK_THROW(m.devices("a", std::string("\xff\xfe", 2)), std::invalid_argument);   // not UTF-8
  BOOST_CHECK_THROW(m.devices("a", std::string("\xc0\xaf", 2)), std::invalid_argument);   // overlong
  BOOST_CHECK_THROW(m.devices("a", std::string(257, 'x')), std::invalid_argument);
  BOOST_CHECK_NO_THROW(m.devices("a", "r\xc3\xa9sum\xc3\xa9"));                          // UTF-8 is fine
  BOOST_CHECK_THROW(m.controlvm_messages("a", "c", "device create", vm::ControlvmResult::ok), std::invalid_argument);
  BOOST_CHECK_THROW(m.controlvm_messages("a", "c", "0x201", vm::ControlvmResult::ok), std::invalid_argument);
  BOOST_CHECK_THROW(m.controlvm_messages("a", "c", "", vm::ControlvmResult::ok), std::invalid_argument);
  // A refused label leaves no series behind.
  BOOST_TEST(m.serialize().find("bad") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(label_names_le_and_reserved_ones_are_refused) {
  for (const char* bad : {"le", "quantile", "__name__", "", "1host", "ho-st"})
    BOOST_CHECK_THROW(vm::check_label_name(bad), std::invalid_argument);
  for (const char* good : {"host", "partition", "device", "op", "queue", "event", "id", "result", "phase", "state", "version"})
    BOOST_CHECK_NO_THROW(vm::check_label_name(good));
}

BOOST_AUTO_TEST_CASE(forget_device_drops_only_that_devices_series) {
  vm::Metrics m;
  update_every_family(m);
  m.io_ops("a", "g0", "g0/vhba1", vm::IoOp::read).Increment();
  m.queue_depth("a", "g0", "g0/vhba0", "rsp").Set(1);
  m.forget_device("a", "g0", "g0/vhba0");
  m.forget_device("b", "io0", "g1/vnic0");
  m.forget_device("a", "g0", "never-seen");  // no-op
  const Exposition e = parse(m.serialize());
  for (const auto& s : e.samples) {
    const auto it = s.labels.find("device");
    BOOST_TEST((it == s.labels.end() || it->second == "g0/vhba1"), s.name << " of " << it->second << " left over");
  }
  BOOST_TEST(e.value("visorlab_io_operations_total", LabelMap{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba1"}, {"op", "read"}}) == 1.0);
  BOOST_TEST(e.value("visorlab_agent_up", LabelMap{{"host", "a"}}) == 1.0);
  // The device can come back, from zero.
  BOOST_TEST(m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::read).Value() == 0.0);
}

// ---- hot-path helpers -------------------------------------------------------------

BOOST_AUTO_TEST_CASE(counter_batch_publishes_every_n_and_on_flush) {
  vm::Metrics m;
  auto& target = m.io_ops("a", "g0", "d", vm::IoOp::write);
  {
    vm::CounterBatch batch(target, 100);
    for (int i = 0; i < 99; ++i) batch.inc();
    BOOST_TEST(target.Value() == 0.0);
    batch.inc();
    BOOST_TEST(target.Value() == 100.0);
    batch.add(7);
    BOOST_TEST(batch.pending() == 7u);
    batch.flush();
    BOOST_TEST(target.Value() == 107.0);
    batch.inc();
  }  // the destructor flushes the last one
  BOOST_TEST(target.Value() == 108.0);
}

BOOST_AUTO_TEST_CASE(sampled_histogram_with_every_1_is_exact) {
  vm::Metrics m;
  auto& target = m.io_latency("a", "g0", "d");
  {
    vm::SampledHistogram h(target, vm::io_latency_buckets(), vm::Sampling::fixed(1, 3));
    for (double v : {5e-6, 10e-6, 11e-6, 0.7, 2.0}) {
      BOOST_TEST(h.tick());
      h.observe(v);
    }
  }
  const auto c = target.Collect().histogram;
  BOOST_TEST(c.sample_count == 5u);
  BOOST_TEST(std::abs(c.sample_sum - (5e-6 + 10e-6 + 11e-6 + 0.7 + 2.0)) < 1e-12);
  BOOST_TEST(c.bucket.at(0).cumulative_count == 2u);  // le 1e-05: 5 µs and exactly 10 µs
  BOOST_TEST(c.bucket.at(1).cumulative_count == 3u);  // le 2.5e-05
  BOOST_TEST(c.bucket.at(14).cumulative_count == 3u);  // le 0.5
  BOOST_TEST(c.bucket.at(15).cumulative_count == 4u);  // le 1
  BOOST_TEST(c.bucket.back().cumulative_count == 5u);  // +Inf
}

BOOST_AUTO_TEST_CASE(sampled_histogram_weights_samples_to_count_every_operation) {
  vm::Metrics m;
  auto& target = m.io_latency("a", "g0", "d");
  const std::uint64_t ops = 1'000'000;
  std::uint64_t timed = 0;
  {
    vm::SampledHistogram h(target, vm::io_latency_buckets(), vm::Sampling::fixed(256, 64));
    for (std::uint64_t i = 0; i < ops; ++i)
      if (h.tick()) {
        ++timed;
        h.observe(i % 2 ? 20e-6 : 200e-6);  // alternating: a fixed even stride would see only one
      }
  }
  const auto c = target.Collect().histogram;
  BOOST_TEST(timed > ops / 256 * 9 / 10);
  BOOST_TEST(timed < ops / 256 * 11 / 10);
  // _count lags the operations by less than one interval (< 2*256).
  BOOST_TEST(c.sample_count <= ops);
  BOOST_TEST(c.sample_count > ops - 512);
  // Both halves seen; the mean is near 110 µs.
  const double mean = c.sample_sum / static_cast<double>(c.sample_count);
  BOOST_TEST(mean > 90e-6);
  BOOST_TEST(mean < 130e-6);
  const double at_25us = static_cast<double>(c.bucket.at(1).cumulative_count);
  BOOST_TEST(at_25us / static_cast<double>(c.sample_count) > 0.4);
  BOOST_TEST(at_25us / static_cast<double>(c.sample_count) < 0.6);
}

BOOST_AUTO_TEST_CASE(sampled_histogram_checks_its_bucket_count) {
  vm::Metrics m;
  // 2 bounds for a histogram made with 16: prometheus-cpp's size check fires.
  BOOST_CHECK_THROW(vm::SampledHistogram(m.io_latency("a", "g0", "d"), std::vector<double>{1.0, 2.0}),
                    std::length_error);
}

BOOST_AUTO_TEST_CASE(io_recorder_counts_exactly_and_samples_latency) {
  vm::Metrics m;
  std::uint64_t timed = 0;
  {
    vm::IoRecorder io(m, "a", "g0", "g0/vhba0", vm::Sampling::fixed(16, 4));
    for (int i = 0; i < 10'000; ++i) {
      const auto op = i % 4 == 0 ? vm::IoOp::write : vm::IoOp::read;
      if (io.sample(op)) {
        ++timed;
        io.done(op, op == vm::IoOp::read ? 50e-6 : 150e-6);
      }
    }
    io.flush();
    BOOST_TEST(m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::read).Value() == 7500.0);
    BOOST_TEST(m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::write).Value() == 2500.0);
    io.sample(vm::IoOp::read);
  }  // the destructor publishes the last one
  BOOST_TEST(m.io_ops("a", "g0", "g0/vhba0", vm::IoOp::read).Value() == 7501.0);
  BOOST_TEST(timed > 10'000u / 16 / 2);
  BOOST_TEST(timed < 10'000u / 16 * 2);
  const auto c = m.io_latency("a", "g0", "g0/vhba0").Collect().histogram;
  // Each op's samples weighted by its own intervals: ~7500 reads at 50 µs, ~2500 writes at 150 µs.
  BOOST_TEST(c.sample_count <= 10'000u);
  BOOST_TEST(c.sample_count > 10'000u - 64);
  const double mean = c.sample_sum / static_cast<double>(c.sample_count);
  BOOST_TEST(mean > 65e-6, mean);
  BOOST_TEST(mean < 85e-6, mean);  // 0.75*50 + 0.25*150 = 75 µs
}

// A driver's queue: 8 operations in flight, each completing 8 operations
// after it was issued, so timed ones overlap. Each keeps its sample's weight
// (weight(op) → done(op, s, weight)): _count follows the operations. Using
// the latest sample's weight instead undercounts — an overlapping sample ends
// a short interval — which is what the weighted form is for.
BOOST_AUTO_TEST_CASE(io_recorder_weights_overlapping_operations_by_their_own_samples) {
  struct InFlight {
    std::uint32_t weight;  // 0: untimed
    double seconds;
  };
  const auto run = [](bool own_weights) {
    vm::Metrics m;
    const std::uint64_t ops = 200'000;
    {
      vm::IoRecorder io(m, "a", "g0", "d", vm::Sampling::fixed(16, 64));
      std::deque<InFlight> queue;
      for (std::uint64_t i = 0; i < ops; ++i) {
        const double seconds = i % 2 ? 20e-6 : 200e-6;
        queue.push_back({io.sample(vm::IoOp::read) ? io.weight(vm::IoOp::read) : 0, seconds});
        if (queue.size() > 8) {
          const InFlight done = queue.front();
          queue.pop_front();
          if (done.weight == 0) continue;
          if (own_weights)
            io.done(vm::IoOp::read, done.seconds, done.weight);
          else
            io.done(vm::IoOp::read, done.seconds);
        }
      }
      for (const InFlight& done : queue)
        if (done.weight) io.done(vm::IoOp::read, done.seconds, done.weight);
    }
    BOOST_TEST(m.io_ops("a", "g0", "d", vm::IoOp::read).Value() == static_cast<double>(ops));
    return static_cast<double>(m.io_latency("a", "g0", "d").Collect().histogram.sample_count) /
           static_cast<double>(ops);
  };
  const double own = run(true), latest = run(false);
  BOOST_TEST(own > 0.999, own);  // lags by less than one interval
  BOOST_TEST(own <= 1.0, own);
  BOOST_TEST(latest < 0.95, latest);  // the bias the weighted form avoids
}

BOOST_AUTO_TEST_CASE(io_recorder_publishes_counts_with_the_samples_and_on_flush) {
  vm::Metrics m;
  auto& reads = m.io_ops("a", "g0", "d", vm::IoOp::read);
  vm::IoRecorder io(m, "a", "g0", "d", vm::Sampling::fixed(1, 10));
  for (int i = 0; i < 9; ++i) {
    BOOST_TEST(io.sample(vm::IoOp::read));
    io.done(vm::IoOp::read, 1e-3);
  }
  BOOST_TEST(reads.Value() == 0.0);  // nothing published yet
  BOOST_TEST(io.sample(vm::IoOp::read));
  io.done(vm::IoOp::read, 1e-3);  // the 10th sample publishes the histogram …
  BOOST_TEST(m.io_latency("a", "g0", "d").Collect().histogram.sample_count == 10u);
  BOOST_TEST(io.sample(vm::IoOp::read));  // … and the next sample() the counts along
  BOOST_TEST(reads.Value() == 11.0);
  io.sample(vm::IoOp::write);
  io.flush();
  BOOST_TEST(reads.Value() == 11.0);
  BOOST_TEST(m.io_ops("a", "g0", "d", vm::IoOp::write).Value() == 1.0);
  // Moving a recorder moves what it has not published, once.
  io.sample(vm::IoOp::write);
  {
    vm::IoRecorder moved(std::move(io));
  }
  BOOST_TEST(m.io_ops("a", "g0", "d", vm::IoOp::write).Value() == 2.0);
}

// Adaptive sampling (the default): a fast loop ends up timing a small share of
// its operations; once the rate falls, idle() and the rate estimate bring
// timing back to every operation. No speed is asserted, only the direction.
BOOST_AUTO_TEST_CASE(adaptive_sampling_follows_the_operation_rate) {
  vm::Metrics m;
  auto& target = m.io_latency("a", "g0", "d");
  vm::Sampling s;  // adaptive, one timed op per ms
  vm::SampledHistogram h(target, vm::io_latency_buckets(), s);
  BOOST_TEST(h.every() == 1u);
  std::uint64_t timed = 0;
  const std::uint64_t fast_ops = 3'000'000;
  for (std::uint64_t i = 0; i < fast_ops; ++i)
    if (h.tick()) {
      ++timed;
      h.observe(1e-6);
    }
  BOOST_TEST_MESSAGE("fast loop: " << timed << " of " << fast_ops << " timed, every " << h.every());
  BOOST_TEST(h.every() > 16u);
  BOOST_TEST(timed < fast_ops / 16);

  // The device goes quiet: the loop idles, then operations come 3 ms apart.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (int i = 0; i < 64; ++i) h.idle();
  BOOST_TEST(h.tick(), "the first operation after an idle spell is timed");
  h.observe(2e-3);
  int slow_timed = 0;
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    if (h.tick()) {
      ++slow_timed;
      h.observe(2e-3);
    }
  }
  BOOST_TEST(h.every() == 1u);
  BOOST_TEST(slow_timed >= 15, slow_timed << " of 20 slow operations timed");
  h.flush();
  const auto c = target.Collect().histogram;
  // Every operation accounted for, within the interval still open.
  BOOST_TEST(c.sample_count <= fast_ops + 21);
  BOOST_TEST(c.sample_count + 2 * 1'048'576ull > fast_ops);
}

// Several owners (guests, keepers, the command partition) count into one
// visorlab_devices / visorlab_partitions series; each adds only its change and
// takes its share back when it ends.
BOOST_AUTO_TEST_CASE(state_shares_add_up_and_leave_nothing_behind) {
  vm::Metrics m;
  auto& running = m.devices("a", "running");
  auto& paused = m.devices("a", "paused");
  {
    vm::StateShare g0(m, vm::StateShare::Family::devices, "a");
    vm::StateShare g1(m, vm::StateShare::Family::devices, "a");
    g0.set({{"running", 3}});
    g1.set({{"running", 2}, {"paused", 1}});
    BOOST_TEST(running.Value() == 5.0);
    BOOST_TEST(paused.Value() == 1.0);
    g1.set({{"running", 3}});  // its paused one resumed
    BOOST_TEST(running.Value() == 6.0);
    BOOST_TEST(paused.Value() == 0.0);
    g0.clear();
    BOOST_TEST(running.Value() == 3.0);
    vm::StateShare keeper(m, vm::StateShare::Family::partitions, "b");
    keeper.set_one("running");
    keeper.set_one("recovering");
    BOOST_TEST(m.partitions("b", "running").Value() == 0.0);
    BOOST_TEST(m.partitions("b", "recovering").Value() == 1.0);
  }
  BOOST_TEST(running.Value() == 0.0);
  BOOST_TEST(paused.Value() == 0.0);
  BOOST_TEST(m.partitions("b", "recovering").Value() == 0.0);
}

BOOST_AUTO_TEST_CASE(listen_addresses_parse_with_port_0_meaning_any) {
  const auto any = vm::parse_listen_address("127.0.0.1:0");
  BOOST_TEST(any.host == "127.0.0.1");
  BOOST_TEST(any.port == 0);
  BOOST_TEST(vm::parse_listen_address("0.0.0.0:9464").port == 9464);
  for (const char* bad : {"", "9464", ":9464", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536", "localhost:9464",
                          "::1:9464", "127.0.0.1:-1"})
    BOOST_CHECK_THROW(vm::parse_listen_address(bad), std::invalid_argument);
}
