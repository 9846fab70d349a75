#include "channel/channel_error.hpp"

namespace visorlab::channel {

std::string_view check_name(Check check) {
  switch (check) {
    case Check::mapping_size: return "mapping_size";
    case Check::chtype: return "chtype";
    case Check::min_bytes: return "min_bytes";
    case Check::version_id: return "version_id";
    case Check::signature: return "signature";
    case Check::size: return "size";
    case Check::ch_space_offset: return "ch_space_offset";
    case Check::queue_header_bounds: return "queue_header_bounds";
    case Check::signal_size: return "signal_size";
    case Check::max_slots: return "max_slots";
    case Check::slots_bounds: return "slots_bounds";
    case Check::head: return "head";
    case Check::tail: return "tail";
    case Check::layout: return "layout";
  }
  return "unknown";
}

ChannelError::ChannelError(Check check, std::uint64_t offset, const std::string& detail)
    : std::runtime_error("check '" + std::string(check_name(check)) + "' failed at offset " +
                         std::to_string(offset) + ": " + detail),
      check_(check),
      offset_(offset) {}

}  // namespace visorlab::channel
