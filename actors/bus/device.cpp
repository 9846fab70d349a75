#include "actors/bus/device.hpp"

#include "actors/bus/driver.hpp"

namespace visorlab::bus {

std::string Device::type_name() const {
  const auto* t = channel::find_type(type_);
  return t ? std::string(t->name) : std::string();
}

// Attributes read from the channel header, as the kernel's sysfs does; a
// paused channel is not read (its guard would record a violation).
channel::Guid Device::zoneguid() const {
  if (!end_ || end_->channel().paused()) return {};
  return end_->channel().header().zone_guid;
}

std::uint64_t Device::clientpartition() const {
  if (!end_ || end_->channel().paused()) return 0;
  return end_->channel().header().partition_handle;
}

std::string_view Device::driver_name() const { return driver_ ? driver_->name() : std::string_view(); }

}  // namespace visorlab::bus
