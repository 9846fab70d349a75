#include "channel/guid.hpp"

#include <cstdio>

namespace visorlab::channel {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<Guid> Guid::parse(std::string_view text) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}')
    text = text.substr(1, 36);
  if (text.size() != 36) return std::nullopt;
  // Text order of the 16 bytes; the first three groups are little-endian in memory.
  static constexpr int kTextToByte[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  Guid g{};
  std::size_t pos = 0;
  for (int i = 0; i < 16; ++i) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
      if (text[pos] != '-') return std::nullopt;
      ++pos;
    }
    int hi = hex_value(text[pos]), lo = hex_value(text[pos + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    g.bytes[kTextToByte[i]] = static_cast<std::uint8_t>(hi * 16 + lo);
    pos += 2;
  }
  return g;
}

std::string Guid::str() const {
  const auto& b = bytes;
  char out[37];
  std::snprintf(out, sizeof out,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11],
                b[12], b[13], b[14], b[15]);
  return out;
}

}  // namespace visorlab::channel
