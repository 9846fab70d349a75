// Every Prometheus metric visorlab exports (DESIGN.md "Metrics", docs/metrics.md),
// declared once, in one prometheus::Registry that a MetricsServer serves.
//
// Names carry the visorlab_ prefix and their unit (_total for counters,
// _seconds for durations); labels are host, partition, device plus one
// closed-set label per family (op, queue, event, id, result, phase, state).
// No family has a label named `le` other than the one prometheus-cpp adds to
// histogram buckets: the constructor checks every declared label name.
//
// The accessors return references to prometheus-cpp's metric objects, which
// stay valid until forget_device() removes them (or the Metrics dies), so a
// hot path looks a series up once and caches the reference. Those objects are
// thread-safe (atomic counters, a mutex per histogram), but a call still costs
// an atomic read-modify-write; for per-signal paths use the single-owner
// batching helpers in metrics/local.hpp (docs/metrics.md, "Cost").
//
// Accessors are thread-safe. Label values must be non-empty UTF-8 without
// control characters, at most 256 bytes; otherwise std::invalid_argument
// naming the family and the label.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace visorlab::metrics {

enum class IoOp { read, write };
enum class TransportEvent { partner_failed, deregistered, migrated };
enum class ControlvmResult { ok, error, timeout };
enum class RecoveryPhase { detect, pause, restart, resume, total };
// A fault its host reverted by itself when the orchestrator's lease lapsed.
enum class LeasedFault { pause, workload, partition };

// The label values ("read", "partner_failed", "timeout", "detect", …).
std::string_view to_string(IoOp op) noexcept;
std::string_view to_string(TransportEvent event) noexcept;
std::string_view to_string(ControlvmResult result) noexcept;
std::string_view to_string(RecoveryPhase phase) noexcept;
std::string_view to_string(LeasedFault fault) noexcept;

// Histogram bucket upper bounds, in seconds.
// I/O latency: 10 µs … 1 s (1-2.5-5 steps), 16 buckets plus +Inf.
const std::vector<double>& io_latency_buckets();
// Recovery phases: 100 µs … 10 s (the drill target is 100 ms), 16 plus +Inf.
const std::vector<double>& recovery_phase_buckets();

// The project version reported by visorlab_build_info (CMake's PROJECT_VERSION).
std::string_view build_version() noexcept;

// Throws std::invalid_argument unless `name` is a valid Prometheus label name
// that visorlab may declare: [a-zA-Z_][a-zA-Z0-9_]*, not reserved (__*), and
// neither `le` nor `quantile`, which histograms and summaries own.
void check_label_name(std::string_view name);
// Throws std::invalid_argument unless `value` is a valid visorlab label value
// (non-empty, ≤ 256 bytes, UTF-8, no control characters); the message names
// `family` and `label`.
void check_label_value(std::string_view family, std::string_view label, std::string_view value);

class Metrics {
 public:
  // Declares every family and sets visorlab_build_info{version} to 1.
  explicit Metrics(std::string_view version = build_version());
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics();

  // The registry every family lives in, for a MetricsServer (it holds a weak
  // reference) or any other prometheus-cpp consumer.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The text exposition format of everything, exactly what /metrics serves.
  std::string serialize() const;

  // visorlab_io_operations_total{host,partition,device,op}
  prometheus::Counter& io_ops(std::string_view host, std::string_view partition, std::string_view device, IoOp op);
  // visorlab_io_latency_seconds{host,partition,device} (io_latency_buckets)
  prometheus::Histogram& io_latency(std::string_view host, std::string_view partition, std::string_view device);
  // visorlab_channel_queue_depth{host,partition,device,queue}
  prometheus::Gauge& queue_depth(std::string_view host, std::string_view partition, std::string_view device,
                                 std::string_view queue);
  // visorlab_channel_overflows_total{host,partition,device,queue}
  prometheus::Counter& queue_overflows(std::string_view host, std::string_view partition, std::string_view device,
                                       std::string_view queue);
  // visorlab_transport_events_total{host,partition,device,event}
  prometheus::Counter& transport_events(std::string_view host, std::string_view partition, std::string_view device,
                                        TransportEvent event);
  // visorlab_controlvm_messages_total{host,partition,id,result}. `id` is the
  // message name in lower case ("device_create"); the spec's upper-case names
  // (channel::controlvm::id_name) are lowered here. It must match [a-z][a-z0-9_]*.
  prometheus::Counter& controlvm_messages(std::string_view host, std::string_view partition, std::string_view id,
                                          ControlvmResult result);
  // visorlab_recovery_phase_seconds{host,partition,phase} (recovery_phase_buckets)
  prometheus::Histogram& recovery_phase(std::string_view host, std::string_view partition, RecoveryPhase phase);
  // visorlab_partitions{host,state}: partitions of this host in that state.
  prometheus::Gauge& partitions(std::string_view host, std::string_view state);
  // visorlab_devices{host,state}: devices of this host in that state.
  prometheus::Gauge& devices(std::string_view host, std::string_view state);
  // visorlab_agent_up{host}: 1 while the host's agent is serving.
  prometheus::Gauge& agent_up(std::string_view host);
  // visorlab_faults_reverted_by_lease_total{host,kind}: faults the host
  // undid itself because the orchestrator stopped renewing its lease.
  prometheus::Counter& faults_reverted_by_lease(std::string_view host, LeasedFault kind);

  // Drops every series of one device (I/O, queues, transport events), e.g.
  // after it was destroyed, so /metrics does not grow with device churn.
  // References obtained for that device dangle afterwards: call it only once
  // nothing caches them any more.
  void forget_device(std::string_view host, std::string_view partition, std::string_view device);

 private:
  using DeviceKey = std::tuple<std::string, std::string, std::string>;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& io_ops_;
  prometheus::Family<prometheus::Histogram>& io_latency_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Counter>& queue_overflows_;
  prometheus::Family<prometheus::Counter>& transport_events_;
  prometheus::Family<prometheus::Counter>& controlvm_messages_;
  prometheus::Family<prometheus::Histogram>& recovery_phase_;
  prometheus::Family<prometheus::Gauge>& partitions_;
  prometheus::Family<prometheus::Gauge>& devices_;
  prometheus::Family<prometheus::Gauge>& agent_up_;
  prometheus::Family<prometheus::Counter>& reverted_by_lease_;
  prometheus::Family<prometheus::Gauge>& build_info_;

  // Queue names seen per device, for forget_device.
  std::mutex mutex_;
  std::map<DeviceKey, std::set<std::string>> device_queues_;
};

}  // namespace visorlab::metrics
