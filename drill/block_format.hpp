// What a drill writes into a disk block, so that a later read can tell which
// write it sees: the block's LBA, the write generation, the writing device and
// a checksum over the whole block. The workload encodes, the workload decodes
// what it read into a BlockSeen for the history, and the checker judges those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace visorlab::drill {

// What a read found in one block.
struct BlockSeen {
  std::uint64_t lba = 0;         // as written in the block
  std::uint64_t gen = 0;         // write generation; 0: never written (all zero)
  std::uint64_t device_tag = 0;  // device_tag() of the device that wrote it
  bool checksum_ok = false;      // false: torn, corrupt or foreign bytes

  bool operator==(const BlockSeen&) const = default;
};

// Blocks are at least a sector, and whole 64-bit words (the checksum runs on words).
inline constexpr std::size_t kMinBlockSize = 512;

// A stable 64-bit tag for a device name (FNV-1a): written into every block so a
// block landing on another guest's disk is caught.
std::uint64_t device_tag(std::string_view device_name) noexcept;

// Fills `out` (≥ kMinBlockSize, a multiple of 8 bytes) with the block for
// (lba, gen, tag): a header, filler derived from it, and the checksum.
// Throws std::invalid_argument for a bad size or gen 0 (reserved: never written).
void encode_block(std::span<std::byte> out, std::uint64_t lba, std::uint64_t gen, std::uint64_t device_tag);

// Reads a block back. An all-zero block is a never-written one: gen 0, checksum_ok.
BlockSeen decode_block(std::span<const std::byte> in) noexcept;

}  // namespace visorlab::drill
