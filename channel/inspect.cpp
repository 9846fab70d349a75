#include "channel/inspect.hpp"

#include <cstring>

#include "channel/channel.hpp"
#include "channel/channel_types.hpp"
#include "channel/controlvm.hpp"

namespace visorlab::channel {
namespace {

using nlohmann::json;

// Copies a (possibly packed) field by value: json cannot bind packed references.
template <typename T>
T v(T value) {
  return value;
}

json header_json(const ChannelHeader& h) {
  return json{
      {"signature", v(h.signature)},          {"legacy_state", v(h.legacy_state)},
      {"header_size", v(h.header_size)},      {"size", v(h.size)},
      {"features", v(h.features)},            {"chtype", h.chtype.str()},
      {"partition_handle", v(h.partition_handle)}, {"handle", v(h.handle)},
      {"ch_space_offset", v(h.ch_space_offset)}, {"version_id", v(h.version_id)},
      {"partition_index", v(h.partition_index)}, {"zone_guid", h.zone_guid.str()},
      {"cli_str_offset", v(h.cli_str_offset)}, {"cli_state_boot", v(h.cli_state_boot)},
      {"cmd_state_cli", v(h.cmd_state_cli)},  {"cli_state_os", v(h.cli_state_os)},
      {"ch_characteristic", v(h.ch_characteristic)}, {"cmd_state_srv", v(h.cmd_state_srv)},
      {"srv_state", v(h.srv_state)},          {"cli_error_boot", v(h.cli_error_boot)},
      {"cli_error_os", v(h.cli_error_os)},    {"filler", v(h.filler)},
      {"recover_channel", v(h.recover_channel)},
  };
}

json queue_json(std::uint32_t index, const SignalQueueHeader& q, std::uint32_t pending) {
  return json{
      {"index", index},
      {"version", v(q.version)},           {"chtype", v(q.chtype)},
      {"size", v(q.size)},                 {"sig_base_offset", v(q.sig_base_offset)},
      {"features", v(q.features)},         {"num_sent", v(q.num_sent)},
      {"num_overflows", v(q.num_overflows)}, {"signal_size", v(q.signal_size)},
      {"max_slots", v(q.max_slots)},       {"max_signals", v(q.max_signals)},
      {"head", v(q.head)},                 {"num_received", v(q.num_received)},
      {"tail", v(q.tail)},                 {"reserved1", v(q.reserved1)},
      {"reserved2", v(q.reserved2)},       {"client_queue", v(q.client_queue)},
      {"num_irq_received", v(q.num_irq_received)}, {"num_empty", v(q.num_empty)},
      {"errorflags", v(q.errorflags)},
      {"filler", std::vector<int>(std::begin(q.filler), std::end(q.filler))},
      {"pending", pending},
  };
}

json packet_json(std::uint32_t id, const controlvm::Packet& p) {
  using controlvm::Id;
  switch (static_cast<Id>(id)) {
    case Id::bus_create: {
      const auto& c = p.create_bus;
      return {{"bus_no", v(c.bus_no)}, {"dev_count", v(c.dev_count)}, {"channel_addr", v(c.channel_addr)},
              {"channel_bytes", v(c.channel_bytes)}, {"bus_data_type_guid", c.bus_data_type_guid.str()},
              {"bus_inst_guid", c.bus_inst_guid.str()}};
    }
    case Id::bus_destroy:
      return {{"bus_no", v(p.destroy_bus.bus_no)}};
    case Id::bus_configure: {
      const auto& c = p.configure_bus;
      return {{"bus_no", v(c.bus_no)}, {"guest_handle", v(c.guest_handle)},
              {"recv_bus_irq_handle", v(c.recv_bus_irq_handle)}};
    }
    case Id::bus_changestate:
    case Id::bus_changestate_event:
      return {{"bus_no", v(p.bus_change_state.bus_no)}, {"state", v(p.bus_change_state.state)}};
    case Id::device_create: {
      const auto& c = p.create_device;
      return {{"bus_no", v(c.bus_no)}, {"dev_no", v(c.dev_no)}, {"channel_addr", v(c.channel_addr)},
              {"channel_bytes", v(c.channel_bytes)}, {"data_type_guid", c.data_type_guid.str()},
              {"dev_inst_guid", c.dev_inst_guid.str()},
              {"irq_info", {{"recv_irq_handle", v(c.irq_info.recv_irq_handle)},
                            {"recv_irq_vector", v(c.irq_info.recv_irq_vector)},
                            {"recv_irq_shared", v(c.irq_info.recv_irq_shared)}}}};
    }
    case Id::device_destroy:
    case Id::device_configure:
    case Id::device_reconfigure:
      return {{"bus_no", v(p.destroy_device.bus_no)}, {"dev_no", v(p.destroy_device.dev_no)}};
    case Id::device_changestate: {
      const auto& c = p.device_change_state;
      return {{"bus_no", v(c.bus_no)}, {"dev_no", v(c.dev_no)}, {"state", v(c.state)},
              {"flags", {{"phys_device", (v(c.flags) & controlvm::change_flag::phys_device) != 0}}}};
    }
    case Id::device_changestate_event: {
      const auto& c = p.device_change_state_event;
      return {{"bus_no", v(c.bus_no)}, {"dev_no", v(c.dev_no)}, {"state", v(c.state)}};
    }
    case Id::chipset_init: {
      const auto& c = p.init_chipset;
      return {{"bus_count", v(c.bus_count)}, {"switch_count", v(c.switch_count)},
              {"features", v(c.features)}, {"platform_number", v(c.platform_number)}};
    }
    case Id::chipset_selftest:
      return {{"options", v(p.chipset_selftest.options)}, {"test", v(p.chipset_selftest.test)}};
    case Id::chipset_stop:
    case Id::chipset_ready:
      break;
  }
  return json::object();
}

json message_json(const controlvm::Message& m) {
  const std::uint32_t id = m.hdr.id;
  json flags = json::object();
  for (const auto& f : controlvm::kFlagNames) flags[std::string(f.name)] = (m.hdr.flags & f.bit) != 0;
  const auto name = controlvm::id_name(id);
  return json{{"id", name ? json(std::string(*name)) : json(id)},
              {"message_handle", v(m.hdr.message_handle)},
              {"completion_status", v(m.hdr.completion_status)},
              {"flags", flags},
              {"packet", packet_json(id, m.cmd)}};
}

}  // namespace

json inspect_image(std::span<std::byte> image, std::optional<std::uint32_t> queue_count) {
  if (image.size() < sizeof(ChannelHeader))
    throw ChannelError(Check::mapping_size, 0, std::to_string(image.size()) + " bytes, a channel header needs 128");
  Guid chtype;
  std::memcpy(&chtype, image.data() + offsetof(ChannelHeader, chtype), sizeof chtype);
  const ChannelType* type = find_type(chtype);

  Expect expect = type ? type->expect() : Expect{};
  if (queue_count) expect.queue_count = *queue_count;
  const Channel channel = Channel::attach(Mapping::borrow(image), expect);

  json queues = json::array();
  for (std::uint32_t i = 0; i < channel.queue_count(); ++i) {
    const SignalQueue& queue = channel.queue(i);
    json q = queue_json(i, channel.queue_header(i), queue.pending());
    if (type && type->kind == ChannelKind::controlvm) {
      json messages = json::array();
      controlvm::Message m;
      for (std::uint32_t k = 0; queue.peek(k, &m) == 0; ++k) messages.push_back(message_json(m));
      q["messages"] = std::move(messages);
    }
    queues.push_back(std::move(q));
  }
  return json{{"type", type ? json(std::string(type->name)) : json(nullptr)},
              {"header", header_json(channel.header())},
              {"queues", std::move(queues)}};
}

}  // namespace visorlab::channel
