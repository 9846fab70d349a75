#include "actors/guest/guest.hpp"

#include <spdlog/spdlog.h>

#include <set>
#include <stdexcept>

namespace visorlab::guest {

Guest::Guest(GuestOptions options, std::unique_ptr<channel::ChannelEnd> controlvm, EventSink on_event)
    : options_(std::move(options)),
      on_event_(std::move(on_event)),
      controlvm_(std::move(controlvm)),
      metrics_(options_.metrics ? std::make_unique<GuestMetrics>(options_.metrics, options_.host, options_.name)
                                : nullptr),
      hba_(options_.hba_timeout),
      input_([this](const bus::Device& d, const channel::input::Report& r) {
        if (app_) app_->on_input(device_name(d.bus_no(), d.dev_no()), r);
      }),
      bus_([this](const cvm::CreateDevice& p, const channel::Expect& e) { return take(p, e); }),
      chipset_(controlvm_->channel(), bus_) {
  if (metrics_)
    hba_.set_observers([this](const bus::Device& d) -> drivers::IoObserver* {
      const std::string& name = device_name(d.bus_no(), d.dev_no());
      return name.empty() ? nullptr : metrics_->io_observer(name);
    });
  bus_.register_driver(hba_);
  bus_.register_driver(input_);
  bus_.register_driver(nic_);
  nic_.on_receive([this](bus::Device& d, std::span<const std::byte> frame) {
    if (app_) app_->on_frame(device_name(d.bus_no(), d.dev_no()), frame);
  });
  chipset_.on_parahotplug([this](std::uint32_t id, bool enable, std::uint32_t, std::uint32_t) {
    // udev acknowledges a disable (devicedisabled); enable needs no answer.
    if (!enable && options_.acknowledge_hotplug) hotplug_acks_.push_back(id);
  });
}

Guest::~Guest() = default;

actors::Locator Guest::offer(const actors::ChannelOffer& offer) {
  if (prepared_.contains(offer.addr))
    throw std::invalid_argument("channel_addr " + std::to_string(offer.addr) + " already offered");
  auto handler = [sink = on_event_, device = offer.device, metrics = options_.metrics, host = options_.host,
                  guest = options_.name](const channel::tcp::Event& e) {
    if (metrics)
      GuestMetrics::count_transport_event(*metrics, host, guest, device, static_cast<std::uint32_t>(e.code));
    if (sink) sink({device, static_cast<std::uint32_t>(e.code), e.reason});
  };
  auto opened = actors::open_device_guest_end(offer, options_.host, handler);
  auto& p = prepared_[offer.addr];
  p.offer = offer;
  p.locator = opened.locator;
  p.end = std::move(opened.end);
  return p.locator;
}

std::unique_ptr<channel::ChannelEnd> Guest::take(const cvm::CreateDevice& packet, const channel::Expect& expect) {
  const auto it = prepared_.find(packet.channel_addr);
  if (it == prepared_.end() || it->second.taken)
    throw std::runtime_error("no channel offered at channel_addr " + std::to_string(packet.channel_addr));
  Prepared& p = it->second;
  if (p.offer.bus_no != packet.bus_no || p.offer.dev_no != packet.dev_no)
    throw std::runtime_error("channel_addr " + std::to_string(packet.channel_addr) + " belongs to another device");
  p.taken = true;
  // Shared memory: the driver attaches a mapping of its own, validated as the
  // kernel does (spec §1). TCP: the replicated copy is the only one.
  if (p.locator.starts_with("shm:")) return channel::attach_shared_end(p.locator.substr(4), expect);
  return std::move(p.end);
}

bool Guest::poll(Clock::time_point now) {
  for (std::uint32_t id : hotplug_acks_) chipset_.parahotplug_done(id);
  hotplug_acks_.clear();
  // A TCP controlvm link that dropped (a cut, a restarted command side):
  // attach again, briefly — the next poll tries again.
  if (!controlvm_->link_up()) controlvm_->reconnect(std::chrono::milliseconds(2));
  const bool handled = chipset_.poll(now) > 0;
  if (handled || now >= next_sweep_) {  // a DEVICE_DESTROY frees its channel now, not at the next sweep
    forget_destroyed();
    next_sweep_ = now + std::chrono::milliseconds(50);
  }
  const bool progress = poll_devices(now);
  // After a controlvm message the metrics show its effect now: an idle guest
  // may sleep far longer than a sample period before it polls again.
  if (metrics_ && (handled || now >= next_metrics_)) {
    next_metrics_ = now + GuestMetrics::kSamplePeriod;
    try {
      metrics_->sample(bus_, [this](const bus::Device& d) -> const std::string& {
        return device_name(d.bus_no(), d.dev_no());
      });
    } catch (const std::exception& e) {
      spdlog::warn("guest {}: metrics: {}", options_.name, e.what());
    }
  }
  return handled || progress || !hotplug_acks_.empty();
}

bool Guest::poll_devices(Clock::time_point now) {
  bus_.poll();
  const bool app_progress = app_ && app_->step(*this, now);
  waiting_ = false;
  for (const bus::Device* d : bus_.devices())
    if ((d->driver_name() == hba_.name() && drivers::VisorHba::pending(*d) > 0) ||
        (d->driver_name() == nic_.name() && drivers::VisorNic::outstanding(*d) > 0))
      waiting_ = true;
  return app_progress;
}

std::chrono::milliseconds Guest::sleep_bound() const { return controlvm_->link_up() ? kIdleBound : kMendBound; }

std::vector<const channel::Channel*> Guest::channels() const {
  std::vector<const channel::Channel*> out{&controlvm_->channel()};
  for (const bus::Device* d : bus_.devices())
    if (const channel::Channel* c = d->channel()) out.push_back(c);
  return out;
}

void Guest::forget_destroyed() {
  // A destroyed device's channel memory goes with it (its shm name is then
  // free for a device created again).
  std::vector<std::string> gone_names;
  for (auto it = prepared_.begin(); it != prepared_.end();) {
    const bool gone = it->second.taken && !bus_.device_exists(it->second.offer.bus_no, it->second.offer.dev_no);
    if (gone) gone_names.push_back(it->second.offer.device);
    it = gone ? prepared_.erase(it) : std::next(it);
  }
  if (!metrics_ || gone_names.empty()) return;
  // Its metrics go too — unless a device of the same name was created again.
  std::set<std::string> live;
  for (const auto& [addr, p] : prepared_) live.insert(p.offer.device);
  for (const auto& name : gone_names)
    if (!live.contains(name)) metrics_->forget(name);
}

std::vector<actors::DeviceInfo> Guest::devices() const {
  std::vector<actors::DeviceInfo> out;
  for (const bus::Device* d : bus_.devices()) {
    actors::DeviceInfo info;
    info.guest = options_.name;
    for (const auto& [addr, p] : prepared_)
      if (p.offer.bus_no == d->bus_no() && p.offer.dev_no == d->dev_no()) info.device = p.offer.device;
    info.bus_name = d->name();
    info.bus_no = d->bus_no();
    info.dev_no = d->dev_no();
    info.typeguid = d->typeguid().str();
    info.type_name = d->type_name();
    info.nbytes = d->nbytes();
    info.driver = std::string(d->driver_name());
    info.state = d->state();
    out.push_back(std::move(info));
  }
  return out;
}

const std::string& Guest::device_name(std::uint32_t bus_no, std::uint32_t dev_no) const {
  static const std::string none;
  for (const auto& [addr, p] : prepared_)
    if (p.taken && p.offer.bus_no == bus_no && p.offer.dev_no == dev_no) return p.offer.device;
  return none;
}

bus::Device* Guest::find(const std::string& device) {
  for (const auto& [addr, p] : prepared_)
    if (p.offer.device == device && p.taken) return bus_.find(p.offer.bus_no, p.offer.dev_no);
  return nullptr;
}

}  // namespace visorlab::guest
