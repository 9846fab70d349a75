// Establishment of a TCP-backed channel's link (tcp_endpoint.hpp): INIT /
// INIT_COMPLETE, capabilities (CAP / CAP_RESP), then for a newcomer the
// server's image and RESUME, for a survivor RESUME both ways. These are the
// pieces both sides' handshakes are made of; TcpEndpoint::handshake_as_client
// and handshake_as_server (handshake.cpp) run them on a new socket, then the
// endpoint starts or resumes its session.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "channel/memory.hpp"
#include "channel/tcp/frame.hpp"
#include "channel/tcp/socket.hpp"

namespace visorlab::channel::tcp {

// Establishment failed or was refused; the text says why (what differed).
class HandshakeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What differs between the peer's capabilities and ours, as the refusal
// names it; empty if nothing. What the peer leaves out (a null type, size 0,
// no queues) is not compared.
std::string mismatch(const Capabilities& peer, const Capabilities& ours);

// One frame out, every byte within `timeout`.
void send_frame(Socket& s, const Frame& f, std::chrono::milliseconds timeout);
// The next frame off `s` (through `d`, which keeps what arrived after it),
// within `timeout`. A transport event, a close or the timeout is a
// HandshakeError naming `what` was awaited (or the peer's reason).
Frame expect_frame(Socket& s, Decoder& d, const char* what, std::chrono::milliseconds timeout);
// The channel's image, `image` (the region's mapping), as IMAGE chunks.
void send_image(Socket& s, const Region& region, std::span<const std::byte> image, std::chrono::milliseconds timeout);

}  // namespace visorlab::channel::tcp
