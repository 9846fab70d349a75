// The device model behind the chipset (the kernel's visorbus): buses
// visorbus<N>, devices vbus<B>:dev<D>, function drivers matched by channel
// type GUID and the spec §1 channel check, probe/remove/pause/resume.
//
// A device whose type no driver claims, or whose channel fails the check, is
// created with no driver bound and DEVICE_CREATE still succeeds, as in the
// kernel. Pausing is enforced: when a driver reports paused, the device's
// channel endpoint is revoked (pause guard) until resume.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/bus/device.hpp"
#include "actors/bus/driver.hpp"
#include "actors/chipset/bus_model.hpp"

namespace visorlab::bus {

namespace cvm = visorlab::channel::controlvm;

class VirtualBus final : public chipset::BusModel {
 public:
  // Opens the channel a DEVICE_CREATE names (by channel_addr), validating it
  // as `expect` says; throws (ChannelError, system_error) if it cannot.
  using ChannelSource =
      std::function<std::unique_ptr<channel::ChannelEnd>(const cvm::CreateDevice&, const channel::Expect&)>;

  explicit VirtualBus(ChannelSource source) : source_(std::move(source)) {}
  ~VirtualBus() override;

  // Drivers must outlive the bus.
  void register_driver(Driver& driver) { drivers_.push_back(&driver); }

  // BusModel (driven by the chipset).
  int create_bus(const cvm::CreateBus& packet) override;
  int destroy_bus(std::uint32_t bus_no) override;
  int configure_bus(const cvm::ConfigureBus& packet) override;
  int create_device(const cvm::CreateDevice& packet) override;
  int destroy_device(std::uint32_t bus_no, std::uint32_t dev_no) override;
  bool bus_exists(std::uint32_t bus_no) const override { return buses_.contains(bus_no); }
  bool device_exists(std::uint32_t bus_no, std::uint32_t dev_no) const override {
    return devices_.contains({bus_no, dev_no});
  }
  int change_device_state(std::uint32_t bus_no, std::uint32_t dev_no, bool pause, Done done) override;

  // Polls every running device's driver (channel_interrupt).
  void poll();

  Device* find(std::uint32_t bus_no, std::uint32_t dev_no);
  std::vector<const Device*> devices() const;  // in bus, device order
  std::vector<std::string> bus_names() const;  // visorbus<N>
  // Why the last device create bound no driver (for logs); empty otherwise.
  const std::string& last_unbound_reason() const { return last_unbound_reason_; }

 private:
  struct BusInfo {
    std::uint32_t dev_count;
    channel::Guid instance;
  };
  void unbind(Device& device);

  ChannelSource source_;
  std::vector<Driver*> drivers_;
  std::map<std::uint32_t, BusInfo> buses_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::unique_ptr<Device>> devices_;
  std::string last_unbound_reason_;
};

}  // namespace visorlab::bus
