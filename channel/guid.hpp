// A GUID in the kernel's GUID_INIT byte layout: u32, u16, u16 little-endian,
// then 8 raw bytes. This is how every s-Par channel stores type and zone ids.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace visorlab::channel {

struct Guid {
  std::array<std::uint8_t, 16> bytes;  // no initializer: keeps Guid trivial so it packs; Guid{} is zero

  // GUID_INIT(a, b, c, d0..d7): the numeric parts stored little-endian.
  static constexpr Guid make(std::uint32_t a, std::uint16_t b, std::uint16_t c,
                             std::array<std::uint8_t, 8> d) {
    Guid g{};
    for (int i = 0; i < 4; ++i) g.bytes[i] = static_cast<std::uint8_t>(a >> (8 * i));
    for (int i = 0; i < 2; ++i) g.bytes[4 + i] = static_cast<std::uint8_t>(b >> (8 * i));
    for (int i = 0; i < 2; ++i) g.bytes[6 + i] = static_cast<std::uint8_t>(c >> (8 * i));
    for (int i = 0; i < 8; ++i) g.bytes[8 + i] = d[i];
    return g;
  }

  // Parses the usual text form "2b3c2d10-7ef5-4ad8-b966-3448b7386b3d"
  // (case-insensitive, optional braces).
  static std::optional<Guid> parse(std::string_view text);

  // The usual lower-case text form.
  std::string str() const;

  constexpr bool is_null() const {
    for (auto b : bytes)
      if (b != 0) return false;
    return true;
  }

  friend constexpr bool operator==(const Guid&, const Guid&) = default;
  friend constexpr auto operator<=>(const Guid&, const Guid&) = default;
};

static_assert(sizeof(Guid) == 16);
static_assert(std::is_trivial_v<Guid>, "Guid must stay trivial to sit in packed layouts");

}  // namespace visorlab::channel
