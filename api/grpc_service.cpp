#include "api/grpc_service.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "api/status.hpp"
#include "drill/workloads.hpp"
#include "topology/default_topology.hpp"
#include "topology/error.hpp"
#include "topology/load.hpp"
#include "topology/validate.hpp"

namespace visorlab::api {
namespace {

using orchestrator::Cluster;
using orchestrator::ClusterError;

using namespace std::chrono_literals;
using grpc::Status;
using grpc::StatusCode;

constexpr auto kEventPoll = 200ms;  // WatchEvents: how often a following stream checks for cancel/stop
constexpr std::uint64_t kMaxRestartAfterUs = 600'000'000;  // crash --restart-after: at most 10 minutes
constexpr std::size_t kMaxYamlBytes = 1 << 20;  // a topology file is small; this is not one

constexpr std::string_view kNotApplied = "no topology is applied (run `visorlab up FILE` first)";

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

// "a, b, c" — at most 8 names, then "…".
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == 8) return out + ", …";
    if (i) out += ", ";
    out += names[i];
  }
  return out;
}

Status bad(std::string message) { return {StatusCode::INVALID_ARGUMENT, std::move(message)}; }
Status missing(std::string message) { return {StatusCode::NOT_FOUND, std::move(message)}; }

// Runs one call's body, turning whatever it throws into a status.
template <class Body>
Status guarded(std::string_view call, const std::atomic<bool>& stopping, Body&& body) {
  if (stopping.load()) return {StatusCode::UNAVAILABLE, "the orchestrator is shutting down"};
  try {
    return body();
  } catch (const ClusterError& e) {
    return to_status(e);
  } catch (const topology::Error& e) {
    return bad(e.what());
  } catch (const std::exception& e) {
    return {StatusCode::INTERNAL, std::string(call) + ": " + e.what()};
  } catch (...) {
    return {StatusCode::INTERNAL, std::string(call) + ": unknown error"};
  }
}

std::int64_t steady_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A steady-clock time as wall-clock nanoseconds since the Unix epoch.
std::int64_t to_unix_ns(std::int64_t steady_ns) {
  const std::int64_t system_now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return system_now - (steady_now_ns() - steady_ns);
}

double span_ms(std::int64_t from_ns, std::int64_t to_ns) {
  if (from_ns == 0 || to_ns == 0 || to_ns < from_ns) return 0;
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

void fill_recovery(const actors::RecoveryTimes& t, v1::Recovery& r) {
  r.set_service(t.service);
  r.set_kind(std::string(actors::to_string(t.kind)));
  r.set_devices(t.devices);
  r.set_ok(t.ok);
  r.set_error(t.error);
  r.set_detect_ms(span_ms(t.start_ns, t.detect_ns));
  r.set_pause_ms(span_ms(t.detect_ns ? t.detect_ns : t.start_ns, t.paused_ns));
  r.set_restart_ms(span_ms(t.paused_ns, t.restarted_ns));
  r.set_resume_ms(span_ms(t.restarted_ns, t.resumed_ns));
  r.set_total_ms(span_ms(t.start_ns, t.resumed_ns));
}

void fill_device(const actors::DeviceInfo& d, v1::Device& out) {
  out.set_guest(d.guest);
  out.set_name(d.device);
  out.set_bus_name(d.bus_name);
  out.set_bus_no(d.bus_no);
  out.set_dev_no(d.dev_no);
  out.set_typeguid(d.typeguid);
  out.set_type_name(d.type_name);
  out.set_nbytes(d.nbytes);
  out.set_driver(d.driver);
  out.set_state(std::string(actors::to_string(d.state)));
}

std::vector<std::string> guest_names(const topology::Topology& t) {
  std::vector<std::string> names;
  for (const auto& g : t.guests) names.push_back(g.name);
  return names;
}

std::vector<std::string> service_names(const topology::Topology& t) {
  std::vector<std::string> names;
  for (const auto& s : t.services) names.push_back(s.name);
  return names;
}

std::size_t device_count(const topology::Topology& t) {
  std::size_t n = 0;
  for (const auto& g : t.guests) n += g.devices.size();
  return n;
}

}  // namespace

OrchestratorService::OrchestratorService(Cluster& cluster) : cluster_(cluster) {}

void OrchestratorService::stop() { stopping_.store(true); }

bool OrchestratorService::applied_topology(topology::Topology& out) const {
  if (!cluster_.applied()) return false;
  try {
    out = cluster_.topology();
  } catch (const ClusterError& e) {
    if (e.code() == ClusterError::Code::failed_precondition) return false;  // torn down meanwhile
    throw;
  }
  return true;
}

Status OrchestratorService::check_device(const std::string& device) {
  if (device.empty()) return bad("no device named: name one like g0/vhba0");
  const auto name = topology::parse_device_name(device);
  if (!name) return bad(in_quotes(device) + " is not a device name; devices are named GUEST/KINDN, like g0/vhba0");
  topology::Topology t;
  if (!applied_topology(t)) return missing("no device " + in_quotes(device) + ": " + std::string(kNotApplied));
  if (!t.find_guest(name->guest))
    return missing("no device " + in_quotes(device) + ": topology " + in_quotes(t.name) + " has no guest " +
                   in_quotes(name->guest) + " (guests: " + name_list(guest_names(t)) + ")");
  if (t.find_device(device)) return Status::OK;  // the cluster says if it has been destroyed since
  for (const auto& d : cluster_.created_devices(name->guest))
    if (d.name == device) return Status::OK;
  std::vector<std::string> present;
  for (const auto& d : cluster_.devices()) {
    if (d.device == device) return Status::OK;
    if (d.guest == name->guest && !d.device.empty()) present.push_back(d.device);
  }
  return missing("no device " + in_quotes(device) + " on guest " + in_quotes(name->guest) +
                 (present.empty() ? std::string(" (it has none)") : " (it has " + name_list(present) + ")"));
}

Status OrchestratorService::check_service(const std::string& service) {
  if (service.empty()) return bad("no service named: name one of the topology's services, like io0");
  topology::Topology t;
  if (!applied_topology(t)) return missing("no service " + in_quotes(service) + ": " + std::string(kNotApplied));
  if (!t.find_service(service))
    return missing("no service " + in_quotes(service) + " in topology " + in_quotes(t.name) +
                   " (services: " + name_list(service_names(t)) + ")");
  return Status::OK;
}

// Names and numbers a new device as the topology parser would: the next
// unused number of its kind on the guest and the next device slot on its bus.
// Names are never reused, so events stay unambiguous.
void OrchestratorService::name_new_device(const topology::Topology& t, const std::string& guest_name,
                                          topology::Device& device) {
  std::uint32_t next_n = 0;
  std::uint32_t next_dev = 0;
  const std::uint32_t bus = topology::bus_for(device.kind);
  auto see = [&](const std::string& name, std::uint32_t bus_no, std::uint32_t dev_no) {
    if (const auto n = topology::parse_device_name(name); n && n->guest == guest_name && n->kind == device.kind)
      next_n = std::max(next_n, n->n + 1);
    if (bus_no == bus) next_dev = std::max(next_dev, dev_no + 1);
  };
  if (const auto* g = t.find_guest(guest_name))
    for (const auto& d : g->devices) see(d.name, d.bus, d.dev);
  for (const auto& step : t.drill.steps)
    if (step.created && step.target() == guest_name) see(step.created->name, step.created->bus, step.created->dev);
  for (const auto& d : cluster_.created_devices(guest_name)) see(d.name, d.bus, d.dev);
  for (const auto& d : cluster_.devices())
    if (d.guest == guest_name) see(d.device, d.bus_no, d.dev_no);
  device.name = topology::device_name(guest_name, device.kind, next_n);
  device.bus = bus;
  device.dev = next_dev;
}

Status OrchestratorService::ApplyTopology(grpc::ServerContext*, const v1::ApplyTopologyRequest* request,
                                          v1::ApplyTopologyResponse* response) {
  return guarded("ApplyTopology", stopping_, [&]() -> Status {
    const std::string label = request->file_label().empty() ? "(request)" : request->file_label();
    if (request->topology_yaml().empty()) return bad(label + ": empty topology: send the text of a topology file");
    if (request->topology_yaml().size() > kMaxYamlBytes)
      return bad(label + ": " + std::to_string(request->topology_yaml().size()) +
                 " bytes is too large for a topology file (limit " + std::to_string(kMaxYamlBytes) + ")");
    const topology::Topology t = topology::load_string(request->topology_yaml(), label);
    if (cluster_.applied()) {
      std::string name;
      try {
        name = cluster_.topology().name;
      } catch (const ClusterError&) {
      }
      return {StatusCode::FAILED_PRECONDITION,
              "topology " + in_quotes(name) + " is already applied: run `visorlab down` before applying " + label};
    }
    cluster_.apply(t);
    response->set_name(t.name);
    for (const auto& h : t.hosts) response->add_hosts(h.name);
    response->set_services(static_cast<std::uint32_t>(t.services.size()));
    response->set_guests(static_cast<std::uint32_t>(t.guests.size()));
    response->set_devices(static_cast<std::uint32_t>(device_count(t)));
    return Status::OK;
  });
}

Status OrchestratorService::Teardown(grpc::ServerContext*, const v1::TeardownRequest*,
                                     v1::TeardownResponse* response) {
  return guarded("Teardown", stopping_, [&]() -> Status {
    topology::Topology t;
    const bool was = applied_topology(t);
    cluster_.teardown();
    response->set_was_applied(was);
    if (was) response->set_name(t.name);
    return Status::OK;
  });
}

Status OrchestratorService::ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest* request,
                                       v1::ListAgentsResponse* response) {
  return guarded("ListAgents", stopping_, [&]() -> Status {
    const auto agents = cluster_.agents();
    const std::int64_t now = steady_now_ns();
    std::vector<std::string> hosts;
    for (const auto& a : agents) {
      hosts.push_back(a.host);
      if (!request->host().empty() && a.host != request->host()) continue;
      auto* out = response->add_agents();
      out->set_host(a.host);
      out->set_address(a.address);
      out->set_up(a.up);
      out->set_since_s(a.since_ns > 0 && now > a.since_ns ? static_cast<double>(now - a.since_ns) / 1e9 : 0.0);
    }
    if (!request->host().empty() && response->agents_size() == 0)
      return missing("no agent " + in_quotes(request->host()) +
                     (hosts.empty() ? std::string(" (no agents have registered)")
                                    : " (registered: " + name_list(hosts) + ")"));
    return Status::OK;
  });
}

Status OrchestratorService::ListDevices(grpc::ServerContext*, const v1::ListDevicesRequest* request,
                                        v1::ListDevicesResponse* response) {
  return guarded("ListDevices", stopping_, [&]() -> Status {
    topology::Topology t;
    if (!applied_topology(t)) return {StatusCode::FAILED_PRECONDITION, "no devices: " + std::string(kNotApplied)};
    const std::string& guest = request->guest();
    if (!guest.empty() && !t.find_guest(guest))
      return missing("no guest " + in_quotes(guest) + " in topology " + in_quotes(t.name) +
                     " (guests: " + name_list(guest_names(t)) + ")");
    for (const auto& d : cluster_.devices())
      if (guest.empty() || d.guest == guest) fill_device(d, *response->add_devices());
    return Status::OK;
  });
}

Status OrchestratorService::CreateDevice(grpc::ServerContext*, const v1::CreateDeviceRequest* request,
                                         v1::CreateDeviceResponse* response) {
  return guarded("CreateDevice", stopping_, [&]() -> Status {
    if (request->guest().empty()) return bad("no guest named: name the guest to create the device on, like g0");
    if (request->kind().empty()) return bad("no device kind: one of vhba, vnic, keyboard or mouse");
    const auto kind = topology::device_kind_from(request->kind());
    if (!kind) return bad("unknown device kind " + in_quotes(request->kind()) + "; expected vhba, vnic, keyboard or mouse");
    if (request->service().empty()) return bad("no service named: name the service partition that serves the device");
    topology::Topology t;
    if (!applied_topology(t))
      return missing("no guest " + in_quotes(request->guest()) + ": " + std::string(kNotApplied));
    if (!t.find_guest(request->guest()))
      return missing("no guest " + in_quotes(request->guest()) + " in topology " + in_quotes(t.name) +
                     " (guests: " + name_list(guest_names(t)) + ")");
    if (!t.find_service(request->service()))
      return missing("no service " + in_quotes(request->service()) + " in topology " + in_quotes(t.name) +
                     " (services: " + name_list(service_names(t)) + ")");

    topology::Device d;
    d.kind = *kind;
    d.service = request->service();
    if (request->disk_size_bytes() > 0) d.disk_size = request->disk_size_bytes();
    d.disks.assign(request->disks().begin(), request->disks().end());
    d.switch_name = request->switch_name();
    d.sriov = request->sriov();
    d.source = "device";
    name_new_device(t, request->guest(), d);

    // The topology's own rules decide whether the device fits: the applied
    // topology plus this device (and those created before it), without the
    // drill's steps, must validate.
    topology::Topology with = t;
    with.drill.steps.clear();
    for (auto& g : with.guests) {
      for (const auto& c : cluster_.created_devices(g.name)) g.devices.push_back(c);
      if (g.name == request->guest()) g.devices.push_back(d);
    }
    try {
      topology::validate(with);
    } catch (const topology::Error& e) {
      std::string field = e.field();
      if (field.rfind("device.", 0) == 0) field = field.substr(7);
      return bad("cannot create a " + request->kind() + " on " + request->guest() + ": " +
                 (field.empty() || field == "device" ? "" : field + ": ") + e.message());
    }

    cluster_.create_device(request->guest(), d);
    response->set_device(d.name);
    response->set_bus_name(topology::bus_address(d));
    return Status::OK;
  });
}

Status OrchestratorService::DestroyDevice(grpc::ServerContext*, const v1::DestroyDeviceRequest* request,
                                          v1::DestroyDeviceResponse*) {
  return guarded("DestroyDevice", stopping_, [&]() -> Status {
    if (Status s = check_device(request->device()); !s.ok()) return s;
    // The guest's workload lets go of it first, so nothing is in flight.
    drill::Workloads(cluster_).quiesce(request->device());
    cluster_.destroy_device(request->device());
    return Status::OK;
  });
}

Status OrchestratorService::PauseDevice(grpc::ServerContext*, const v1::PauseDeviceRequest* request,
                                        v1::PauseDeviceResponse*) {
  return guarded("PauseDevice", stopping_, [&]() -> Status {
    if (Status s = check_device(request->device()); !s.ok()) return s;
    cluster_.pause_device(request->device());
    return Status::OK;
  });
}

Status OrchestratorService::ResumeDevice(grpc::ServerContext*, const v1::ResumeDeviceRequest* request,
                                         v1::ResumeDeviceResponse*) {
  return guarded("ResumeDevice", stopping_, [&]() -> Status {
    if (Status s = check_device(request->device()); !s.ok()) return s;
    cluster_.resume_device(request->device());
    return Status::OK;
  });
}

Status OrchestratorService::RecoverService(grpc::ServerContext*, const v1::RecoverServiceRequest* request,
                                           v1::RecoverServiceResponse* response) {
  return guarded("RecoverService", stopping_, [&]() -> Status {
    if (Status s = check_service(request->service()); !s.ok()) return s;
    fill_recovery(cluster_.recover_service(request->service()), *response->mutable_recovery());
    return Status::OK;
  });
}

Status OrchestratorService::CrashService(grpc::ServerContext*, const v1::CrashServiceRequest* request,
                                         v1::CrashServiceResponse* response) {
  return guarded("CrashService", stopping_, [&]() -> Status {
    if (Status s = check_service(request->service()); !s.ok()) return s;
    if (request->restart_after_us() > kMaxRestartAfterUs)
      return bad("restart_after " + std::to_string(request->restart_after_us() / 1000) +
                 "ms is longer than the 10-minute limit");
    const std::chrono::milliseconds after((request->restart_after_us() + 999) / 1000);
    fill_recovery(cluster_.crash_service(request->service(), after), *response->mutable_recovery());
    return Status::OK;
  });
}

Status OrchestratorService::WatchEvents(grpc::ServerContext* context, const v1::WatchEventsRequest* request,
                                        grpc::ServerWriter<v1::Event>* writer) {
  return guarded("WatchEvents", stopping_, [&]() -> Status {
    std::uint64_t after = request->after_index();
    for (;;) {
      if (context->IsCancelled()) return Status::CANCELLED;
      if (stopping_.load()) return {StatusCode::UNAVAILABLE, "the orchestrator is shutting down"};
      const auto events = cluster_.events(after, request->follow() ? kEventPoll : 0ms);
      for (const auto& e : events) {
        v1::Event out;
        out.set_index(e.index);
        out.set_unix_ns(to_unix_ns(e.at_ns));
        out.set_kind(e.kind);
        out.set_target(e.target);
        out.set_detail(e.detail);
        if (!writer->Write(out)) return Status::CANCELLED;  // the client went away
        after = std::max(after, e.index);
      }
      if (!request->follow() && events.empty()) return Status::OK;
    }
  });
}

Status OrchestratorService::RunDrill(grpc::ServerContext* context, const v1::RunDrillRequest* request,
                                     grpc::ServerWriter<v1::DrillEvent>* writer) {
  return guarded("RunDrill", stopping_, [&]() -> Status {
    if (request->topology_yaml().size() > kMaxYamlBytes)
      return bad("the drill file is too large (" + std::to_string(request->topology_yaml().size()) + " bytes)");
    const std::string label = request->file_label().empty() ? "(request)" : request->file_label();
    const topology::Topology t = request->topology_yaml().empty()
                                     ? topology::default_topology()
                                     : topology::load_string(request->topology_yaml(), label);
    // The engine drills the applied topology, applying this one if none is:
    // another one applied would be drilled with this file's steps.
    if (topology::Topology applied; applied_topology(applied) && applied.name != t.name)
      return {StatusCode::FAILED_PRECONDITION, "topology " + in_quotes(applied.name) +
                                                   " is applied, not the drill's " + in_quotes(t.name) +
                                                   ": run `visorlab down` first"};
    if (drill_running_.exchange(true)) return {StatusCode::ABORTED, "a drill is already running on this cluster"};
    struct Release {
      std::atomic<bool>& flag;
      ~Release() { flag.store(false); }
    } release{drill_running_};

    std::mutex write_mutex;
    bool client_gone = false;
    const auto progress = [&](const drill::DrillProgress& p) {
      v1::DrillEvent event;
      auto* out = event.mutable_progress();
      out->set_elapsed_s(p.elapsed_s);
      out->set_step(p.step);
      out->set_iops(p.iops);
      out->set_paused(p.paused);
      std::lock_guard lock(write_mutex);
      if (!client_gone && !context->IsCancelled()) client_gone = !writer->Write(event);
    };
    // A client that went away (Ctrl-C, a deadline) or a stopping daemon ends
    // the drill early — its faults reverted — instead of holding the cluster.
    const auto cancelled = [&] { return stopping_.load() || context->IsCancelled(); };
    const drill::DrillOutcome outcome = drill::run_drill(cluster_, t, progress, cancelled);
    if (outcome.cancelled) return Status::CANCELLED;

    v1::DrillEvent event;
    auto* report = event.mutable_report();
    report->set_json(outcome.report.dump(2));
    report->set_passed(outcome.passed);
    report->set_summary(outcome.summary);
    report->set_svg(outcome.svg);
    std::lock_guard lock(write_mutex);
    if (client_gone || context->IsCancelled() || !writer->Write(event)) return Status::CANCELLED;
    return Status::OK;
  });
}

}  // namespace visorlab::api
