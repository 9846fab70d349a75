#include "actors/command/command_partition.hpp"

namespace visorlab::command {

std::optional<std::uint64_t> CommandPartition::send(cvm::Id id, const cvm::Packet& packet, std::uint32_t flags,
                                                    Clock::time_point now) {
  cvm::Message m{};
  m.hdr.id = static_cast<std::uint32_t>(id);
  m.hdr.message_size = sizeof m;
  m.hdr.flags = flags;
  m.hdr.message_handle = next_handle_;
  m.cmd = packet;
  if (controlvm_.queue(cvm::event).insert_signal(m) != 0) return std::nullopt;
  // A test message gets no ACK and no response: nothing to wait for.
  if (!(flags & cvm::flag::test_message))
    outstanding_[next_handle_] = {m.hdr.id, false, (flags & cvm::flag::response_expected) != 0, now + timeout_};
  return next_handle_++;
}

std::vector<Answer> CommandPartition::poll(Clock::time_point now) {
  std::vector<Answer> settled;
  cvm::Message m{};
  while (controlvm_.queue(cvm::ack).remove_signal(m) == 0) {
    auto it = outstanding_.find(m.hdr.message_handle);
    if (it == outstanding_.end()) {
      ++unexpected_;
      continue;
    }
    it->second.acked = true;
    if (!it->second.wants_response) {  // the ACK is all that comes
      settled.push_back({it->first, it->second.id, true, false, false, 0, {}});
      outstanding_.erase(it);
    }
  }
  while (controlvm_.queue(cvm::request).remove_signal(m) == 0) {
    auto it = outstanding_.find(m.hdr.message_handle);
    if (it == outstanding_.end()) {
      ++unexpected_;
      continue;
    }
    settled.push_back({it->first, it->second.id, it->second.acked, false, (m.hdr.flags & cvm::flag::failed) != 0,
                       m.hdr.completion_status, m.cmd});
    outstanding_.erase(it);
  }
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    settled.push_back({it->first, it->second.id, it->second.acked, true, true, 0, {}});
    it = outstanding_.erase(it);
  }
  return settled;
}

cvm::Packet CommandPartition::init_chipset(std::uint32_t features) {
  cvm::Packet p{};
  p.init_chipset.features = features;
  return p;
}

cvm::Packet CommandPartition::bus(std::uint32_t bus_no, std::uint32_t dev_count) {
  cvm::Packet p{};
  p.create_bus.bus_no = bus_no;
  p.create_bus.dev_count = dev_count;
  return p;
}

cvm::Packet CommandPartition::device(std::uint32_t bus_no, std::uint32_t dev_no, const channel::Guid& type,
                                     std::uint64_t channel_addr, std::uint64_t channel_bytes) {
  cvm::Packet p{};
  p.create_device.bus_no = bus_no;
  p.create_device.dev_no = dev_no;
  p.create_device.data_type_guid = type;
  p.create_device.channel_addr = channel_addr;
  p.create_device.channel_bytes = channel_bytes;
  return p;
}

cvm::Packet CommandPartition::change_state(std::uint32_t bus_no, std::uint32_t dev_no, std::uint16_t state,
                                           bool phys_device) {
  cvm::Packet p{};
  p.device_change_state.bus_no = bus_no;
  p.device_change_state.dev_no = dev_no;
  p.device_change_state.state = state;
  p.device_change_state.flags = phys_device ? cvm::change_flag::phys_device : 0;
  return p;
}

}  // namespace visorlab::command
