#include "metrics/registry.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>

#include <prometheus/text_serializer.h>

#ifndef VISORLAB_VERSION
#define VISORLAB_VERSION "unknown"
#endif

namespace visorlab::metrics {

namespace {

enum class Kind { counter, gauge, histogram };

// One family: its name, help text and label names in accessor argument order.
// The single source for declaring a family, checking it and labelling a series.
// constexpr, so a Metrics built during static initialisation elsewhere is safe.
struct FamilySpec {
  std::string_view name;
  Kind kind;
  std::string_view help;
  std::array<std::string_view, 4> label_names;  // unused tail entries empty

  constexpr std::size_t label_count() const {
    std::size_t n = 0;
    while (n < label_names.size() && !label_names[n].empty()) ++n;
    return n;
  }
};

constexpr FamilySpec kIoOps{"visorlab_io_operations_total", Kind::counter,
                        "I/O operations performed by a device, by operation.",
                        {"host", "partition", "device", "op"}};
constexpr FamilySpec kIoLatency{"visorlab_io_latency_seconds", Kind::histogram,
                            "I/O latency of a device, issue to completion, in seconds.",
                            {"host", "partition", "device"}};
constexpr FamilySpec kQueueDepth{"visorlab_channel_queue_depth", Kind::gauge,
                             "Signals pending in a channel signal queue.",
                             {"host", "partition", "device", "queue"}};
constexpr FamilySpec kQueueOverflows{"visorlab_channel_overflows_total", Kind::counter,
                                 "Inserts refused because a channel signal queue was full.",
                                 {"host", "partition", "device", "queue"}};
constexpr FamilySpec kTransportEvents{"visorlab_transport_events_total", Kind::counter,
                                  "Channel transport events (partner failed, deregistered, migrated).",
                                  {"host", "partition", "device", "event"}};
constexpr FamilySpec kControlvm{"visorlab_controlvm_messages_total", Kind::counter,
                            "Controlvm messages handled, by message id and result.",
                            {"host", "partition", "id", "result"}};
constexpr FamilySpec kRecoveryPhase{"visorlab_recovery_phase_seconds", Kind::histogram,
                                "Duration of each phase of a service partition recovery, in seconds.",
                                {"host", "partition", "phase"}};
constexpr FamilySpec kPartitions{"visorlab_partitions", Kind::gauge, "Partitions on a host, by state.",
                             {"host", "state"}};
constexpr FamilySpec kDevices{"visorlab_devices", Kind::gauge, "Devices on a host, by state.", {"host", "state"}};
constexpr FamilySpec kAgentUp{"visorlab_agent_up", Kind::gauge, "1 while the host's visorlab agent is serving.",
                          {"host"}};
constexpr FamilySpec kRevertedByLease{"visorlab_faults_reverted_by_lease_total", Kind::counter,
                                      "Faults a host reverted by itself when the orchestrator's lease lapsed.",
                                      {"host", "kind"}};
constexpr FamilySpec kBuildInfo{"visorlab_build_info", Kind::gauge, "Always 1; the visorlab version as a label.",
                            {"version"}};

constexpr std::array<const FamilySpec*, 12> kAll = {&kIoOps,     &kIoLatency, &kQueueDepth, &kQueueOverflows,
                                                &kTransportEvents, &kControlvm, &kRecoveryPhase, &kPartitions,
                                                &kDevices,   &kAgentUp,   &kRevertedByLease, &kBuildInfo};

void check_family(const FamilySpec& f) {
  const auto fail = [&](const std::string& why) {
    throw std::logic_error("metrics: family " + std::string(f.name) + ": " + why);
  };
  if (!f.name.starts_with("visorlab_")) fail("name lacks the visorlab_ prefix");
  if ((f.kind == Kind::counter) != f.name.ends_with("_total")) fail("only counters, and all of them, end in _total");
  if (f.kind == Kind::histogram && !f.name.ends_with("_seconds")) fail("histograms here measure seconds");
  if (f.help.empty()) fail("no help text");
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < f.label_count(); ++i) {
    const std::string_view label = f.label_names[i];
    try {
      check_label_name(label);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    if (!seen.insert(label).second) fail("label " + std::string(label) + " twice");
  }
}

template <class Builder>
auto& declare(Builder builder, const FamilySpec& f, prometheus::Registry& registry) {
  return builder.Name(std::string(f.name)).Help(std::string(f.help)).Register(registry);
}

// Zips the family's label names with the accessor's values, validating each.
prometheus::Labels labels(const FamilySpec& f, std::initializer_list<std::string_view> values) {
  if (values.size() != f.label_count())
    throw std::logic_error("metrics: " + std::string(f.name) + ": label count mismatch");
  prometheus::Labels out;
  auto value = values.begin();
  for (std::size_t i = 0; i < f.label_count(); ++i, ++value) {
    check_label_value(f.name, f.label_names[i], *value);
    out.emplace(std::string(f.label_names[i]), std::string(*value));
  }
  return out;
}

// Length of the UTF-8 sequence starting at s[i], or 0 if it is not valid
// (overlong forms, surrogates and code points above U+10FFFF are not).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t c = byte(i);
  if (c < 0x80) return 1;
  std::size_t n;
  std::uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool is_name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

}  // namespace

std::string_view to_string(IoOp op) noexcept { return op == IoOp::read ? "read" : "write"; }

std::string_view to_string(TransportEvent event) noexcept {
  switch (event) {
    case TransportEvent::partner_failed: return "partner_failed";
    case TransportEvent::deregistered: return "deregistered";
    case TransportEvent::migrated: return "migrated";
  }
  return "unknown";
}

std::string_view to_string(ControlvmResult result) noexcept {
  switch (result) {
    case ControlvmResult::ok: return "ok";
    case ControlvmResult::error: return "error";
    case ControlvmResult::timeout: return "timeout";
  }
  return "unknown";
}

std::string_view to_string(RecoveryPhase phase) noexcept {
  switch (phase) {
    case RecoveryPhase::detect: return "detect";
    case RecoveryPhase::pause: return "pause";
    case RecoveryPhase::restart: return "restart";
    case RecoveryPhase::resume: return "resume";
    case RecoveryPhase::total: return "total";
  }
  return "unknown";
}

std::string_view to_string(LeasedFault fault) noexcept {
  switch (fault) {
    case LeasedFault::pause: return "pause";
    case LeasedFault::workload: return "workload";
    case LeasedFault::partition: return "partition";
  }
  return "unknown";
}

const std::vector<double>& io_latency_buckets() {
  static const std::vector<double> buckets = {10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,  2.5e-3,
                                              5e-3,  10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 500e-3, 1.0};
  return buckets;
}

const std::vector<double>& recovery_phase_buckets() {
  static const std::vector<double> buckets = {100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3, 5e-3, 10e-3, 25e-3,
                                              50e-3,  100e-3, 250e-3, 500e-3, 1.0,    2.5,  5.0,   10.0};
  return buckets;
}

std::string_view build_version() noexcept { return VISORLAB_VERSION; }

void check_label_name(std::string_view name) {
  const auto fail = [&](const char* why) {
    throw std::invalid_argument("label name '" + std::string(name) + "' " + why);
  };
  if (name.empty()) fail("is empty");
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!is_name_char(name[i], i == 0)) fail("is not [a-zA-Z_][a-zA-Z0-9_]*");
  if (name.starts_with("__")) fail("is reserved (starts with __)");
  if (name == "le") fail("is reserved for histogram buckets (DESIGN.md: no label named le)");
  if (name == "quantile") fail("is reserved for summary quantiles");
}

void check_label_value(std::string_view family, std::string_view label, std::string_view value) {
  const auto fail = [&](const std::string& why) {
    throw std::invalid_argument("metrics: " + std::string(family) + ": label '" + std::string(label) + "' " + why);
  };
  if (value.empty()) fail("must not be empty");
  if (value.size() > 256) fail("is longer than 256 bytes");
  for (std::size_t i = 0; i < value.size();) {
    const std::size_t n = utf8_sequence(value, i);
    if (n == 0) fail("is not valid UTF-8 (byte " + std::to_string(i) + ")");
    const auto c = static_cast<unsigned char>(value[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F)) fail("contains a control character (byte " + std::to_string(i) + ")");
    i += n;
  }
}

Metrics::Metrics(std::string_view version)
    : registry_(std::make_shared<prometheus::Registry>()),
      io_ops_(declare(prometheus::BuildCounter(), kIoOps, *registry_)),
      io_latency_(declare(prometheus::BuildHistogram(), kIoLatency, *registry_)),
      queue_depth_(declare(prometheus::BuildGauge(), kQueueDepth, *registry_)),
      queue_overflows_(declare(prometheus::BuildCounter(), kQueueOverflows, *registry_)),
      transport_events_(declare(prometheus::BuildCounter(), kTransportEvents, *registry_)),
      controlvm_messages_(declare(prometheus::BuildCounter(), kControlvm, *registry_)),
      recovery_phase_(declare(prometheus::BuildHistogram(), kRecoveryPhase, *registry_)),
      partitions_(declare(prometheus::BuildGauge(), kPartitions, *registry_)),
      devices_(declare(prometheus::BuildGauge(), kDevices, *registry_)),
      agent_up_(declare(prometheus::BuildGauge(), kAgentUp, *registry_)),
      reverted_by_lease_(declare(prometheus::BuildCounter(), kRevertedByLease, *registry_)),
      build_info_(declare(prometheus::BuildGauge(), kBuildInfo, *registry_)) {
  for (const FamilySpec* f : kAll) check_family(*f);
  build_info_.Add(labels(kBuildInfo, {version})).Set(1);
}

Metrics::~Metrics() = default;

std::string Metrics::serialize() const { return prometheus::TextSerializer().Serialize(registry_->Collect()); }

prometheus::Counter& Metrics::io_ops(std::string_view host, std::string_view partition, std::string_view device,
                                     IoOp op) {
  return io_ops_.Add(labels(kIoOps, {host, partition, device, to_string(op)}));
}

prometheus::Histogram& Metrics::io_latency(std::string_view host, std::string_view partition,
                                           std::string_view device) {
  return io_latency_.Add(labels(kIoLatency, {host, partition, device}), io_latency_buckets());
}

prometheus::Gauge& Metrics::queue_depth(std::string_view host, std::string_view partition, std::string_view device,
                                        std::string_view queue) {
  auto l = labels(kQueueDepth, {host, partition, device, queue});
  {
    std::lock_guard lock(mutex_);
    device_queues_[DeviceKey(host, partition, device)].emplace(queue);
  }
  return queue_depth_.Add(l);
}

prometheus::Counter& Metrics::queue_overflows(std::string_view host, std::string_view partition,
                                              std::string_view device, std::string_view queue) {
  auto l = labels(kQueueOverflows, {host, partition, device, queue});
  {
    std::lock_guard lock(mutex_);
    device_queues_[DeviceKey(host, partition, device)].emplace(queue);
  }
  return queue_overflows_.Add(l);
}

prometheus::Counter& Metrics::transport_events(std::string_view host, std::string_view partition,
                                               std::string_view device, TransportEvent event) {
  return transport_events_.Add(labels(kTransportEvents, {host, partition, device, to_string(event)}));
}

prometheus::Counter& Metrics::controlvm_messages(std::string_view host, std::string_view partition,
                                                 std::string_view id, ControlvmResult result) {
  std::string lowered(id);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  const bool ok = !lowered.empty() && lowered.front() >= 'a' && lowered.front() <= 'z' &&
                  std::all_of(lowered.begin(), lowered.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                  });
  if (!ok)
    throw std::invalid_argument("metrics: " + std::string(kControlvm.name) + ": label 'id' must be a message name " +
                                "like device_create ([a-z][a-z0-9_]*), got '" + std::string(id) + "'");
  return controlvm_messages_.Add(labels(kControlvm, {host, partition, lowered, to_string(result)}));
}

prometheus::Histogram& Metrics::recovery_phase(std::string_view host, std::string_view partition,
                                               RecoveryPhase phase) {
  return recovery_phase_.Add(labels(kRecoveryPhase, {host, partition, to_string(phase)}), recovery_phase_buckets());
}

prometheus::Gauge& Metrics::partitions(std::string_view host, std::string_view state) {
  return partitions_.Add(labels(kPartitions, {host, state}));
}

prometheus::Gauge& Metrics::devices(std::string_view host, std::string_view state) {
  return devices_.Add(labels(kDevices, {host, state}));
}

prometheus::Gauge& Metrics::agent_up(std::string_view host) { return agent_up_.Add(labels(kAgentUp, {host})); }

prometheus::Counter& Metrics::faults_reverted_by_lease(std::string_view host, LeasedFault kind) {
  return reverted_by_lease_.Add(labels(kRevertedByLease, {host, to_string(kind)}));
}

void Metrics::forget_device(std::string_view host, std::string_view partition, std::string_view device) {
  // Removes the series with these labels, if it exists, without creating it.
  const auto drop = [](auto& family, const prometheus::Labels& l, auto&&... args) {
    if (family.Has(l)) family.Remove(&family.Add(l, args...));
  };
  for (const IoOp op : {IoOp::read, IoOp::write}) drop(io_ops_, labels(kIoOps, {host, partition, device, to_string(op)}));
  drop(io_latency_, labels(kIoLatency, {host, partition, device}), io_latency_buckets());
  for (const TransportEvent e : {TransportEvent::partner_failed, TransportEvent::deregistered, TransportEvent::migrated})
    drop(transport_events_, labels(kTransportEvents, {host, partition, device, to_string(e)}));

  std::set<std::string> queues;
  {
    std::lock_guard lock(mutex_);
    const auto it = device_queues_.find(DeviceKey(host, partition, device));
    if (it != device_queues_.end()) {
      queues = std::move(it->second);
      device_queues_.erase(it);
    }
  }
  for (const auto& q : queues) {
    drop(queue_depth_, labels(kQueueDepth, {host, partition, device, q}));
    drop(queue_overflows_, labels(kQueueOverflows, {host, partition, device, q}));
  }
}

}  // namespace visorlab::metrics
