// The typed error for a channel image that fails validation: which check
// failed and at which byte offset, so a bad image is never a mystery.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace visorlab::channel {

enum class Check {
  mapping_size,         // fewer bytes than a channel header
  chtype,               // channel type GUID is not the expected one
  min_bytes,            // header size field below the driver's minimum
  version_id,           // version is not the expected one
  signature,            // not "ECNL"
  size,                 // header size field larger than the memory holding it
  ch_space_offset,      // queue headers start inside the channel header, or misaligned
  queue_header_bounds,  // a queue header lies outside the channel
  signal_size,          // zero, or not what the channel type carries
  max_slots,            // fewer than 2 slots
  slots_bounds,         // a queue's slots lie outside the channel
  head,                 // head index ≥ max_slots
  tail,                 // tail index ≥ max_slots
  layout,               // a channel spec that cannot be laid out
};

std::string_view check_name(Check check);

class ChannelError : public std::runtime_error {
 public:
  ChannelError(Check check, std::uint64_t offset, const std::string& detail);

  Check check() const noexcept { return check_; }
  std::uint64_t offset() const noexcept { return offset_; }

 private:
  Check check_;
  std::uint64_t offset_;
};

}  // namespace visorlab::channel
