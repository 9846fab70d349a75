// Metrics of a live cluster: an orchestrator core in this process
// (LocalCluster, serving its /metrics), one real `visorlab agent` process and
// the partition host it starts, a topology of one guest with a disk and a
// keyboard, and the drill workload running on it. Every /metrics — the
// partition host's, the agent's, the orchestrator's — is fetched over TCP,
// must pass `promtool check metrics`, and must carry real values: the
// guest's disk I/O, controlvm traffic, partitions and devices by state, the
// agent up; after a planned recovery and a crash of the IO partition, their
// phases; after teardown, nothing left over.
#define BOOST_TEST_MODULE cluster_metrics
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <caf/actor_system.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "actors/runtime/config.hpp"
#include "drill/workloads.hpp"
#include "orchestrator/local_cluster.hpp"
#include "tests/metrics/exposition.hpp"
#include "tests/metrics/http_client.hpp"
#include "tests/support/run.hpp"
#include "topology/load.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using visorlab::test::Exposition;
using visorlab::test::LabelMap;

namespace {

const std::string kTopology = R"(version: 1
name: metrics
hosts:
  - {name: a}
command: {host: a}
services:
  - {name: io0, kind: io, host: a}
  - {name: con0, kind: console, host: a}
guests:
  - name: g
    count: 1
    host: a
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}
      - {kind: keyboard, service: con0}
workload:
  disk:  {block_size: 4KiB, queue_depth: 8, read_ratio: 0.5, verify: true}
  input: {rate: 200/s}
drill:
  seed: 1
  duration: 1s
expect: {lost_io: 0}
)";

std::uint16_t read_port(const fs::path& file) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(file);
    unsigned port = 0;
    if (in >> port && port > 0 && port < 65536) return static_cast<std::uint16_t>(port);
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("no port in " + file.string());
}

// GET /metrics, checked by promtool, parsed.
Exposition scrape(const std::string& who, std::uint16_t port) {
  const auto r = visorlab::test::http_get("127.0.0.1", port, "/metrics");
  BOOST_TEST_REQUIRE(r.status == 200, who << ": /metrics answered " << r.status);
  BOOST_TEST_MESSAGE(who << " /metrics:\n" << r.body);  // --log_level=message shows it
  const auto promtool = visorlab::test::find_in_path("promtool");
  BOOST_TEST_REQUIRE(promtool.has_value(), "promtool is not in PATH (Debian package `prometheus`)");
  const auto check = visorlab::test::run_with_stdin({*promtool, "check", "metrics"}, r.body);
  BOOST_TEST(check.exit_code == 0, who << ": promtool check metrics failed:\n" << check.output << "\non:\n" << r.body);
  BOOST_TEST(check.output.empty(), who << ": promtool complained:\n" << check.output);
  return visorlab::test::parse(r.body);
}

std::string healthz(std::uint16_t port) {
  const auto r = visorlab::test::http_get("127.0.0.1", port, "/healthz");
  return r.status == 200 ? r.body : "status " + std::to_string(r.status);
}

std::string dump(const Exposition& e, const std::string& name) {
  std::ostringstream out;
  for (const auto* s : e.series(name)) {
    out << s->name << "{";
    for (const auto& [k, v] : s->labels) out << k << "=" << v << ",";
    out << "} " << s->value << "\n";
  }
  return out.str();
}

struct LiveCluster {
  LiveCluster()
      : dir(fs::temp_directory_path() / ("visorlab-metrics-" + std::to_string(::getpid()))),
        topo(visorlab::topology::load_string(kTopology, "metrics.yaml")),
        sys(cfg) {
    fs::create_directories(dir);
    visorlab::orchestrator::LocalClusterOptions o;
    o.visorlab_bin = visorlab::test::bin("visorlab");
    o.run_dir = dir;
    o.metrics_listen = "127.0.0.1:0";
    local = std::make_unique<visorlab::orchestrator::LocalCluster>(sys, topo, o);
    local->cluster().apply(topo);
  }
  ~LiveCluster() {
    local.reset();  // (if the test did not) tears down, stops the agent and its partitions
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  visorlab::orchestrator::Cluster& cluster() { return local->cluster(); }

  fs::path dir;
  visorlab::topology::Topology topo;
  visorlab::actors::Config cfg;
  caf::actor_system sys;
  std::unique_ptr<visorlab::orchestrator::LocalCluster> local;
};

}  // namespace

BOOST_AUTO_TEST_CASE(every_process_exports_live_values_that_promtool_accepts) {
  LiveCluster c;
  auto& cluster = c.cluster();
  BOOST_TEST_REQUIRE(cluster.guests() == std::vector<std::string>{"g0"});
  const std::uint16_t orchestrator_port = cluster.metrics_port();
  BOOST_TEST_REQUIRE(orchestrator_port != 0);
  const std::uint16_t host_port = read_port(c.dir / "hosts" / "a" / "metrics.port");
  const std::uint16_t agent_port = read_port(c.dir / "hosts" / "a" / "agent-metrics.port");
  BOOST_TEST(healthz(host_port) == "ok");
  BOOST_TEST(healthz(agent_port) == "ok");
  BOOST_TEST(healthz(orchestrator_port) == "ok");

  // The workload, as a drill starts it; ~1 s of disk I/O.
  const auto start_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch());
  visorlab::drill::Workloads workloads(cluster);
  workloads.start(visorlab::drill::workload_spec(c.topo), start_ns.count(), {});
  std::this_thread::sleep_for(1200ms);
  const double completed = workloads.completed();
  BOOST_TEST_REQUIRE(completed > 0);

  // The partition host: the guest's I/O, channels, controlvm, states.
  const Exposition host = scrape("partition host", host_port);
  const LabelMap vhba{{"host", "a"}, {"partition", "g0"}, {"device", "g0/vhba0"}};
  LabelMap reads = vhba, writes = vhba;
  reads["op"] = "read";
  writes["op"] = "write";
  const double ops = host.sum("visorlab_io_operations_total", vhba);
  BOOST_TEST(host.value("visorlab_io_operations_total", reads) > 0, dump(host, "visorlab_io_operations_total"));
  BOOST_TEST(host.value("visorlab_io_operations_total", writes) > 0, dump(host, "visorlab_io_operations_total"));
  // Counted at submit and published every 100 ms: not beyond what the
  // workload issued by now, and not far behind what it completed before.
  BOOST_TEST(ops >= completed * 0.5, "io ops " << ops << ", workload completed " << completed);
  // Sampled latencies, each weighted by its own sample: _count follows the
  // operations (lagging by what is in flight and under one interval).
  const double timed = host.value("visorlab_io_latency_seconds_count", vhba);
  BOOST_TEST(timed >= ops * 0.9, "latency count " << timed << ", io ops " << ops);
  BOOST_TEST(timed <= ops * 1.1, "latency count " << timed << ", io ops " << ops);
  BOOST_TEST(host.value("visorlab_io_latency_seconds_sum", vhba) > 0);
  LabelMap to_iopart = vhba;
  to_iopart["queue"] = "to_iopart";
  BOOST_TEST(host.value("visorlab_channel_queue_depth", to_iopart) >= 0, dump(host, "visorlab_channel_queue_depth"));
  BOOST_TEST(host.value("visorlab_channel_overflows_total", to_iopart) >= 0);
  LabelMap keyboard{{"host", "a"}, {"partition", "g0"}, {"device", "g0/keyboard0"}, {"queue", "0"}};
  BOOST_TEST(host.value("visorlab_channel_queue_depth", keyboard) >= 0, dump(host, "visorlab_channel_queue_depth"));
  BOOST_TEST(host.value("visorlab_controlvm_messages_total",
                        {{"host", "a"}, {"partition", "command"}, {"id", "device_create"}, {"result", "ok"}}) >= 2,
             dump(host, "visorlab_controlvm_messages_total"));
  BOOST_TEST(host.sum("visorlab_controlvm_messages_total", {{"id", "chipset_init"}, {"result", "ok"}}) == 1);
  BOOST_TEST(host.sum("visorlab_controlvm_messages_total", {{"result", "error"}}) == 0);
  BOOST_TEST(host.sum("visorlab_controlvm_messages_total", {{"result", "timeout"}}) == 0);
  BOOST_TEST(host.value("visorlab_devices", {{"host", "a"}, {"state", "running"}}) == 2,
             dump(host, "visorlab_devices"));
  // The command partition, io0, con0 and g0.
  BOOST_TEST(host.value("visorlab_partitions", {{"host", "a"}, {"state", "running"}}) == 4,
             dump(host, "visorlab_partitions"));
  BOOST_TEST(host.sum("visorlab_recovery_phase_seconds_count") == 0);

  // The agent.
  const Exposition agent = scrape("agent", agent_port);
  BOOST_TEST(agent.value("visorlab_agent_up", {{"host", "a"}}) == 1, dump(agent, "visorlab_agent_up"));
  BOOST_TEST(agent.series("visorlab_build_info").size() == 1u);

  // The orchestrator.
  const Exposition orch = scrape("orchestrator", orchestrator_port);
  BOOST_TEST(orch.value("visorlab_agent_up", {{"host", "a"}}) == 1, dump(orch, "visorlab_agent_up"));
  BOOST_TEST(orch.value("visorlab_devices", {{"host", "a"}, {"state", "running"}}) == 2,
             dump(orch, "visorlab_devices"));
  BOOST_TEST(orch.value("visorlab_partitions", {{"host", "a"}, {"state", "running"}}) == 4,
             dump(orch, "visorlab_partitions"));

  // A planned recovery of the IO partition while the disk is busy: its
  // phases are observed by its keeper (partition host) and the orchestrator.
  const auto t = cluster.recover_service("io0");
  BOOST_TEST_REQUIRE(t.ok, t.error);
  std::this_thread::sleep_for(300ms);  // I/O resumes; the guest publishes
  const Exposition host2 = scrape("partition host after recovery", host_port);
  const Exposition orch2 = scrape("orchestrator after recovery", orchestrator_port);
  for (const char* phase : {"pause", "restart", "resume", "total"}) {
    const LabelMap labels{{"host", "a"}, {"partition", "io0"}, {"phase", phase}};
    BOOST_TEST(host2.value("visorlab_recovery_phase_seconds_count", labels) == 1,
               phase << "\n" << dump(host2, "visorlab_recovery_phase_seconds_count"));
    BOOST_TEST(orch2.value("visorlab_recovery_phase_seconds_count", labels) == 1,
               phase << "\n" << dump(orch2, "visorlab_recovery_phase_seconds_count"));
  }
  // Planned: nothing to detect.
  BOOST_TEST(host2.sum("visorlab_recovery_phase_seconds_count", {{"phase", "detect"}}) == 0);
  const LabelMap total{{"host", "a"}, {"partition", "io0"}, {"phase", "total"}};
  const double total_s = static_cast<double>(t.resumed_ns - t.start_ns) / 1e9;
  BOOST_TEST(std::abs(host2.value("visorlab_recovery_phase_seconds_sum", total) - total_s) < 1e-6);
  BOOST_TEST(std::abs(orch2.value("visorlab_recovery_phase_seconds_sum", total) - total_s) < 1e-6);
  // The devices were paused and resumed (controlvm DEVICE_CHANGESTATE), and I/O goes on.
  BOOST_TEST(host2.sum("visorlab_controlvm_messages_total", {{"id", "device_changestate"}, {"result", "ok"}}) >= 2,
             dump(host2, "visorlab_controlvm_messages_total"));
  BOOST_TEST(host2.sum("visorlab_io_operations_total", vhba) > ops);
  BOOST_TEST(host2.value("visorlab_partitions", {{"host", "a"}, {"state", "running"}}) == 4,
             dump(host2, "visorlab_partitions"));
  BOOST_TEST(host2.value("visorlab_partitions", {{"host", "a"}, {"state", "recovering"}}) == 0);
  BOOST_TEST(orch2.value("visorlab_devices", {{"host", "a"}, {"state", "running"}}) == 2);
  BOOST_TEST(orch2.value("visorlab_devices", {{"host", "a"}, {"state", "recovering"}}) == 0);

  // A crash (kill -9 of the IO partition): now there is a detect phase too.
  const auto crash = cluster.crash_service("io0", 0ms);
  BOOST_TEST_REQUIRE(crash.ok, crash.error);
  const Exposition host4 = scrape("partition host after a crash", host_port);
  const Exposition orch4 = scrape("orchestrator after a crash", orchestrator_port);
  for (const auto* e : {&host4, &orch4}) {
    BOOST_TEST(e->value("visorlab_recovery_phase_seconds_count",
                        {{"host", "a"}, {"partition", "io0"}, {"phase", "detect"}}) == 1,
               dump(*e, "visorlab_recovery_phase_seconds_count"));
    BOOST_TEST(e->value("visorlab_recovery_phase_seconds_count",
                        {{"host", "a"}, {"partition", "io0"}, {"phase", "total"}}) == 2);
  }

  workloads.stop();
  const auto drain = std::chrono::steady_clock::now() + 10s;
  while (!workloads.idle() && std::chrono::steady_clock::now() < drain)
    std::this_thread::sleep_for(5ms);

  // Torn down: every actor took its share back, the devices' series went
  // with their guest; the orchestrator counts nothing either.
  cluster.teardown();
  Exposition host3;
  for (const auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
    host3 = scrape("partition host after teardown", host_port);
    if (host3.sum("visorlab_partitions") == 0 && host3.sum("visorlab_devices") == 0) break;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(host3.sum("visorlab_partitions") == 0, dump(host3, "visorlab_partitions"));
  BOOST_TEST(host3.sum("visorlab_devices") == 0, dump(host3, "visorlab_devices"));
  BOOST_TEST(host3.series("visorlab_io_operations_total").empty(), dump(host3, "visorlab_io_operations_total"));
  BOOST_TEST(host3.series("visorlab_channel_queue_depth").empty(), dump(host3, "visorlab_channel_queue_depth"));
  const Exposition orch3 = scrape("orchestrator after teardown", orchestrator_port);
  BOOST_TEST(orch3.sum("visorlab_partitions") == 0, dump(orch3, "visorlab_partitions"));
  BOOST_TEST(orch3.sum("visorlab_devices") == 0, dump(orch3, "visorlab_devices"));
  BOOST_TEST(orch3.value("visorlab_agent_up", {{"host", "a"}}) == 1);

  // The agent stops (and stops its partition host): their port files go.
  c.local.reset();
  BOOST_TEST(!fs::exists(c.dir / "hosts" / "a" / "metrics.port"));
  BOOST_TEST(!fs::exists(c.dir / "hosts" / "a" / "agent-metrics.port"));
}
