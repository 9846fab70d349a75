#include "drill/block_format.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace visorlab::drill {
namespace {

// Layout, in 64-bit words: magic, lba, gen, tag, checksum, filler…
constexpr std::uint64_t kMagic = 0x3130304b4c424c56;  // "VLBLK001" little-endian
constexpr std::size_t kChecksumWord = 4;
constexpr std::size_t kHeaderWords = 5;

std::uint64_t load(const std::byte* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void store(std::byte* p, std::uint64_t v) noexcept { std::memcpy(p, &v, sizeof v); }

// Four independent lanes keep the multiplier busy (one chain waits ~5 cycles
// a word). Each step is a bijection of its state for a fixed word and
// injective in the word for a fixed state, and the lanes are combined
// injectively, so any single changed word changes the result.
std::uint64_t checksum(std::span<const std::byte> block) noexcept {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
  const auto step = [](std::uint64_t h, std::uint64_t w) {
    h = (h ^ w) * k;
    return h ^ (h >> 29);
  };
  const std::byte* p = block.data();
  const std::size_t words = block.size() / 8;  // ≥ 64
  std::uint64_t h0 = 0xcbf29ce484222325ull ^ block.size(), h1 = 1, h2 = 2, h3 = 3;
  // Words 0…7, the checksum's own (word 4) counted as 0.
  h0 = step(h0, load(p)), h1 = step(h1, load(p + 8)), h2 = step(h2, load(p + 16)), h3 = step(h3, load(p + 24));
  h0 = step(h0, 0), h1 = step(h1, load(p + 40)), h2 = step(h2, load(p + 48)), h3 = step(h3, load(p + 56));
  std::size_t i = 8;
  for (; i + 4 <= words; i += 4) {
    h0 = step(h0, load(p + i * 8));
    h1 = step(h1, load(p + i * 8 + 8));
    h2 = step(h2, load(p + i * 8 + 16));
    h3 = step(h3, load(p + i * 8 + 24));
  }
  for (; i < words; ++i) h0 = step(h0, load(p + i * 8));
  return ((h0 * k + h1) * k + h2) * k + h3;
}

}  // namespace

std::uint64_t device_tag(std::string_view device_name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : device_name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

void encode_block(std::span<std::byte> out, std::uint64_t lba, std::uint64_t gen, std::uint64_t tag) {
  if (out.size() < kMinBlockSize || out.size() % 8 != 0) {
    throw std::invalid_argument("drill block size " + std::to_string(out.size()) +
                                ": need at least 512 bytes, a multiple of 8");
  }
  if (gen == 0) throw std::invalid_argument("drill block generation 0 is reserved for never-written blocks");
  std::byte* p = out.data();
  store(p + 0, kMagic);
  store(p + 8, lba);
  store(p + 16, gen);
  store(p + 24, tag);
  // Filler that differs for every (lba, gen, tag); cheap, since the checksum
  // is what catches damage.
  const std::uint64_t seed = lba * 0xD6E8FEB86659FD93ull ^ gen * 0xBF58476D1CE4E5B9ull ^ tag;
  std::uint64_t x = seed;
  for (std::size_t i = kHeaderWords; i < out.size() / 8; ++i) store(p + i * 8, x += 0x94D049BB133111EBull);
  store(p + kChecksumWord * 8, checksum(out));
}

BlockSeen decode_block(std::span<const std::byte> in) noexcept {
  BlockSeen seen;
  if (in.size() < kMinBlockSize || in.size() % 8 != 0) return seen;  // checksum_ok false
  const std::byte* p = in.data();
  if (load(p) != kMagic) {
    seen.checksum_ok = std::all_of(in.begin(), in.end(), [](std::byte b) { return b == std::byte{0}; });
    return seen;
  }
  seen.lba = load(p + 8);
  seen.gen = load(p + 16);
  seen.device_tag = load(p + 24);
  seen.checksum_ok = load(p + kChecksumWord * 8) == checksum(in);
  return seen;
}

}  // namespace visorlab::drill
