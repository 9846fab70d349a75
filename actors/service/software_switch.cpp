#include "actors/service/software_switch.hpp"

#include <algorithm>
#include <cstring>

namespace visorlab::service {
namespace {

bool group(const Mac& mac) { return (mac[0] & 0x01) != 0; }  // broadcast or multicast
bool zero(const Mac& mac) { return std::all_of(mac.begin(), mac.end(), [](std::uint8_t b) { return b == 0; }); }

}  // namespace

SoftwareSwitch::~SoftwareSwitch() {
  while (!ports_.empty()) detach(*ports_.back());
}

void SoftwareSwitch::attach(VnicBackend& port) {
  if (port.switch_ == this) return;
  if (port.switch_) port.switch_->detach(port);
  ports_.push_back(&port);
  port.switch_ = this;
  port.set_uplink([this](VnicBackend& from, std::span<const std::byte> frame) { forward(from, frame); });
  const Mac& mac = port.mac();
  if (group(mac) || zero(mac)) return;  // no address to switch to
  auto [it, inserted] = table_.try_emplace(mac, Entry{&port, true});
  if (!inserted && !it->second.configured) it->second = Entry{&port, true};  // a configured MAC beats a learned one
}

void SoftwareSwitch::detach(VnicBackend& port) {
  const auto it = std::find(ports_.begin(), ports_.end(), &port);
  if (it == ports_.end()) return;
  ports_.erase(it);
  std::erase_if(table_, [&](const auto& entry) { return entry.second.port == &port; });
  port.switch_ = nullptr;
  port.set_uplink({});
}

bool SoftwareSwitch::attached(const VnicBackend& port) const {
  return std::find(ports_.begin(), ports_.end(), &port) != ports_.end();
}

const VnicBackend* SoftwareSwitch::lookup(const Mac& mac) const {
  const auto it = table_.find(mac);
  return it == table_.end() ? nullptr : it->second.port;
}

void SoftwareSwitch::forward(VnicBackend& from, std::span<const std::byte> frame) {
  if (!attached(from)) return;  // only ports may send, so the table never names a stranger
  ++counts_.frames;
  if (frame.size() < channel::io::kEthHeaderLen) {
    ++counts_.runt;
    return;
  }
  Mac dst{}, src{};
  std::memcpy(dst.data(), frame.data(), dst.size());
  std::memcpy(src.data(), frame.data() + dst.size(), src.size());

  if (!group(src) && !zero(src)) {
    auto [it, inserted] = table_.try_emplace(src, Entry{&from, false});
    if (!inserted && !it->second.configured) it->second.port = &from;  // the address moved
  }

  if (group(dst)) {
    ++counts_.flooded;
    for (VnicBackend* port : ports_)
      if (port != &from) send(*port, frame);
    return;
  }
  const auto it = table_.find(dst);
  if (it == table_.end()) {
    ++counts_.unknown;
    return;
  }
  if (it->second.port == &from) {
    ++counts_.hairpin;
    return;
  }
  ++counts_.unicast;
  send(*it->second.port, frame);
}

void SoftwareSwitch::send(VnicBackend& to, std::span<const std::byte> frame) {
  switch (to.deliver(frame)) {
    case Delivery::delivered:
      ++counts_.delivered;
      break;
    case Delivery::no_buffer:
      ++counts_.no_buffer;
      break;
    case Delivery::disabled:
      ++counts_.disabled;
      break;
    case Delivery::link_down:
      ++counts_.link_down;
      break;
    case Delivery::too_big:
      ++counts_.too_big;
      break;
    case Delivery::failed:
      ++counts_.failed;
      break;
  }
}

}  // namespace visorlab::service
