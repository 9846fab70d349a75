#include "actors/runtime/device_channels.hpp"

#include <stdexcept>

#include "net/host_port.hpp"
#include "channel/vnic_config.hpp"

namespace visorlab::actors {
namespace {

using channel::ChannelKind;
using channel::tcp::Side;

constexpr std::string_view kShm = "shm:";
constexpr std::string_view kTcp = "tcp:";

// Who writes each queue (spec §5): I/O channels carry guest commands in
// queue 0 and service responses in queue 1; input channels carry reports
// from the console partition.
channel::tcp::QueueProducers producers(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::vhba:
    case ChannelKind::vnic: return {Side::guest, Side::service};
    case ChannelKind::keyboard:
    case ChannelKind::mouse: return {Side::service};
    default: throw std::invalid_argument("no device channel of this kind");
  }
}

// controlvm (spec §3): the guest's chipset writes REQUEST (its responses)
// and ACK; the command partition writes RESPONSE and EVENT (its commands).
// Over TCP the command partition holds the creating role (Side::guest).
channel::tcp::QueueProducers controlvm_producers() { return {Side::service, Side::guest, Side::guest, Side::service}; }

channel::tcp::Address parse_tcp(const std::string& rest) {
  return net::parse_host_port(rest, "tcp locator", net::PortUse::connect);
}

}  // namespace

ChannelKind device_kind(ChannelKind kind) {
  switch (kind) {
    case ChannelKind::vhba:
    case ChannelKind::vnic:
    case ChannelKind::keyboard:
    case ChannelKind::mouse: return kind;
    default: throw std::invalid_argument("not a device's channel kind: " + std::to_string(static_cast<int>(kind)));
  }
}

GuestEnd open_device_guest_end(const ChannelOffer& offer, const std::string& guest_host,
                               channel::TransportHandler on_event) {
  const ChannelKind kind = device_kind(offer.kind);
  channel::Placement placement{guest_host, offer.service_host, {offer.listen_host, 0}};
  GuestEnd out;
  // Shared memory names are machine-wide (the tagged name); a TCP channel is
  // named by its device, which is what the service end asks for.
  const std::string& name = placement.same_host() && !offer.channel.empty() ? offer.channel : offer.device;
  out.end = channel::open_guest_end(placement, name, channel::type_of(kind).spec(), producers(kind),
                                    std::move(on_event));
  // The creator configures a vnic before the guest's driver probes it.
  if (kind == ChannelKind::vnic) channel::io::write_vnic_config(out.end->channel(), channel::io::mac_for(offer.device));
  if (const auto at = channel::listen_address(*out.end))
    out.locator = std::string(kTcp) + at->host + ":" + std::to_string(at->port);
  else
    out.locator = std::string(kShm) + name;
  return out;
}

std::unique_ptr<channel::ChannelEnd> open_device_service_end(const DeviceAttach& attach,
                                                             channel::TransportHandler on_event) {
  const ChannelKind kind = device_kind(attach.kind);
  const channel::Expect expect = channel::type_of(kind).expect();
  if (attach.channel.starts_with(kShm)) return channel::attach_shared_end(attach.channel.substr(kShm.size()), expect);
  if (attach.channel.starts_with(kTcp)) {
    // The service end's peer is the guest's host: a cut of that host is ours.
    const std::string guest_host = attach.guest_host.empty() ? "guest" : attach.guest_host;
    channel::Placement placement{guest_host, guest_host + "~service", {}};
    return channel::open_service_end(placement, attach.device, expect, producers(kind),
                                     parse_tcp(attach.channel.substr(kTcp.size())), std::move(on_event));
  }
  throw std::invalid_argument("bad channel locator '" + attach.channel + "'");
}

std::unique_ptr<channel::ChannelEnd> create_controlvm(const std::string& guest, Locator& locator,
                                                      const ControlvmPlacement& placement,
                                                      channel::TransportHandler on_event) {
  const std::string name = "controlvm/" + guest;
  if (placement.command_host == placement.guest_host) {
    locator = std::string(kShm) + name;
    return channel::create_shared_end(name, channel::type_of(ChannelKind::controlvm).spec());
  }
  // The command partition creates the channel, so it takes the creating
  // (listening) role of a TCP channel, the guest's chipset the attaching one.
  channel::Placement p{placement.command_host, placement.guest_host, {placement.listen_host, 0}};
  auto end = channel::open_guest_end(p, name, channel::type_of(ChannelKind::controlvm).spec(), controlvm_producers(),
                                     std::move(on_event));
  const auto at = channel::listen_address(*end);
  if (!at) throw std::logic_error("a TCP controlvm channel without an address");
  locator = std::string(kTcp) + at->host + ":" + std::to_string(at->port) + "/" + name;
  return end;
}

std::unique_ptr<channel::ChannelEnd> attach_controlvm(const Locator& locator, const std::string& command_host,
                                                      channel::TransportHandler on_event) {
  const channel::Expect expect = channel::type_of(ChannelKind::controlvm).expect();
  if (locator.starts_with(kShm)) return channel::attach_shared_end(locator.substr(kShm.size()), expect);
  if (locator.starts_with(kTcp)) {
    const std::string rest = locator.substr(kTcp.size());
    const auto slash = rest.find('/');
    if (slash == std::string::npos) throw std::invalid_argument("bad controlvm locator '" + locator + "'");
    channel::Placement p{command_host, command_host + "~guest", {}};
    return channel::open_service_end(p, rest.substr(slash + 1), expect, controlvm_producers(),
                                     parse_tcp(rest.substr(0, slash)), std::move(on_event));
  }
  throw std::invalid_argument("bad controlvm locator '" + locator + "'");
}

}  // namespace visorlab::actors
