// The controlvm channel's message (spec §3): 48-byte header + 80-byte packet
// union, with message ids, flags, segment states and response codes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "channel/guid.hpp"

namespace visorlab::channel::controlvm {

inline constexpr std::uint32_t kVersionId = 1;
inline constexpr std::uint32_t kMessagesPerQueue = 64;

// Queue roles as the Linux guest uses them (not as the header comment says):
// commands arrive on event, acks go to ack, responses go to request.
enum Queue : std::uint32_t { request = 0, response = 1, event = 2, ack = 3 };
inline constexpr std::uint32_t kQueueCount = 4;

enum class Id : std::uint32_t {
  bus_create = 0x101, bus_destroy = 0x102, bus_configure = 0x104, bus_changestate = 0x105,
  bus_changestate_event = 0x106,
  device_create = 0x201, device_destroy = 0x202, device_configure = 0x203,
  device_changestate = 0x204, device_changestate_event = 0x205, device_reconfigure = 0x206,
  chipset_init = 0x301, chipset_stop = 0x302, chipset_ready = 0x304, chipset_selftest = 0x305,
};

// Spec name ("DEVICE_CREATE") of a message id, or nullopt for an unknown id.
std::optional<std::string_view> id_name(std::uint32_t id);

// A completion status as a person reads it: "status 16 (Device or resource
// busy)", "status 501 (DEVICE_INVALID)". Responses carry the CONTROLVM_RESP
// codes below, a driver's failure an errno.
std::string status_text(std::uint32_t status);

namespace flag {
inline constexpr std::uint32_t failed = 1u << 0;
inline constexpr std::uint32_t response_expected = 1u << 1;
inline constexpr std::uint32_t server = 1u << 2;
inline constexpr std::uint32_t test_message = 1u << 3;
inline constexpr std::uint32_t partial_completion = 1u << 4;
inline constexpr std::uint32_t preserve = 1u << 5;
inline constexpr std::uint32_t writer_in_diag = 1u << 6;
}  // namespace flag

struct FlagName {
  std::uint32_t bit;
  std::string_view name;
};
inline constexpr FlagName kFlagNames[] = {
    {flag::failed, "failed"},         {flag::response_expected, "response_expected"},
    {flag::server, "server"},         {flag::test_message, "test_message"},
    {flag::partial_completion, "partial_completion"}, {flag::preserve, "preserve"},
    {flag::writer_in_diag, "writer_in_diag"},
};

// Segment state bits (u16): enabled b0, active b1, alive b2, revoked b3,
// allocated b4, known b5, ready b6, operating b7.
namespace segment {
inline constexpr std::uint16_t running = 0x00F7;
inline constexpr std::uint16_t paused = 0x0077;
inline constexpr std::uint16_t standby = 0x0073;
}  // namespace segment

namespace chipset_feature {
inline constexpr std::uint32_t reply = 0x1;
inline constexpr std::uint32_t para_hotplug = 0x2;
}  // namespace chipset_feature

enum class Response : std::uint32_t {
  success = 0, already_done = 1, id_unknown = 4, id_invalid_for_client = 5,
  expected_chipset_init = 101, error_max_buses = 201, error_max_devices = 202,
  payload_invalid = 400, bus_invalid = 500, device_invalid = 501, channel_invalid = 502,
  channel_type_unknown = 800, channel_size_too_small = 801, device_udev_timeout = 1400,
};

struct __attribute__((packed)) MessageHeader {
  std::uint32_t id;
  std::uint32_t message_size;
  std::uint32_t segment_index;
  std::uint32_t completion_status;
  std::uint32_t flags;
  std::uint32_t reserved;
  std::uint64_t message_handle;
  std::uint64_t payload_vm_offset;
  std::uint32_t payload_max_bytes;
  std::uint32_t payload_bytes;
};
static_assert(sizeof(MessageHeader) == 48);
static_assert(offsetof(MessageHeader, id) == 0);
static_assert(offsetof(MessageHeader, message_size) == 4);
static_assert(offsetof(MessageHeader, segment_index) == 8);
static_assert(offsetof(MessageHeader, completion_status) == 12);
static_assert(offsetof(MessageHeader, flags) == 16);
static_assert(offsetof(MessageHeader, reserved) == 20);
static_assert(offsetof(MessageHeader, message_handle) == 24);
static_assert(offsetof(MessageHeader, payload_vm_offset) == 32);
static_assert(offsetof(MessageHeader, payload_max_bytes) == 40);
static_assert(offsetof(MessageHeader, payload_bytes) == 44);

struct __attribute__((packed)) IrqInfo {
  std::uint64_t reserved1;
  std::uint64_t recv_irq_handle;
  std::uint32_t recv_irq_vector;
  std::uint8_t recv_irq_shared;
  std::uint8_t reserved[3];
};
static_assert(sizeof(IrqInfo) == 24);
static_assert(offsetof(IrqInfo, recv_irq_handle) == 8);
static_assert(offsetof(IrqInfo, recv_irq_vector) == 16);
static_assert(offsetof(IrqInfo, recv_irq_shared) == 20);

struct __attribute__((packed)) CreateBus {
  std::uint32_t bus_no;
  std::uint32_t dev_count;
  std::uint64_t channel_addr;
  std::uint64_t channel_bytes;
  Guid bus_data_type_guid;
  Guid bus_inst_guid;
};
static_assert(offsetof(CreateBus, dev_count) == 4);
static_assert(offsetof(CreateBus, channel_addr) == 8);
static_assert(offsetof(CreateBus, channel_bytes) == 16);
static_assert(offsetof(CreateBus, bus_data_type_guid) == 24);
static_assert(offsetof(CreateBus, bus_inst_guid) == 40);

struct __attribute__((packed)) DestroyBus {
  std::uint32_t bus_no;
  std::uint32_t reserved;
};

struct __attribute__((packed)) ConfigureBus {
  std::uint32_t bus_no;
  std::uint32_t reserved1;
  std::uint64_t guest_handle;
  std::uint64_t recv_bus_irq_handle;
};
static_assert(offsetof(ConfigureBus, guest_handle) == 8);
static_assert(offsetof(ConfigureBus, recv_bus_irq_handle) == 16);

struct __attribute__((packed)) CreateDevice {
  std::uint32_t bus_no;
  std::uint32_t dev_no;
  std::uint64_t channel_addr;
  std::uint64_t channel_bytes;
  Guid data_type_guid;
  Guid dev_inst_guid;
  IrqInfo irq_info;
};
static_assert(offsetof(CreateDevice, dev_no) == 4);
static_assert(offsetof(CreateDevice, channel_addr) == 8);
static_assert(offsetof(CreateDevice, channel_bytes) == 16);
static_assert(offsetof(CreateDevice, data_type_guid) == 24);
static_assert(offsetof(CreateDevice, dev_inst_guid) == 40);
static_assert(offsetof(CreateDevice, irq_info) == 56);
static_assert(sizeof(CreateDevice) == 80);

// destroy_device, configure_device and reconfigure_device carry just this.
struct __attribute__((packed)) DeviceRef {
  std::uint32_t bus_no;
  std::uint32_t dev_no;
};
static_assert(offsetof(DeviceRef, dev_no) == 4);

struct __attribute__((packed)) BusChangeState {
  std::uint32_t bus_no;
  std::uint16_t state;
  std::uint8_t reserved[2];
};
static_assert(offsetof(BusChangeState, state) == 4);

namespace change_flag {
inline constexpr std::uint32_t phys_device = 1u << 0;
}

struct __attribute__((packed)) DeviceChangeState {
  std::uint32_t bus_no;
  std::uint32_t dev_no;
  std::uint16_t state;
  std::uint32_t flags;
  std::uint32_t reserved;
  std::uint8_t pad[2];
};
static_assert(offsetof(DeviceChangeState, dev_no) == 4);
static_assert(offsetof(DeviceChangeState, state) == 8);
static_assert(offsetof(DeviceChangeState, flags) == 10);
static_assert(offsetof(DeviceChangeState, reserved) == 14);
static_assert(offsetof(DeviceChangeState, pad) == 18);

struct __attribute__((packed)) DeviceChangeStateEvent {
  std::uint32_t bus_no;
  std::uint32_t dev_no;
  std::uint16_t state;
  std::uint8_t reserved[6];
};
static_assert(offsetof(DeviceChangeStateEvent, state) == 8);
static_assert(sizeof(DeviceChangeStateEvent) == 16);

struct __attribute__((packed)) InitChipset {
  std::uint32_t bus_count;
  std::uint32_t switch_count;
  std::uint32_t features;
  std::uint32_t platform_number;
};
static_assert(offsetof(InitChipset, switch_count) == 4);
static_assert(offsetof(InitChipset, features) == 8);
static_assert(offsetof(InitChipset, platform_number) == 12);

struct __attribute__((packed)) ChipsetSelftest {
  std::uint32_t options;
  std::uint32_t test;
};

union __attribute__((packed)) Packet {
  CreateBus create_bus;
  DestroyBus destroy_bus;
  ConfigureBus configure_bus;
  BusChangeState bus_change_state;
  CreateDevice create_device;
  DeviceRef destroy_device;
  DeviceRef configure_device;
  DeviceRef reconfigure_device;
  DeviceChangeState device_change_state;
  DeviceChangeStateEvent device_change_state_event;
  InitChipset init_chipset;
  ChipsetSelftest chipset_selftest;
  std::uint8_t raw[80];
};
static_assert(sizeof(Packet) == 80);

struct __attribute__((packed)) Message {
  MessageHeader hdr;
  Packet cmd;
};
static_assert(sizeof(Message) == 128);
static_assert(offsetof(Message, cmd) == 48);

// The Linux visor_controlvm_channel: controlvm-specific fields fill 128..3072,
// the four queue headers follow, then four pools of 64 messages and two saved
// crash messages.
inline constexpr std::uint64_t kQueueHeadersOffset = 3072;
inline constexpr std::uint64_t kMessagePoolsOffset = 3584;
inline constexpr std::uint64_t kChannelBytes = 36608;
static_assert(kMessagePoolsOffset == kQueueHeadersOffset + kQueueCount * 128);
static_assert(kChannelBytes == kMessagePoolsOffset + kQueueCount * kMessagesPerQueue * sizeof(Message) +
                                   2 * sizeof(Message));

}  // namespace visorlab::channel::controlvm
