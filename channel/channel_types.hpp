// The channel types visorlab knows (spec §3, §5): type GUID, driver name,
// version, queue geometry and the layout a new channel of the type gets.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "channel/channel.hpp"
#include "channel/guid.hpp"

namespace visorlab::channel {

enum class ChannelKind { controlvm, vhba, vnic, keyboard, mouse, vbus };

struct ChannelType {
  ChannelKind kind;
  std::string_view name;    // "controlvm", "vhba", …
  std::string_view driver;  // the kernel driver that claims it
  Guid guid;
  std::uint32_t version_id;  // expected at probe; 0 = not checked
  std::uint64_t min_bytes;   // the fixed part a driver reads
  std::uint32_t queue_count;
  std::uint32_t signal_size;

  // What a driver of this type checks when it attaches.
  Expect expect() const {
    return Expect{guid, min_bytes, version_id, kChannelSignature, queue_count, signal_size};
  }
  // The layout of a new channel of this type.
  ChannelSpec spec() const;
};

namespace guids {
inline constexpr Guid controlvm = Guid::make(0x2b3c2d10, 0x7ef5, 0x4ad8, {0xb9, 0x66, 0x34, 0x48, 0xb7, 0x38, 0x6b, 0x3d});
inline constexpr Guid vhba = Guid::make(0x414815ed, 0xc58c, 0x11da, {0x95, 0xa9, 0x00, 0xe0, 0x81, 0x61, 0x16, 0x5f});
inline constexpr Guid vnic = Guid::make(0x8cd5994d, 0xc58e, 0x11da, {0x95, 0xa9, 0x00, 0xe0, 0x81, 0x61, 0x16, 0x5f});
inline constexpr Guid keyboard = Guid::make(0xc73416d0, 0xb0b8, 0x44af, {0xb3, 0x04, 0x9d, 0x2a, 0xe9, 0x9f, 0x1b, 0x3d});
inline constexpr Guid mouse = Guid::make(0xaddf07d4, 0x94a9, 0x46e2, {0x81, 0xc3, 0x61, 0xab, 0xcd, 0xbd, 0xbd, 0x87});
inline constexpr Guid vbus = Guid::make(0x193b331b, 0xc58f, 0x11da, {0x95, 0xa9, 0x00, 0xe0, 0x81, 0x61, 0x16, 0x5f});
}  // namespace guids

std::span<const ChannelType> channel_types();
const ChannelType* find_type(const Guid& guid);
const ChannelType* find_type(std::string_view name);
const ChannelType& type_of(ChannelKind kind);

}  // namespace visorlab::channel
