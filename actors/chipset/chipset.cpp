#include "actors/chipset/chipset.hpp"

#include <cerrno>

namespace visorlab::chipset {
namespace {

using cvm::Id;
using cvm::Response;

constexpr std::uint16_t kAlive = 1u << 2;
constexpr std::uint16_t kOperating = 1u << 7;
constexpr std::uint16_t kActive = 1u << 1;

int code(Response r) { return static_cast<int>(r); }

}  // namespace

Chipset::Chipset(channel::Channel& controlvm, BusModel& bus) : controlvm_(controlvm), bus_(bus) {}

bool Chipset::has_commands() const {
  return controlvm_.queue(cvm::response).pending() > 0 || controlvm_.queue(cvm::event).pending() > 0;
}

std::size_t Chipset::poll(Clock::time_point now) {
  cvm::Message m;
  // The Linux guest drains RESPONSE and ignores it.
  while (controlvm_.queue(cvm::response).remove(&m) == 0) {
  }
  std::size_t handled = 0;
  while (controlvm_.queue(cvm::event).remove(&m) == 0) {
    ++handled;
    if (m.hdr.flags & cvm::flag::test_message) continue;  // no ACK, no dispatch, no response
    ack(m.hdr);
    dispatch(m, now);
  }
  // Parahotplug requests the guest never acknowledged.
  for (auto it = hotplugs_.begin(); it != hotplugs_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    cvm::Packet p{};
    p.device_change_state.state = it->second.packet.state;
    p.device_change_state.flags = cvm::change_flag::phys_device;
    respond(it->second.request, code(Response::device_udev_timeout), &p);  // with failed = 1, unlike the kernel
    it = hotplugs_.erase(it);
  }
  return handled;
}

void Chipset::ack(const cvm::MessageHeader& request) {
  cvm::Message a{};
  a.hdr = request;
  a.hdr.payload_vm_offset = 0;
  a.hdr.payload_max_bytes = 0;
  a.hdr.payload_bytes = 0;
  if (controlvm_.queue(cvm::ack).insert(&a) != 0) ++dropped_;  // the command still runs
}

void Chipset::respond(const cvm::MessageHeader& request, int status, const cvm::Packet* packet) {
  if (!(request.flags & cvm::flag::response_expected) || (request.flags & cvm::flag::test_message)) return;
  cvm::Message r{};
  r.hdr = request;
  r.hdr.payload_vm_offset = 0;
  r.hdr.payload_max_bytes = 0;
  r.hdr.payload_bytes = 0;
  if (status != 0) {
    r.hdr.flags |= cvm::flag::failed;
    r.hdr.completion_status = static_cast<std::uint32_t>(status > 0 ? status : -status);
  }
  if (packet) r.cmd = *packet;
  if (controlvm_.queue(cvm::request).insert(&r) != 0) ++dropped_;
}

void Chipset::dispatch(const cvm::Message& in, Clock::time_point now) {
  const auto& p = in.cmd;
  switch (static_cast<Id>(in.hdr.id)) {
    case Id::chipset_init: {
      cvm::Packet out{};
      if (initialized_) {
        respond(in.hdr, code(Response::already_done), &out);
        return;
      }
      initialized_ = true;
      features_ = (p.init_chipset.features & cvm::chipset_feature::para_hotplug) | cvm::chipset_feature::reply;
      out.init_chipset.features = features_;
      respond(in.hdr, 0, &out);
      return;
    }
    case Id::chipset_ready:
    case Id::chipset_selftest:
    case Id::chipset_stop:
      respond(in.hdr, 0);
      return;
    case Id::bus_create:
      respond(in.hdr, bus_.create_bus(p.create_bus));
      return;
    case Id::bus_destroy: {
      const std::uint32_t bus_no = p.destroy_bus.bus_no;
      const int rc = bus_.destroy_bus(bus_no);
      if (rc == 0) std::erase_if(in_flight_, [&](const auto& e) { return e.first.first == bus_no; });
      respond(in.hdr, rc);
      return;
    }
    case Id::bus_configure:
      respond(in.hdr, bus_.configure_bus(p.configure_bus));
      return;
    case Id::bus_changestate:
      respond(in.hdr, bus_.bus_exists(p.bus_change_state.bus_no) ? 0 : code(Response::bus_invalid));
      return;
    case Id::device_create:
      respond(in.hdr, bus_.create_device(p.create_device));
      return;
    case Id::device_destroy: {
      const DeviceKey key{p.destroy_device.bus_no, p.destroy_device.dev_no};
      if (in_flight_.contains(key)) {
        respond(in.hdr, -EIO);
        return;
      }
      respond(in.hdr, bus_.destroy_device(key.first, key.second));
      return;
    }
    case Id::device_configure:
    case Id::device_reconfigure: {
      const DeviceKey key{p.configure_device.bus_no, p.configure_device.dev_no};
      if (!bus_.device_exists(key.first, key.second))
        respond(in.hdr, code(Response::device_invalid));
      else
        respond(in.hdr, in_flight_.contains(key) ? -EIO : 0);
      return;
    }
    case Id::device_changestate:
      change_state(in, now);
      return;
    case Id::bus_changestate_event:
    case Id::device_changestate_event:
      respond(in.hdr, code(Response::id_invalid_for_client));  // the guest sends these, never receives them
      return;
  }
  respond(in.hdr, code(Response::id_unknown));
}

void Chipset::change_state(const cvm::Message& in, Clock::time_point now) {
  const cvm::DeviceChangeState p = in.cmd.device_change_state;
  if (p.flags & cvm::change_flag::phys_device) {
    // Parahotplug: an SR-IOV VF around a PF recovery. Enable answers at once;
    // disable waits for the guest's acknowledgement or expires.
    const std::uint32_t id = next_hotplug_id_++;
    const bool enable = (p.state & kActive) != 0;
    if (enable) {
      cvm::Packet out{};
      out.device_change_state.state = p.state;
      out.device_change_state.flags = cvm::change_flag::phys_device;
      respond(in.hdr, 0, &out);
    } else {
      hotplugs_[id] = Hotplug{in.hdr, p, now + kParahotplugExpiry};
    }
    if (on_hotplug_) on_hotplug_(id, enable, p.bus_no, p.dev_no);
    return;
  }

  const DeviceKey key{p.bus_no, p.dev_no};
  if (!bus_.device_exists(key.first, key.second)) {
    respond(in.hdr, code(Response::device_invalid));
    return;
  }
  if (in_flight_.contains(key)) {
    respond(in.hdr, -EBUSY);  // pause while resume is in flight, or the reverse
    return;
  }
  const bool alive = p.state & kAlive, operating = p.state & kOperating;
  if (alive != operating) {
    // "paused" and other mixed states start nothing; the kernel then never
    // answers and the device stays pending — visorlab says why instead.
    respond(in.hdr, code(Response::payload_invalid));
    return;
  }
  const bool pause = !alive;
  in_flight_[key] = pause;
  const cvm::MessageHeader request = in.hdr;
  const int rc = bus_.change_device_state(key.first, key.second, pause, [this, request, key, pause](int status) {
    in_flight_.erase(key);
    cvm::Packet out{};
    out.device_change_state.bus_no = key.first;
    out.device_change_state.dev_no = key.second;
    out.device_change_state.state = pause ? cvm::segment::standby : cvm::segment::running;
    respond(request, status, &out);
  });
  if (rc != 0) {
    in_flight_.erase(key);
    respond(in.hdr, rc);
  }
}

bool Chipset::parahotplug_done(std::uint32_t id) {
  const auto it = hotplugs_.find(id);
  if (it == hotplugs_.end()) return false;
  cvm::Packet out{};
  out.device_change_state.state = it->second.packet.state;
  out.device_change_state.flags = cvm::change_flag::phys_device;
  respond(it->second.request, 0, &out);
  hotplugs_.erase(it);
  return true;
}

}  // namespace visorlab::chipset
