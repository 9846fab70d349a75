// One end of a channel, wherever its peer is. Placement picks the backing —
// the same host gets POSIX shared memory, different hosts a TCP-backed copy —
// and the code above sees only a Channel.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "channel/channel.hpp"
#include "channel/tcp/tcp_endpoint.hpp"

namespace visorlab::channel {

class ChannelEnd {
 public:
  virtual ~ChannelEnd() = default;
  virtual Channel& channel() = 0;
  // "shm" or "tcp": for logs and metrics, never for behaviour.
  virtual std::string_view backing() const = 0;
  // After a transport event (partner failed: a cut network, a restarted
  // link), brings the link back without the caller knowing the backing: the
  // service end attaches again as a survivor — waiting out a cut until it heals
  // or its lease runs out — and each side re-sends what the other had not
  // applied (data-area bytes included); the guest end waits for its peer to
  // come back. Each handshake step of a try waits for a server that does not
  // answer at most max(timeout, 5 heartbeat intervals), not the handshake
  // timeout. True once connected (at once if the link is up); false at the
  // deadline or on a refusal (logged), and always for shared memory, which
  // has no link to lose. Not from the event handler.
  // False while a TCP link is down (a transport event came and no re-attach
  // since); shared memory has no link to lose.
  virtual bool link_up() const { return true; }
  virtual bool reconnect(std::chrono::milliseconds timeout) {
    (void)timeout;
    return false;
  }
};

struct Placement {
  std::string guest_host;    // where the guest (driver) end lives
  std::string service_host;  // where the service partition end lives
  // With different hosts: where the guest end listens ("0.0.0.0:0" is not
  // allowed by default; pass the guest host's address, port 0 for any).
  tcp::Address guest_listen{"127.0.0.1", 0};
  bool same_host() const { return guest_host == service_host; }
};

using TransportHandler = tcp::TcpEndpoint::EventHandler;

// The guest end: creates and formats the channel. Over TCP, `address()` of the
// returned end's TcpEndpoint tells the service end where to attach. Over TCP
// each end registers its peer's host (service_host for the guest end,
// guest_host for the service end) with tcp::LinkFaults, so an injected cut
// between the two hosts cuts this channel.
std::unique_ptr<ChannelEnd> open_guest_end(const Placement& placement, const std::string& name,
                                           const ChannelSpec& spec, tcp::QueueProducers producers,
                                           TransportHandler on_event = {});
// The service end: attaches to the guest's channel (validating it) — by
// shared-memory name, or over TCP at `guest_at`.
std::unique_ptr<ChannelEnd> open_service_end(const Placement& placement, const std::string& name,
                                             const Expect& expect, tcp::QueueProducers producers,
                                             const tcp::Address& guest_at = {}, TransportHandler on_event = {});

// Shared-memory ends by name, whichever side creates: `create_shared_end`
// formats the channel (and removes the name when closed), `attach_shared_end`
// validates it as `expect` says.
std::unique_ptr<ChannelEnd> create_shared_end(const std::string& name, const ChannelSpec& spec);
std::unique_ptr<ChannelEnd> attach_shared_end(const std::string& name, const Expect& expect);

// The address a TCP guest end listens on (nullopt for shared memory).
std::optional<tcp::Address> listen_address(ChannelEnd& end);

// The POSIX shared memory name of a channel ("g0/vhba0" → "visorlab-g0_vhba0").
std::string shm_name(std::string_view channel_name);

}  // namespace visorlab::channel
