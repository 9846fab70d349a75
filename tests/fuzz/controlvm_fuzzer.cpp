// libFuzzer target for controlvm messages as a guest's chipset receives them
// (actors/chipset, actors/bus): the input is a run of raw 128-byte messages
// (whatever their header and packet say) put on the EVENT queue of a real
// controlvm channel, polled by the chipset over a real virtual bus. Device
// channels cannot be opened here (the bus is told so), so DEVICE_CREATE is
// judged up to its channel. The chipset must answer or drop each message and
// never crash, hang or touch memory outside the channel.
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "channel/channel_types.hpp"
#include "channel/controlvm.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto spec = ch::type_of(ch::ChannelKind::controlvm).spec();
  std::vector<std::byte> memory(ch::channel_size(spec));
  ch::Channel command_end = ch::Channel::format(ch::Mapping::borrow(memory), spec);
  ch::Channel guest_end =
      ch::Channel::attach(ch::Mapping::borrow(memory), ch::type_of(ch::ChannelKind::controlvm).expect());
  visorlab::bus::VirtualBus bus([](const cvm::CreateDevice&, const ch::Expect&) -> std::unique_ptr<ch::ChannelEnd> {
    throw std::runtime_error("no device channels in the fuzzer");
  });
  visorlab::chipset::Chipset chipset(guest_end, bus);

  cvm::Message message{};
  for (std::size_t at = 0; at < size; at += sizeof message) {
    message = cvm::Message{};
    std::memcpy(&message, data + at, std::min(sizeof message, size - at));
    if (command_end.queue(cvm::event).insert_signal(message) != 0) break;  // full
    chipset.poll();
    // The command partition's side drains what the guest wrote back.
    cvm::Message answer{};
    while (command_end.queue(cvm::request).remove_signal(answer) == 0) {
    }
    while (command_end.queue(cvm::ack).remove_signal(answer) == 0) {
    }
  }
  chipset.poll();
  return 0;
}
