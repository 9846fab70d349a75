// Test helper: writes little-endian numbers at raw byte offsets, so images are
// built from the spec's numbers and not from the structs under test.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace visorlab::test {

class ImageBuilder {
 public:
  explicit ImageBuilder(std::size_t size) : bytes_(size) {}

  ImageBuilder& put(std::size_t offset, std::uint64_t value, int width) {
    for (int i = 0; i < width; ++i) bytes_.at(offset + i) = static_cast<std::byte>(value >> (8 * i));
    return *this;
  }
  ImageBuilder& u8(std::size_t o, std::uint64_t v) { return put(o, v, 1); }
  ImageBuilder& u16(std::size_t o, std::uint64_t v) { return put(o, v, 2); }
  ImageBuilder& u32(std::size_t o, std::uint64_t v) { return put(o, v, 4); }
  ImageBuilder& u64(std::size_t o, std::uint64_t v) { return put(o, v, 8); }
  ImageBuilder& raw(std::size_t o, std::initializer_list<std::uint8_t> b) {
    for (auto x : b) bytes_.at(o++) = static_cast<std::byte>(x);
    return *this;
  }

  // A channel header per spec §1.
  ImageBuilder& header(std::uint64_t size, std::initializer_list<std::uint8_t> chtype, std::uint64_t ch_space_offset,
                       std::uint32_t version_id) {
    u64(0, 0x4C4E4345).u32(12, 128).u64(16, size).raw(32, chtype).u64(64, ch_space_offset).u32(72, version_id);
    return *this;
  }
  // A signal queue header per spec §2 at `at`.
  ImageBuilder& queue(std::size_t at, std::uint64_t sig_base_offset, std::uint32_t signal_size,
                      std::uint32_t max_slots, std::uint32_t head = 0, std::uint32_t tail = 0) {
    u64(at + 16, sig_base_offset).u32(at + 48, signal_size).u32(at + 52, max_slots).u32(at + 56, max_slots - 1);
    u32(at + 60, head).u32(at + 72, tail);
    return *this;
  }

  std::vector<std::byte>& bytes() { return bytes_; }

 private:
  std::vector<std::byte> bytes_;
};

// The controlvm GUID 2b3c2d10-7ef5-4ad8-b966-3448b7386b3d in GUID_INIT bytes.
inline constexpr std::initializer_list<std::uint8_t> kControlvmGuidBytes = {
    0x10, 0x2d, 0x3c, 0x2b, 0xf5, 0x7e, 0xd8, 0x4a, 0xb9, 0x66, 0x34, 0x48, 0xb7, 0x38, 0x6b, 0x3d};

}  // namespace visorlab::test
