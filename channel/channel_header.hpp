// The channel header and signal queue header of spec §1 and §2, declared once.
// Packed, little-endian; every offset pinned by static_assert.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "channel/guid.hpp"

namespace visorlab::channel {

// The structs below overlay little-endian bytes; a big-endian port would need
// byte-swapping accessors instead.
static_assert(std::endian::native == std::endian::little, "visorlab assumes a little-endian host");

inline constexpr std::uint64_t kChannelSignature = 0x4C4E4345;  // bytes "ECNL"

enum class ClientState : std::uint32_t {
  detached = 0, disabled = 1, attaching = 2, attached = 3, busy = 4, owned = 5,
};

enum class ServerState : std::uint32_t { uninitialized = 0, ready = 1 };

namespace feature {
inline constexpr std::uint64_t enable_ints = 1u << 0;
inline constexpr std::uint64_t driver_enables_ints = 1u << 1;
inline constexpr std::uint64_t channel_is_polling = 1u << 3;
inline constexpr std::uint64_t iovm_ok_driver_disabling_ints = 1u << 4;
inline constexpr std::uint64_t driver_disables_ints = 1u << 5;
inline constexpr std::uint64_t driver_enhanced_rcvbuf_checking = 1u << 6;
}  // namespace feature

struct __attribute__((packed)) ChannelHeader {
  std::uint64_t signature;
  std::uint32_t legacy_state;
  std::uint32_t header_size;
  std::uint64_t size;
  std::uint64_t features;
  Guid chtype;
  std::uint64_t partition_handle;
  std::uint64_t handle;
  std::uint64_t ch_space_offset;
  std::uint32_t version_id;
  std::uint32_t partition_index;
  Guid zone_guid;
  std::uint32_t cli_str_offset;
  std::uint32_t cli_state_boot;
  std::uint32_t cmd_state_cli;
  std::uint32_t cli_state_os;
  std::uint32_t ch_characteristic;
  std::uint32_t cmd_state_srv;
  std::uint32_t srv_state;
  std::uint8_t cli_error_boot;
  std::uint8_t cli_error_os;
  std::uint8_t filler;
  std::uint8_t recover_channel;
};

static_assert(sizeof(ChannelHeader) == 128);
static_assert(offsetof(ChannelHeader, signature) == 0);
static_assert(offsetof(ChannelHeader, legacy_state) == 8);
static_assert(offsetof(ChannelHeader, header_size) == 12);
static_assert(offsetof(ChannelHeader, size) == 16);
static_assert(offsetof(ChannelHeader, features) == 24);
static_assert(offsetof(ChannelHeader, chtype) == 32);
static_assert(offsetof(ChannelHeader, partition_handle) == 48);
static_assert(offsetof(ChannelHeader, handle) == 56);
static_assert(offsetof(ChannelHeader, ch_space_offset) == 64);
static_assert(offsetof(ChannelHeader, version_id) == 72);
static_assert(offsetof(ChannelHeader, partition_index) == 76);
static_assert(offsetof(ChannelHeader, zone_guid) == 80);
static_assert(offsetof(ChannelHeader, cli_str_offset) == 96);
static_assert(offsetof(ChannelHeader, cli_state_boot) == 100);
static_assert(offsetof(ChannelHeader, cmd_state_cli) == 104);
static_assert(offsetof(ChannelHeader, cli_state_os) == 108);
static_assert(offsetof(ChannelHeader, ch_characteristic) == 112);
static_assert(offsetof(ChannelHeader, cmd_state_srv) == 116);
static_assert(offsetof(ChannelHeader, srv_state) == 120);
static_assert(offsetof(ChannelHeader, cli_error_boot) == 124);
static_assert(offsetof(ChannelHeader, cli_error_os) == 125);
static_assert(offsetof(ChannelHeader, filler) == 126);
static_assert(offsetof(ChannelHeader, recover_channel) == 127);

// Producer fields (num_sent, num_overflows, head) sit in the first 64 bytes and
// the consumer's (num_received, tail) in the second, so a 64-byte-aligned queue
// header keeps the two sides off each other's cache line.
struct __attribute__((packed)) SignalQueueHeader {
  std::uint32_t version;
  std::uint32_t chtype;
  std::uint64_t size;
  std::uint64_t sig_base_offset;
  std::uint64_t features;
  std::uint64_t num_sent;
  std::uint64_t num_overflows;
  std::uint32_t signal_size;
  std::uint32_t max_slots;
  std::uint32_t max_signals;
  std::uint32_t head;
  std::uint64_t num_received;
  std::uint32_t tail;
  std::uint32_t reserved1;
  std::uint64_t reserved2;
  std::uint64_t client_queue;
  std::uint64_t num_irq_received;
  std::uint64_t num_empty;
  std::uint32_t errorflags;
  std::uint8_t filler[12];
};

static_assert(sizeof(SignalQueueHeader) == 128);
static_assert(offsetof(SignalQueueHeader, version) == 0);
static_assert(offsetof(SignalQueueHeader, chtype) == 4);
static_assert(offsetof(SignalQueueHeader, size) == 8);
static_assert(offsetof(SignalQueueHeader, sig_base_offset) == 16);
static_assert(offsetof(SignalQueueHeader, features) == 24);
static_assert(offsetof(SignalQueueHeader, num_sent) == 32);
static_assert(offsetof(SignalQueueHeader, num_overflows) == 40);
static_assert(offsetof(SignalQueueHeader, signal_size) == 48);
static_assert(offsetof(SignalQueueHeader, max_slots) == 52);
static_assert(offsetof(SignalQueueHeader, max_signals) == 56);
static_assert(offsetof(SignalQueueHeader, head) == 60);
static_assert(offsetof(SignalQueueHeader, num_received) == 64);
static_assert(offsetof(SignalQueueHeader, tail) == 72);
static_assert(offsetof(SignalQueueHeader, reserved1) == 76);
static_assert(offsetof(SignalQueueHeader, reserved2) == 80);
static_assert(offsetof(SignalQueueHeader, client_queue) == 88);
static_assert(offsetof(SignalQueueHeader, num_irq_received) == 96);
static_assert(offsetof(SignalQueueHeader, num_empty) == 104);
static_assert(offsetof(SignalQueueHeader, errorflags) == 112);
static_assert(offsetof(SignalQueueHeader, filler) == 116);

}  // namespace visorlab::channel
