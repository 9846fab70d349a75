// Opening a device's channel from either side, given what the topology says
// about placement: the guest end creates it (shared memory when the service
// partition is on the same host, a TCP listener otherwise) and names it with
// a Locator; the service end attaches by that Locator. Only this file knows
// which queue each side produces.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "actors/runtime/messages.hpp"
#include "channel/end/channel_end.hpp"
#include "channel/channel_types.hpp"

namespace visorlab::actors {

// A device's channel kind (vhba, vnic, keyboard, mouse) as given; throws
// std::invalid_argument for any other (a value off the wire is not trusted).
channel::ChannelKind device_kind(channel::ChannelKind kind);

struct GuestEnd {
  std::unique_ptr<channel::ChannelEnd> end;
  Locator locator;
};

GuestEnd open_device_guest_end(const ChannelOffer& offer, const std::string& guest_host,
                               channel::TransportHandler on_event = {});
std::unique_ptr<channel::ChannelEnd> open_device_service_end(const DeviceAttach& attach,
                                                             channel::TransportHandler on_event = {});

// The controlvm channel of a guest: the command partition creates it, the
// guest attaches. On one host: shared memory ("shm:NAME"). Across hosts
// (`command_host` != `guest_host`): TCP, the command partition listening on
// `listen_host` ("tcp:IP:PORT/NAME"), each end's peer host named for
// injected network cuts.
struct ControlvmPlacement {
  std::string command_host;
  std::string guest_host;
  std::string listen_host = "127.0.0.1";
};
std::unique_ptr<channel::ChannelEnd> create_controlvm(const std::string& guest, Locator& locator,
                                                      const ControlvmPlacement& placement = {},
                                                      channel::TransportHandler on_event = {});
// `command_host`: the peer host of a TCP controlvm (for cuts).
std::unique_ptr<channel::ChannelEnd> attach_controlvm(const Locator& locator, const std::string& command_host = "command",
                                                      channel::TransportHandler on_event = {});

}  // namespace visorlab::actors
