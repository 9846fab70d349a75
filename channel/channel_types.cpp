#include "channel/channel_types.hpp"

#include <array>

#include "channel/controlvm.hpp"
#include "channel/input_report.hpp"
#include "channel/iochannel.hpp"

namespace visorlab::channel {
namespace {

// Slots per I/O queue: room for visorhba's 128 pending commands plus responses in flight.
constexpr std::uint32_t kIoSlots = 256;

constexpr std::array<ChannelType, 6> kTypes{{
    {ChannelKind::controlvm, "controlvm", "visorchipset", guids::controlvm, controlvm::kVersionId,
     controlvm::kChannelBytes, controlvm::kQueueCount, sizeof(controlvm::Message)},
    {ChannelKind::vhba, "vhba", "visorhba", guids::vhba, io::kVhbaVersionId, sizeof(io::IoChannel),
     io::kQueueCount, io::kSignalSize},
    {ChannelKind::vnic, "vnic", "visornic", guids::vnic, io::kVnicVersionId, sizeof(io::IoChannel),
     io::kQueueCount, io::kSignalSize},
    {ChannelKind::keyboard, "keyboard", "visorinput", guids::keyboard, 0,
     input::kQueueHeaderOffset, 1, sizeof(input::Report)},
    {ChannelKind::mouse, "mouse", "visorinput", guids::mouse, 0, input::kQueueHeaderOffset, 1,
     sizeof(input::Report)},
    {ChannelKind::vbus, "vbus", "visorbus", guids::vbus, 1, sizeof(ChannelHeader), 0, 0},
}};

}  // namespace

ChannelSpec ChannelType::spec() const {
  ChannelSpec s;
  s.type = guid;
  s.version_id = version_id;
  switch (kind) {
    case ChannelKind::controlvm:
      // The Linux visor_controlvm_channel layout, byte for byte.
      s.ch_space_offset = controlvm::kQueueHeadersOffset;
      s.slots_offset = controlvm::kMessagePoolsOffset;
      s.queues.assign(controlvm::kQueueCount, QueueSpec{sizeof(controlvm::Message), controlvm::kMessagesPerQueue});
      s.min_size = controlvm::kChannelBytes;
      break;
    case ChannelKind::vhba:
    case ChannelKind::vnic:
      s.features = feature::channel_is_polling;
      s.ch_space_offset = offsetof(io::IoChannel, cmd_q);
      s.slots_offset = io::kSlotsOffset;
      s.queues.assign(io::kQueueCount, QueueSpec{io::kSignalSize, kIoSlots});
      if (kind == ChannelKind::vhba) s.min_size = channel_size(s) + io::kVhbaBufferPool;
      if (kind == ChannelKind::vnic)  // the pool starts on a page boundary
        s.min_size = (channel_size(s) + io::kVnicPageSize - 1) / io::kVnicPageSize * io::kVnicPageSize + io::kVnicBufferPool;
      break;
    case ChannelKind::keyboard:
    case ChannelKind::mouse:
      s.ch_space_offset = input::kQueueHeaderOffset;
      s.slots_offset = input::kReportsOffset;
      s.queues.assign(1, QueueSpec{sizeof(input::Report), input::kReportSlots});
      s.min_size = input::kChannelBytes;
      break;
    case ChannelKind::vbus:
      break;
  }
  return s;
}

std::span<const ChannelType> channel_types() { return kTypes; }

const ChannelType* find_type(const Guid& guid) {
  for (const auto& t : kTypes)
    if (t.guid == guid) return &t;
  return nullptr;
}

const ChannelType* find_type(std::string_view name) {
  for (const auto& t : kTypes)
    if (t.name == name) return &t;
  return nullptr;
}

const ChannelType& type_of(ChannelKind kind) {
  for (const auto& t : kTypes)
    if (t.kind == kind) return t;
  return kTypes.front();  // unreachable: every kind has an entry
}

}  // namespace visorlab::channel
