// The outgoing stream of one end of a TCP-backed channel, kept until the peer
// acknowledges applying it (tcp_endpoint.hpp): every frame sent after the
// image, numbered by byte from 0 at the image (the session's start). It holds
// [kept_from(), end()) — what the peer has not acknowledged — and
// [sent(), end()) of it is what the current link has not taken yet. Writes
// made while the link is down go here too; a re-attach re-sends from what the
// peer applied.
//
// Pure bookkeeping: no sockets, no locks, no threads. The endpoint guards it
// (with its send lock) and moves its bytes to the socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "channel/tcp/frame.hpp"

namespace visorlab::channel::tcp {

class ReplayLog {
 public:
  // Acknowledge the peer's stream at least every this many bytes applied (and
  // on every tick that saw some): what it keeps for a re-attach stays small.
  static constexpr std::uint64_t kAckEvery = 64 * 1024;
  // Drop acknowledged bytes from the front of the kept stream once this many
  // (or half of it) are acknowledged: the move that costs is amortised.
  static constexpr std::size_t kTrimAt = 64 * 1024;

  ReplayLog() = default;
  // `channel_size`: the channel's bytes, which folded ranges are clipped to;
  // `limit`: what is kept before fold_beyond_limit() folds
  // (LinkOptions::replay_limit).
  ReplayLog(std::uint64_t channel_size, std::size_t limit) : size_(channel_size), limit_(limit) {}

  // A new session (a new image): an empty stream numbered from 0, nothing of
  // the peer's stream acknowledged yet.
  void restart();

  // Appends a frame to the stream. Not while folded(): then only write()
  // records anything, and the current indices go on resume().
  void append(const Frame& frame);
  // Bytes written at `offset` of the channel: WRITE frames (in chunks below
  // kMaxPayload), or while folded, a byte range.
  void write(std::uint64_t offset, const std::byte* bytes, std::uint64_t length);
  // Tells the peer, with an ACK in the stream, that we applied `applied`
  // bytes of its stream: when `only_if_due`, once kAckEvery more was applied
  // since we last told it; otherwise whenever something new was. Never while
  // folded. True: an ACK went in.
  bool acknowledge(std::uint64_t applied, bool only_if_due);
  // How much of the peer's stream we last told it we applied.
  std::uint64_t told() const { return told_; }

  // Positions in the stream.
  std::uint64_t kept_from() const { return kept_from_; }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t end() const { return kept_from_ + bytes_.size(); }
  std::uint64_t unsent_bytes() const { return end() - sent_; }
  // What the current link has not taken yet, and taking `n` bytes of it.
  std::span<const std::byte> unsent() const;
  void mark_sent(std::uint64_t n);
  // The peer acknowledged applying `peer_acked` bytes: drops them (never
  // beyond what was sent) from the front, once enough of them (or all) are
  // acknowledged that moving the rest is cheap.
  void trim(std::uint64_t peer_acked);

  // What is kept: bytes of frames, whether they were folded into byte ranges
  // (offset → end, merged), and those ranges.
  std::size_t kept_bytes() const { return bytes_.size(); }
  bool folded() const { return folded_; }
  const std::map<std::uint64_t, std::uint64_t>& ranges() const { return ranges_; }
  // Too much kept (beyond the limit): the kept frames become the byte ranges
  // they wrote; on resume those go as they are then, followed by the current
  // indices. The peer ends up with the same bytes and indices, without the
  // history in between: bounded memory, same end state. Returns how many
  // bytes were folded (0: none, within the limit or folded already).
  std::size_t fold_beyond_limit();

  // What resume() did.
  struct Resumption {
    std::string error;  // not empty: cannot resume from there; the stream is unchanged
    // The stream was folded: it now holds this many byte ranges as the
    // channel has them, and the caller appends the current indices.
    bool rebuilt = false;
    std::size_t ranges = 0;
  };
  // The peer applied `peer_applied` bytes of this stream: it gets the rest, in
  // order, from there — everything written since, during an outage too. A
  // folded stream restarts at `peer_applied` with its byte ranges, read from
  // `channel` (the channel's bytes) as they are now. `told`: what our RESUME
  // told the peer we applied of its stream (recorded even when this fails:
  // the peer heard it).
  Resumption resume(std::uint64_t peer_applied, std::uint64_t told, std::span<const std::byte> channel);

 private:
  void fold();
  void mark_range(std::uint64_t offset, std::uint64_t length);

  std::uint64_t size_ = 0;
  std::size_t limit_ = 0;
  std::vector<std::byte> bytes_;  // the stream from kept_from_ on
  std::uint64_t kept_from_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t told_ = 0;  // the last ACK (or RESUME) value we sent
  bool folded_ = false;
  std::map<std::uint64_t, std::uint64_t> ranges_;  // folded: written since, offset → end
};

}  // namespace visorlab::channel::tcp
