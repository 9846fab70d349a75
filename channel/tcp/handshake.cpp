// Establishment of a TCP-backed channel's link (handshake.hpp): the frame
// exchange, and each side's handshake as TcpEndpoint runs it on a new socket.
#include "channel/tcp/handshake.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "channel/tcp/tcp_endpoint.hpp"

namespace visorlab::channel::tcp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::uint64_t kMaxChannelBytes = std::uint64_t{1} << 30;

std::string describe(const QueueGeometry& q) {
  return std::to_string(q.max_slots) + " slots of " + std::to_string(q.signal_size) + " bytes at +" +
         std::to_string(q.sig_base_offset);
}

std::uint64_t new_session() {
  std::random_device rd;
  const std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
  return r ^ static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^ 1;
}

}  // namespace

std::string mismatch(const Capabilities& peer, const Capabilities& ours) {
  if (!peer.type.is_null() && peer.type != ours.type)
    return "channel type " + peer.type.str() + ", this channel is " + ours.type.str();
  if (peer.size != 0 && peer.size != ours.size)
    return "size " + std::to_string(peer.size) + ", this channel is " + std::to_string(ours.size);
  if (!peer.queues.empty()) {
    if (peer.queues.size() != ours.queues.size())
      return std::to_string(peer.queues.size()) + " queues, this channel has " + std::to_string(ours.queues.size());
    for (std::size_t i = 0; i < ours.queues.size(); ++i)
      if (!(peer.queues[i] == ours.queues[i]))
        return "queue " + std::to_string(i) + " geometry " + describe(peer.queues[i]) + ", this channel has " +
               describe(ours.queues[i]);
    if (peer.ch_space_offset != ours.ch_space_offset)
      return "ch_space_offset " + std::to_string(peer.ch_space_offset) + ", this channel has " +
             std::to_string(ours.ch_space_offset);
  }
  return {};
}

void send_frame(Socket& s, const Frame& f, milliseconds timeout) {
  std::vector<std::byte> out;
  encode(f, out);
  s.send_all(out, timeout);
}

Frame expect_frame(Socket& s, Decoder& d, const char* what, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (auto f = d.next()) {
      if (auto* ev = std::get_if<TransportEvent>(&*f)) throw HandshakeError(ev->reason);
      return *f;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw HandshakeError(std::string("timed out waiting for ") + what);
    auto room = d.prepare();
    const long n = s.receive(room, left);
    if (n == 0) throw HandshakeError(std::string("peer closed the connection before ") + what);
    if (n > 0) d.commit(static_cast<std::size_t>(n));
  }
}

// The image, in chunks (the endpoint holds send_mutex_: nothing is written
// meanwhile). Pages that are all zero are left out: a newcomer's image starts
// zeroed. Most of a channel is its data area,
// and drivers reuse few of its buffers (a free list is LIFO), so a restarted
// service partition gets megabytes less to wait for.
void send_image(Socket& s, const Region& region, std::span<const std::byte> image, milliseconds timeout) {
  constexpr std::uint64_t kPage = 4096;
  static const std::array<std::byte, kPage> kZeros{};
  std::vector<std::byte> out;
  const std::byte* base = image.data();
  const std::uint64_t size = image.size();
  auto zero = [&](std::uint64_t at, std::uint64_t limit) {
    const std::uint64_t n = std::min<std::uint64_t>(kPage, limit - at);
    return std::memcmp(base + at, kZeros.data(), n) == 0;
  };
  // Only pages ever written, and of those the non-zero ones. Scanning all of a
  // 9 MiB vhba image took ~10 ms per channel while 16 guests' channels were
  // sent at once to a restarted IO partition.
  for (auto [at, data_end] = region.next_data(0); at < size; std::tie(at, data_end) = region.next_data(at)) {
    at -= at % kPage;
    data_end = std::min(data_end, size);  // the region goes on past the image (the doorbell)
    while (at < data_end) {
      if (zero(at, data_end)) {
        at += kPage;
        continue;
      }
      std::uint64_t end = at;  // a run of non-zero pages, at most a chunk
      while (end < data_end && end - at < kWriteChunk && !zero(end, data_end)) end += kPage;
      end = std::min<std::uint64_t>(end, data_end);
      encode_write(at, base + at, end - at, out, true);
      s.send_all(out, timeout);
      out.clear();
      at = end;
    }
  }
}

// ---- TcpEndpoint's side of it --------------------------------------------------

void TcpEndpoint::handshake_as_client(Socket& s, const Expect* expect, bool has_image, milliseconds step) {
  Decoder d;
  send_frame(s, Init{false, kMajorVersion, kMinorVersion, side_, has_image, false, name_, this_process()}, step);
  const Frame f = expect_frame(s, d, "INIT_COMPLETE", step);
  const auto* init = std::get_if<Init>(&f);
  if (!init || !init->complete) throw HandshakeError("expected INIT_COMPLETE");
  peer_process_ = init->process;
  auto refuse = [&](const std::string& why) {
    send_frame(s, TransportEvent{EventCode::partner_failed, why}, step);
    throw HandshakeError(why);
  };
  if (init->major != kMajorVersion)
    refuse("server speaks major version " + std::to_string(init->major) + ", this side " + std::to_string(kMajorVersion));
  if (has_image && init->fresh) refuse("the server's channel " + name_ + " is new: this side's image belongs to another");

  Capabilities ours;
  if (has_image) {
    ours = capabilities();
  } else if (expect) {
    ours.type = expect->type;
  }
  send_frame(s, ours, step);
  const Frame r = expect_frame(s, d, "CAP_RESP", step);
  const auto* theirs = std::get_if<Capabilities>(&r);
  if (!theirs || !theirs->response) throw HandshakeError("expected CAP_RESP");
  if (theirs->status != 0) throw HandshakeError("capabilities refused with status " + std::to_string(theirs->status));
  if (const auto why = mismatch(*theirs, ours); has_image && !why.empty()) refuse(why);
  if (expect && !expect->type.is_null() && theirs->type != expect->type)
    refuse("channel type " + theirs->type.str() + ", expected " + expect->type.str());
  if (theirs->size < sizeof(ChannelHeader) || theirs->size > kMaxChannelBytes)
    refuse("channel size " + std::to_string(theirs->size) + " outside [128, 1 GiB]");

  if (!has_image) {
    // First attach (or a restarted process): the server's image, then validate
    // it exactly as a shared-memory attach would.
    Region region = Region::anonymous(size_with_doorbell(theirs->size));
    Mapping view = region.map();
    for (;;) {
      const Frame img = expect_frame(s, d, "the channel image", options_.handshake_timeout);
      if (std::holds_alternative<ImageDone>(img)) {
        if (std::get<ImageDone>(img).size != theirs->size) throw HandshakeError("image size differs from capabilities");
        break;
      }
      const auto* w = std::get_if<Write>(&img);
      if (!w || !w->image) throw HandshakeError("expected an IMAGE chunk");
      if (w->offset > theirs->size || w->bytes.size() > theirs->size - w->offset)
        refuse("image chunk at " + std::to_string(w->offset) + " outside the channel");
      std::memcpy(view.bytes().data() + w->offset, w->bytes.data(), w->bytes.size());
    }
    try {
      Channel channel = Channel::attach(region.map(), *expect);
      adopt(std::move(region), std::move(channel));
    } catch (const std::exception& e) {
      refuse(std::string("channel image refused: ") + e.what());
    }
  }
  // RESUME: the session the server's image belongs to, and how much of our
  // stream it applied (a newcomer's stream starts now, at 0).
  const Frame rf = expect_frame(s, d, "RESUME", step);
  const auto* resume = std::get_if<Resume>(&rf);
  if (!resume) throw HandshakeError("expected RESUME");
  if (has_image) {
    if (resume->session != session_)
      refuse("the server's channel " + name_ + " is another session: this side's image belongs to another");
    send_frame(s, Resume{session_, rx_applied_.load()}, step);
  }
  std::string why;
  {
    std::lock_guard rx(rx_mutex_);
    std::lock_guard tx(send_mutex_);
    if (has_image) {
      why = resume_locked(resume->applied);
    } else {
      session_ = resume->session;
      start_session_locked();
      mark_tails_shipped_locked();  // nothing consumed here yet: the image's tails
    }
    if (why.empty()) go_live_locked(std::move(s), std::move(d));
  }
  if (!why.empty()) refuse(why);
}

bool TcpEndpoint::handshake_as_server(Socket& s) {
  const milliseconds step = options_.handshake_timeout;
  Decoder d;
  try {
    // INIT comes right after connect: a silent socket must not hold the
    // listener (and every peer queued behind it) for the whole handshake.
    const Frame f = expect_frame(s, d, "INIT", std::min(step, milliseconds(500)));
    const auto* init = std::get_if<Init>(&f);
    auto refuse = [&](const std::string& why) {
      spdlog::warn("channel {}: refused a peer: {}", name_, why);
      send_frame(s, TransportEvent{EventCode::partner_failed, why}, step);
      return false;
    };
    if (!init || init->complete) return refuse("expected INIT");
    if (init->major != kMajorVersion)
      return refuse("client speaks major version " + std::to_string(init->major) + ", this server " +
                    std::to_string(kMajorVersion));
    if (init->name != name_) return refuse("no channel named '" + init->name + "' here (this is '" + name_ + "')");
    if (init->side == side_) return refuse("both ends claim the same side of channel " + name_);
    send_frame(s, Init{true, kMajorVersion, kMinorVersion, side_, true, fresh_, name_, this_process()}, step);
    peer_process_ = init->process;

    const Frame c = expect_frame(s, d, "CAP", step);
    const auto* caps = std::get_if<Capabilities>(&c);
    if (!caps || caps->response) return refuse("expected CAP");
    Capabilities ours = capabilities();
    if (const auto why = mismatch(*caps, ours); !why.empty()) return refuse(why);
    ours.response = true;
    send_frame(s, ours, step);

    if (!init->has_image) {
      // A newcomer (first attach, or a restarted process): a new session, the
      // full image, then the stream from 0.
      // Writers wait on send_mutex_ throughout, so whatever the stream held
      // is in the image, and whatever is written later goes in the new stream.
      // The tails as the image has them (at least) count as shipped.
      std::lock_guard rx(rx_mutex_);
      std::lock_guard tx(send_mutex_);
      std::vector<std::uint32_t> tails;
      for (const auto& a : areas_) tails.push_back(tail_of(a));
      const std::uint64_t session = new_session();
      send_image(s, *region_, apply_view_.bytes().first(size_), step);
      std::vector<std::byte> done;
      encode(ImageDone{size_}, done);
      encode(Resume{session, 0}, done);
      s.send_all(done, step);
      session_ = session;  // only now: a failed newcomer leaves a survivor's session intact
      start_session_locked();
      for (std::size_t q = 0; q < areas_.size(); ++q) areas_[q].shipped_tail = tails[q];
      fresh_ = false;
      go_live_locked(std::move(s), std::move(d));
    } else {
      // A survivor: each side tells what it applied of the other's stream,
      // then re-sends the rest of its own. Nothing drains while we are not
      // connected, so rx_applied_ holds still; waiting needs no lock.
      send_frame(s, Resume{session_, rx_applied_.load()}, step);
      const Frame r = expect_frame(s, d, "RESUME", step);
      const auto* resume = std::get_if<Resume>(&r);
      if (!resume) return refuse("expected RESUME");
      if (resume->session != session_) return refuse("the client's image of " + name_ + " belongs to another session");
      std::string why;
      {
        std::lock_guard rx(rx_mutex_);
        std::lock_guard tx(send_mutex_);
        why = resume_locked(resume->applied);
        if (why.empty()) go_live_locked(std::move(s), std::move(d));
      }
      if (!why.empty()) return refuse(why);
    }
  } catch (const std::exception& e) {
    if (std::uint64_t left_out = 0; handshake_warnings_.allow(left_out))
      spdlog::warn("channel {}: handshake failed: {}{}", name_, e.what(),
                   left_out ? " (" + std::to_string(left_out) + " more since the last one said)" : "");
    return false;
  }
  announce_connected();
  return true;
}

}  // namespace visorlab::channel::tcp
