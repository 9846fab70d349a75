// What the chipset asks of the device model (the bus): the Linux split keeps
// controlvm handling (chipset) apart from buses, devices and driver matching
// (bus). Results are controlvm answers: 0, a Response code, or -errno.
#pragma once

#include <cstdint>
#include <functional>

#include "channel/controlvm.hpp"

namespace visorlab::chipset {

namespace cvm = visorlab::channel::controlvm;

class BusModel {
 public:
  virtual ~BusModel() = default;

  virtual int create_bus(const cvm::CreateBus& packet) = 0;
  virtual int destroy_bus(std::uint32_t bus_no) = 0;
  virtual int configure_bus(const cvm::ConfigureBus& packet) = 0;
  virtual int create_device(const cvm::CreateDevice& packet) = 0;
  virtual int destroy_device(std::uint32_t bus_no, std::uint32_t dev_no) = 0;
  virtual bool bus_exists(std::uint32_t bus_no) const = 0;
  virtual bool device_exists(std::uint32_t bus_no, std::uint32_t dev_no) const = 0;

  // Starts the driver's pause() (pause = true) or resume(); the driver calls
  // `done(status)` when finished, maybe later and from the same thread's next
  // poll. A non-zero return means it did not start (answered at once).
  using Done = std::function<void(int status)>;
  virtual int change_device_state(std::uint32_t bus_no, std::uint32_t dev_no, bool pause, Done done) = 0;
};

}  // namespace visorlab::chipset
