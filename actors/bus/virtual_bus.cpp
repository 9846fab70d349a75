#include "actors/bus/virtual_bus.hpp"

#include <algorithm>
#include <cerrno>

namespace visorlab::bus {
namespace {

int code(cvm::Response r) { return static_cast<int>(r); }

}  // namespace

VirtualBus::~VirtualBus() {
  for (auto& [key, device] : devices_) unbind(*device);
}

int VirtualBus::create_bus(const cvm::CreateBus& p) {
  if (buses_.contains(p.bus_no)) return code(cvm::Response::already_done);
  buses_[p.bus_no] = BusInfo{p.dev_count, p.bus_inst_guid};
  return 0;
}

int VirtualBus::destroy_bus(std::uint32_t bus_no) {
  if (!buses_.contains(bus_no)) return code(cvm::Response::bus_invalid);
  for (auto it = devices_.begin(); it != devices_.end();) {
    if (it->first.first == bus_no) {
      unbind(*it->second);
      it = devices_.erase(it);
    } else {
      ++it;
    }
  }
  buses_.erase(bus_no);
  return 0;
}

int VirtualBus::configure_bus(const cvm::ConfigureBus& p) {
  return buses_.contains(p.bus_no) ? 0 : code(cvm::Response::bus_invalid);
}

int VirtualBus::create_device(const cvm::CreateDevice& p) {
  if (!buses_.contains(p.bus_no)) return code(cvm::Response::bus_invalid);
  const std::pair key{p.bus_no, p.dev_no};
  if (devices_.contains(key)) return code(cvm::Response::already_done);
  auto device = std::make_unique<Device>(p.bus_no, p.dev_no, p.data_type_guid, p.channel_bytes);
  last_unbound_reason_.clear();

  // Match: a driver claiming the channel's type GUID, then the channel check
  // that driver makes (spec §1) — a channel failing it is not probed.
  const channel::ChannelType* type = channel::find_type(p.data_type_guid);
  Driver* driver = nullptr;
  if (type)
    for (Driver* d : drivers_)
      if (std::ranges::find(d->claims(), type->kind) != d->claims().end()) driver = d;
  if (!driver) {
    last_unbound_reason_ = device->name() + ": no driver claims type " + p.data_type_guid.str();
  } else {
    try {
      device->end_ = source_(p, type->expect());
    } catch (const std::exception& e) {
      last_unbound_reason_ = device->name() + ": channel check failed: " + e.what();
    }
    if (device->end_) {
      device->driver_ = driver;
      if (driver->probe(*device) == 0) {
        device->state_ = DeviceState::running;
      } else {
        last_unbound_reason_ = device->name() + ": " + std::string(driver->name()) + " probe failed";
        device->driver_ = nullptr;
      }
    }
  }
  devices_[key] = std::move(device);
  return 0;  // as the kernel: success even with no driver bound
}

int VirtualBus::destroy_device(std::uint32_t bus_no, std::uint32_t dev_no) {
  const auto it = devices_.find({bus_no, dev_no});
  if (it == devices_.end()) return code(cvm::Response::device_invalid);
  unbind(*it->second);
  devices_.erase(it);
  return 0;
}

void VirtualBus::unbind(Device& device) {
  if (!device.driver_) return;
  if (device.channel() && device.channel()->paused()) device.channel()->resume();  // remove() may clean up
  device.driver_->remove(device);
  device.driver_ = nullptr;
  device.state_ = DeviceState::no_driver;
}

int VirtualBus::change_device_state(std::uint32_t bus_no, std::uint32_t dev_no, bool pause, Done done) {
  Device* device = find(bus_no, dev_no);
  if (!device) return code(cvm::Response::device_invalid);
  if (!device->driver_) return -ENODEV;
  if (device->state_ == DeviceState::pausing || device->state_ == DeviceState::resuming) return -EBUSY;
  const DeviceState before = device->state_;  // restored if the driver refuses
  if (pause) {
    device->state_ = DeviceState::pausing;
    const int rc = device->driver_->pause(*device, [this, bus_no, dev_no, done](int status) {
      Device* d = find(bus_no, dev_no);
      if (d) {
        d->state_ = status == 0 ? DeviceState::paused : DeviceState::running;
        // The pause contract: from here until resume, any touch is a violation.
        if (status == 0 && d->channel()) d->channel()->pause();
      }
      done(status);
    });
    if (rc != 0) device->state_ = before;
    return rc;
  }
  device->state_ = DeviceState::resuming;
  const bool was_revoked = device->channel() && device->channel()->paused();
  if (was_revoked) device->channel()->resume();
  const int rc = device->driver_->resume(*device, [this, bus_no, dev_no, done](int status) {
    if (Device* d = find(bus_no, dev_no)) d->state_ = status == 0 ? DeviceState::running : DeviceState::paused;
    done(status);
  });
  if (rc != 0) {
    device->state_ = before;
    if (was_revoked) device->channel()->pause();
  }
  return rc;
}

void VirtualBus::poll() {
  for (auto& [key, device] : devices_)
    if (device->driver_ && device->state_ == DeviceState::running) device->driver_->channel_interrupt(*device);
}

Device* VirtualBus::find(std::uint32_t bus_no, std::uint32_t dev_no) {
  const auto it = devices_.find({bus_no, dev_no});
  return it == devices_.end() ? nullptr : it->second.get();
}

std::vector<const Device*> VirtualBus::devices() const {
  std::vector<const Device*> out;
  for (const auto& [key, device] : devices_) out.push_back(device.get());
  return out;
}

std::vector<std::string> VirtualBus::bus_names() const {
  std::vector<std::string> out;
  for (const auto& [no, info] : buses_) out.push_back("visorbus" + std::to_string(no));
  return out;
}

}  // namespace visorlab::bus
