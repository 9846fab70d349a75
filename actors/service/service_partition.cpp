#include "actors/service/service_partition.hpp"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <future>
#include <stdexcept>

#include "actors/runtime/device_channels.hpp"

namespace visorlab::service {

ServicePartition::ServicePartition(ServiceOptions options) : options_(std::move(options)) {
  if (options_.kind != topology::ServiceKind::io && options_.kind != topology::ServiceKind::console)
    throw std::invalid_argument("service kind must be io or console");
}

// What each switch dropped and why, once, as the partition goes: frames lost
// outside any fault show up in a drill's verdict, and this says which
// (a full port queue, a guest with no buffer posted, a link down …).
ServicePartition::~ServicePartition() {
  for (const auto& [name, sw] : switches_) {
    const SwitchCounts c = sw->counts();
    if (c.frames == 0) continue;
    spdlog::info("{}: switch {}: {} frames, {} delivered, {} dropped (no buffer {}, receive disabled {}, link down {}, "
                 "too big {}, write failed {}, unknown {}, hairpin {}, runt {})",
                 options_.name, name, c.frames, c.delivered, c.dropped(), c.no_buffer, c.disabled, c.link_down,
                 c.too_big, c.failed, c.unknown, c.hairpin, c.runt);
  }
}

channel::TransportHandler ServicePartition::watch(const Broken& broken, channel::TransportHandler also) {
  return [broken, also = std::move(also)](const channel::tcp::Event& e) {
    if (e.code == channel::tcp::EventCode::partner_failed) broken->store(true, std::memory_order_release);
    if (also) also(e);
  };
}

void ServicePartition::mend(const Broken& broken, channel::ChannelEnd& end) {
  if (!broken->load(std::memory_order_acquire)) return;
  // Short tries, so one broken channel does not stall the others' service.
  try {
    if (end.reconnect(std::chrono::milliseconds(2))) broken->store(false, std::memory_order_release);
  } catch (const std::exception&) {
    // still cut or the guest end is not back yet: the next poll tries again
  }
}

// What can be refused before anything is opened.
void ServicePartition::check(const actors::DeviceAttach& device) const {
  if (vhba_.contains(device.device) || inputs_.contains(device.device) || vnics_.contains(device.device))
    throw std::invalid_argument(device.device + " is already attached to " + options_.name);
  const channel::ChannelKind kind = actors::device_kind(device.kind);
  const bool io_kind = kind == channel::ChannelKind::vhba || kind == channel::ChannelKind::vnic;
  if (io_kind != (options_.kind == topology::ServiceKind::io))
    throw std::invalid_argument(options_.name + " (" + std::string(topology::to_string(options_.kind)) +
                                ") cannot serve a " + std::string(channel::type_of(kind).name));
  if (kind == channel::ChannelKind::vhba && (device.disk_path.empty() || device.disk_bytes == 0))
    throw std::invalid_argument(device.device + ": a vhba needs a disk path and size");
  if (kind == channel::ChannelKind::vnic && device.switch_name.empty())
    throw std::invalid_argument(device.device + ": a vnic needs a switch");
}

void ServicePartition::attach(const actors::DeviceAttach& device, channel::TransportHandler on_event) {
  check(device);
  auto broken = std::make_shared<std::atomic<bool>>(false);
  auto end = actors::open_device_service_end(device, watch(broken, std::move(on_event)));
  install(device, std::move(broken), std::move(end));
}

std::string ServicePartition::attach_many(const std::vector<actors::DeviceAttach>& devices,
                                          const std::function<channel::TransportHandler(const std::string&)>& on_event) {
  std::string errors;
  auto note = [&](const std::string& device, const std::string& why) {
    errors += (errors.empty() ? "" : "; ") + device + ": " + why;
  };
  // Each channel's attach blocks on its handshake (over TCP: INIT, CAP, the
  // image); a restarted partition opens them all at once, so its restart
  // costs the slowest, not the sum.
  struct Opening {
    Broken broken;
    std::future<std::unique_ptr<channel::ChannelEnd>> end;
  };
  std::vector<Opening> opening(devices.size());
  for (std::size_t i = 0; i < devices.size(); ++i) {
    const actors::DeviceAttach& d = devices[i];
    try {
      check(d);
    } catch (const std::exception& e) {
      note(d.device, e.what());
      continue;
    }
    opening[i].broken = std::make_shared<std::atomic<bool>>(false);
    opening[i].end = std::async(std::launch::async, [d, handler = watch(opening[i].broken, on_event(d.device))] {
      return actors::open_device_service_end(d, handler);
    });
  }
  for (std::size_t i = 0; i < devices.size(); ++i) {
    if (!opening[i].end.valid()) continue;
    try {
      install(devices[i], std::move(opening[i].broken), opening[i].end.get());
      if (devices[i].paused) pause(devices[i].device);  // before anything polls it
    } catch (const std::exception& e) {
      note(devices[i].device, e.what());
    }
  }
  return errors;
}

void ServicePartition::install(const actors::DeviceAttach& device, Broken broken,
                               std::unique_ptr<channel::ChannelEnd> end) {
  const channel::ChannelKind kind = actors::device_kind(device.kind);
  if (kind == channel::ChannelKind::vhba) {
    Vhba v;
    v.broken = std::move(broken);
    v.target = std::make_unique<ScsiTarget>(device.disk_path, device.disk_bytes);
    v.end = std::move(end);
    v.backend = std::make_unique<VhbaBackend>(v.end->channel(), *v.target);
    v.backend->lose_writes(lose_every_, lose_until_);
    // A restarted partition ran 128 such commands of 16 guests before their
    // re-issued copies: 30 ms more with no completion after each crash.
    if (device.reset)
      if (const std::size_t n = v.backend->skip_queued())
        spdlog::info("{}: {}: skipped {} commands queued before the reset (the guest re-issues them)", options_.name,
                     device.device, n);
    vhba_.emplace(device.device, std::move(v));
    return;
  }
  if (kind == channel::ChannelKind::vnic) {
    Vnic v;
    v.broken = std::move(broken);
    v.end = std::move(end);
    v.backend = std::make_unique<VnicBackend>(v.end->channel());
    v.switch_name = device.switch_name;
    auto& sw = switches_[device.switch_name];
    if (!sw) sw = std::make_unique<SoftwareSwitch>(device.switch_name);
    sw->attach(*v.backend);
    vnics_.emplace(device.device, std::move(v));
    return;
  }
  Input in;
  in.broken = std::move(broken);
  in.end = std::move(end);
  InputBackend& backend = console_.attach(device.device, in.end->channel(), kind);
  // Planned restart or crash alike: what the channel holds is authoritative,
  // so the sequence continues after its last report.
  backend.resume_from_channel();
  inputs_.emplace(device.device, std::move(in));
}

bool ServicePartition::detach(const std::string& device) {
  if (vhba_.erase(device)) return true;
  if (const auto v = vnics_.find(device); v != vnics_.end()) {
    switches_.at(v->second.switch_name)->detach(*v->second.backend);
    vnics_.erase(v);
    return true;
  }
  if (inputs_.contains(device)) {
    console_.detach(device);
    inputs_.erase(device);
    return true;
  }
  return false;
}

bool ServicePartition::pause(const std::string& device) {
  if (vhba_.contains(device) || vnics_.contains(device)) return true;  // the guest stops issuing; nothing to hold
  return console_.pause(device);
}

bool ServicePartition::resume(const std::string& device) {
  if (vhba_.contains(device) || vnics_.contains(device)) return true;
  return console_.resume(device);
}

bool ServicePartition::poll(Clock::time_point now) {
  std::size_t moved = 0;
  for (auto& [name, v] : vhba_) mend(v.broken, *v.end);
  // Disks round robin, one command per channel per pass. Draining a channel
  // at a time let one guest keep the partition to itself: its answers reach
  // it while the rest of its batch runs, so its queue never emptied, and 16
  // guests took 5 ms turns (70 ms without a completion for each).
  for (std::size_t pass = 0; pass < kDiskPasses; ++pass) {
    std::size_t served = 0;
    for (auto& [name, v] : vhba_) served += v.backend->poll(1);
    moved += served;
    if (served == 0) break;
  }
  for (auto& [name, v] : vnics_) {
    mend(v.broken, *v.end);
    moved += v.backend->poll();
  }
  for (auto& [name, in] : inputs_) mend(in.broken, *in.end);
  if (!inputs_.empty()) {
    if (options_.input_rate > 0) {
      // Produce at the configured rate, whatever the poll cadence.
      if (last_produce_ != Clock::time_point{}) {
        input_credit_ += options_.input_rate * std::chrono::duration<double>(now - last_produce_).count();
        const auto n = static_cast<std::size_t>(input_credit_);
        if (n > 0) {
          console_.produce_all(n);
          input_credit_ -= static_cast<double>(n);
        }
      }
      last_produce_ = now;
    }
    const std::size_t delivered = console_.poll();
    reports_ += delivered;
    moved += delivered;
  }
  return moved > 0;
}

std::vector<const channel::Channel*> ServicePartition::channels() const {
  std::vector<const channel::Channel*> out;
  for (const auto& [name, v] : vhba_) out.push_back(&v.end->channel());
  for (const auto& [name, v] : vnics_) out.push_back(&v.end->channel());
  for (const auto& [name, in] : inputs_) out.push_back(&in.end->channel());
  return out;
}

std::chrono::milliseconds ServicePartition::sleep_bound() const {
  if (inputs_.empty() || options_.input_rate <= 0) return kIdleBound;
  const auto every = std::chrono::milliseconds(static_cast<long>(1000.0 / options_.input_rate));
  return std::clamp(every, std::chrono::milliseconds(1), kIdleBound);
}

bool ServicePartition::set_input_rate(double per_s) {
  if (!actors::valid_input_rate(per_s)) return false;
  options_.input_rate = per_s;
  last_produce_ = {};  // credit accrues from the next poll, not from the last rate's
  input_credit_ = 0;
  return true;
}

actors::ServiceStats ServicePartition::stats() const {
  actors::ServiceStats s;
  s.name = options_.name;
  s.kind = options_.kind;
  s.pid = getpid();
  s.devices = static_cast<std::uint32_t>(devices());
  for (const auto& [name, sw] : switches_) s.frames += sw->counts().frames;
  for (const auto& [name, v] : vhba_) s.commands += v.backend->executed();
  s.reports = reports_;
  return s;
}

void ServicePartition::lose_writes(std::uint64_t every, Clock::time_point until) {
  lose_every_ = every;
  lose_until_ = until;
  for (auto& [name, v] : vhba_) v.backend->lose_writes(every, until);
}

}  // namespace visorlab::service
