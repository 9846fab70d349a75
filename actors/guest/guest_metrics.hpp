// A guest's metrics (docs/metrics.md), kept by its Guest on the guest's
// thread:
//   visorlab_io_operations_total, visorlab_io_latency_seconds  per vhba device,
//     through an IoRecorder the driver reports to (VisorHba's IoObserver);
//   visorlab_channel_queue_depth, visorlab_channel_overflows_total  per
//     device channel queue, read from the queue headers every 100 ms;
//   visorlab_devices{host,state}  this guest's share, from its bus;
//   visorlab_partitions{host,state}  the guest itself, "running";
//   visorlab_transport_events_total  counted from the channels' event handlers
//     (any thread: count_transport_event()).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/bus/virtual_bus.hpp"
#include "actors/drivers/visorhba.hpp"
#include "metrics/registry.hpp"
#include "metrics/state_share.hpp"

namespace visorlab::guest {

class GuestMetrics {
 public:
  static constexpr std::chrono::milliseconds kSamplePeriod{100};

  GuestMetrics(std::shared_ptr<metrics::Metrics> metrics, std::string host, std::string partition);
  GuestMetrics(const GuestMetrics&) = delete;
  GuestMetrics& operator=(const GuestMetrics&) = delete;
  ~GuestMetrics();

  // The I/O observer of a vhba device (made on first use; null if the name
  // is not a valid label value). Valid until forget(device).
  drivers::IoObserver* io_observer(const std::string& device);

  // Queue depths and overflows of every running device's channel, the
  // guest's devices by state, and pending I/O counts published. `name_of`
  // gives a device's name ("" if unknown).
  void sample(bus::VirtualBus& bus, const std::function<const std::string&(const bus::Device&)>& name_of);

  // A destroyed device: drops its recorder and its series. Call only once no
  // driver holds its observer (the device has left the bus).
  void forget(const std::string& device);

  // A channel transport event (tcp::EventCode) of one device; any thread.
  static void count_transport_event(metrics::Metrics& metrics, const std::string& host, const std::string& partition,
                                    const std::string& device, std::uint32_t code) noexcept;

 private:
  struct Queue {
    prometheus::Gauge* depth;
    prometheus::Counter* overflows;
    std::uint64_t overflows_seen = 0;
  };
  struct Device {
    std::unique_ptr<drivers::IoObserver> io;
    std::vector<Queue> queues;  // by queue index, once sampled
  };
  Device* device(const std::string& name);

  std::shared_ptr<metrics::Metrics> metrics_;
  std::string host_;
  std::string partition_;
  std::map<std::string, Device> devices_;
  metrics::StateShare partition_share_;
  metrics::StateShare device_share_;
};

}  // namespace visorlab::guest
