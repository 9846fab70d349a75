#include "actors/drivers/visorinput.hpp"

#include <array>
#include <cerrno>

namespace visorlab::drivers {
namespace {

struct InputState {
  bool paused = false;
  bool seen_any = false;
  std::uint64_t last_seq = 0;
  InputCounts counts;
};

InputState* state_of(const bus::Device& device) { return static_cast<InputState*>(device.driver_data.get()); }

constexpr std::array kClaims = {channel::ChannelKind::keyboard, channel::ChannelKind::mouse};

}  // namespace

std::span<const channel::ChannelKind> VisorInput::claims() const { return kClaims; }

int VisorInput::probe(bus::Device& device) {
  if (!device.channel() || device.channel()->queue_count() < 1) return -ENODEV;
  device.driver_data = std::make_shared<InputState>();
  return 0;
}

void VisorInput::remove(bus::Device& device) { device.driver_data.reset(); }

int VisorInput::pause(bus::Device& device, Done done) {
  InputState* s = state_of(device);
  if (!s) return -ENODEV;
  if (s->paused) return -EBUSY;
  s->paused = true;
  done(0);
  return 0;
}

int VisorInput::resume(bus::Device& device, Done done) {
  InputState* s = state_of(device);
  if (!s) return -ENODEV;
  if (!s->paused) return -EBUSY;
  s->paused = false;
  done(0);
  return 0;
}

void VisorInput::channel_interrupt(bus::Device& device) {
  InputState* s = state_of(device);
  if (!s || !device.channel()) return;
  channel::input::Report report;
  while (device.channel()->queue(0).remove_signal(report) == 0) {
    const std::uint64_t seq = report.seq_no;
    if (s->seen_any && seq <= s->last_seq) {
      ++s->counts.out_of_order;
    } else {
      if (s->seen_any && seq > s->last_seq + 1) s->counts.lost += seq - s->last_seq - 1;
      s->last_seq = seq;
      s->seen_any = true;
    }
    ++s->counts.delivered;
    if (sink_) sink_(device, report);
  }
}

InputCounts VisorInput::counts(const bus::Device& device) {
  const InputState* s = state_of(device);
  return s ? s->counts : InputCounts{};
}

}  // namespace visorlab::drivers
