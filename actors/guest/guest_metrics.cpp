#include "actors/guest/guest_metrics.hpp"

#include <spdlog/spdlog.h>

#include "channel/channel_types.hpp"
#include "channel/iochannel.hpp"
#include "metrics/local.hpp"

namespace visorlab::guest {
namespace {

// A vhba device's I/O as visorhba reports it, into an IoRecorder (adaptive
// sampling: about one request per millisecond is timed, whatever the rate).
class HbaIo final : public drivers::IoObserver {
 public:
  HbaIo(metrics::Metrics& m, const std::string& host, const std::string& partition, const std::string& device)
      : io_(m, host, partition, device) {}
  // The token is the sample's weight (never 0): requests overlap, each keeps its own.
  std::uint32_t sample(bool write) noexcept override {
    const metrics::IoOp op = write ? metrics::IoOp::write : metrics::IoOp::read;
    return io_.sample(op) ? io_.weight(op) : 0;
  }
  void done(bool write, std::chrono::nanoseconds latency, std::uint32_t weight) noexcept override {
    io_.done(write ? metrics::IoOp::write : metrics::IoOp::read, std::chrono::duration<double>(latency).count(),
             weight);
  }
  void idle() noexcept override { io_.idle(); }
  void flush() noexcept { io_.flush(); }

 private:
  metrics::IoRecorder io_;
};

// The queue label: the kernel's names for the two I/O channel queues, else the index.
std::string queue_name(const bus::Device& d, std::uint32_t q) {
  const channel::ChannelType* type = channel::find_type(d.typeguid());
  if (type && (type->kind == channel::ChannelKind::vhba || type->kind == channel::ChannelKind::vnic)) {
    if (q == channel::io::to_iopart) return "to_iopart";
    if (q == channel::io::from_iopart) return "from_iopart";
  }
  return std::to_string(q);
}

}  // namespace

GuestMetrics::GuestMetrics(std::shared_ptr<metrics::Metrics> metrics, std::string host, std::string partition)
    : metrics_(std::move(metrics)),
      host_(std::move(host)),
      partition_(std::move(partition)),
      partition_share_(*metrics_, metrics::StateShare::Family::partitions, host_),
      device_share_(*metrics_, metrics::StateShare::Family::devices, host_) {
  partition_share_.set_one("running");
}

GuestMetrics::~GuestMetrics() {
  // The guest's devices end with it: their series go too, so a partition
  // host that outlives many topologies does not serve their stale gauges.
  while (!devices_.empty()) forget(devices_.begin()->first);
}

GuestMetrics::Device* GuestMetrics::device(const std::string& name) {
  if (auto it = devices_.find(name); it != devices_.end()) return &it->second;
  try {
    metrics::check_label_value("visorlab_io_operations_total", "device", name);
  } catch (const std::exception& e) {
    spdlog::warn("guest {}: no metrics for device: {}", partition_, e.what());
    return nullptr;
  }
  return &devices_[name];
}

drivers::IoObserver* GuestMetrics::io_observer(const std::string& name) {
  Device* d = device(name);
  if (!d) return nullptr;
  if (!d->io) d->io = std::make_unique<HbaIo>(*metrics_, host_, partition_, name);
  return d->io.get();
}

void GuestMetrics::sample(bus::VirtualBus& bus,
                          const std::function<const std::string&(const bus::Device&)>& name_of) {
  std::map<std::string, std::int64_t, std::less<>> states;
  for (const bus::Device* seen : bus.devices()) {
    ++states[std::string(actors::to_string(seen->state()))];
    const std::string& name = name_of(*seen);
    if (name.empty()) continue;
    Device* d = device(name);
    if (!d) continue;
    if (d->io) static_cast<HbaIo*>(d->io.get())->flush();
    // Only a running device's channel: touching one between pause and
    // resume is a violation the pause guard records.
    bus::Device* dev = bus.find(seen->bus_no(), seen->dev_no());
    channel::Channel* ch = dev ? dev->channel() : nullptr;
    if (!ch || dev->state() != bus::DeviceState::running || ch->paused()) continue;
    while (d->queues.size() < ch->queue_count()) {
      const auto q = static_cast<std::uint32_t>(d->queues.size());
      const std::string queue = queue_name(*dev, q);
      d->queues.push_back({&metrics_->queue_depth(host_, partition_, name, queue),
                           &metrics_->queue_overflows(host_, partition_, name, queue), 0});
    }
    for (std::uint32_t q = 0; q < ch->queue_count(); ++q) {
      Queue& queue = d->queues[q];
      queue.depth->Set(ch->queue(q).pending());
      const std::uint64_t overflows = ch->queue_header(q).num_overflows;
      if (overflows > queue.overflows_seen)
        queue.overflows->Increment(static_cast<double>(overflows - queue.overflows_seen));
      queue.overflows_seen = overflows;  // a fresh channel starts again from 0
    }
  }
  device_share_.set(states);
}

void GuestMetrics::forget(const std::string& name) {
  const auto it = devices_.find(name);
  if (it == devices_.end()) return;
  const std::string device = name;  // `name` may be the key erased next
  devices_.erase(it);                // the recorder publishes, then no reference is held
  metrics_->forget_device(host_, partition_, device);
}

void GuestMetrics::count_transport_event(metrics::Metrics& metrics, const std::string& host,
                                         const std::string& partition, const std::string& device,
                                         std::uint32_t code) noexcept {
  metrics::TransportEvent event;
  switch (code) {
    case 0x01: event = metrics::TransportEvent::partner_failed; break;
    case 0x02: event = metrics::TransportEvent::deregistered; break;
    case 0x06: event = metrics::TransportEvent::migrated; break;
    default: return;
  }
  try {
    metrics.transport_events(host, partition, device, event).Increment();
  } catch (const std::exception&) {
    // a device name that is no valid label value: not counted
  }
}

}  // namespace visorlab::guest
