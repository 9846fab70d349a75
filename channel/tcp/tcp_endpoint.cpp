#include "channel/tcp/tcp_endpoint.hpp"

#include <spdlog/spdlog.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>
#include <thread>
#include <tuple>

namespace visorlab::channel::tcp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::uint64_t kMaxChannelBytes = std::uint64_t{1} << 30;
// Frames queued while the peer host is cut, beyond which the link is dropped
// at once (a re-attach resumes from what the peer applied): a real cut would
// block the sender long before.
constexpr std::size_t kMaxQueuedWhileCut = 32u << 20;
// Unsent bytes beyond which a writer waits for the socket to take some (it
// takes in the peer's frames meanwhile); below it the link thread sends the
// rest when there is room, and the writer goes on.
constexpr std::size_t kMaxUnsent = 16u << 20;
constexpr std::uint64_t kHeadAt = offsetof(SignalQueueHeader, head);
constexpr std::uint64_t kTailAt = offsetof(SignalQueueHeader, tail);
constexpr std::uint64_t kSentAt = offsetof(SignalQueueHeader, num_sent);
constexpr std::uint64_t kReceivedAt = offsetof(SignalQueueHeader, num_received);

struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool overlaps(std::uint64_t a, std::uint64_t a_end, std::uint64_t b, std::uint64_t b_end) {
  return a < b_end && b < a_end;
}

std::string describe(const QueueGeometry& q) {
  return std::to_string(q.max_slots) + " slots of " + std::to_string(q.signal_size) + " bytes at +" +
         std::to_string(q.sig_base_offset);
}

// What differs between the peer's capabilities and ours; empty if nothing.
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

std::uint64_t new_session() {
  std::random_device rd;
  const std::uint64_t r = (std::uint64_t{rd()} << 32) ^ rd();
  return r ^ static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^ 1;
}

}  // namespace

TcpEndpoint::TcpEndpoint(Side side, std::string name, QueueProducers producers, LinkOptions options,
                         EventHandler on_event)
    : side_(side), name_(std::move(name)), producers_(std::move(producers)), options_(options),
      on_event_(std::move(on_event)) {
  if (name_.size() > kMaxName) throw std::invalid_argument("channel name longer than 255 bytes");
  fault_ = LinkFaults::instance().register_endpoint(this, options_.peer_host);
  // The logger exists before any link thread may log (its lazy creation on
  // two link threads at once is a race ThreadSanitizer reports).
  (void)spdlog::default_logger_raw();
}

TcpEndpoint::~TcpEndpoint() {
  stop_ = true;
  const bool cut = link_cut();
  {
    std::lock_guard lock(send_mutex_);
    if (connected_ && !cut) {
      // A clean close: the peer hears deregistered, not a failure.
      log_.append(TransportEvent{EventCode::deregistered, "channel " + name_ + " closed"});
      flush_all_locked(options_.detect_timeout);
      ::shutdown(peer_.fd(), SHUT_WR);
    }
  }
  if (thread_.joinable()) thread_.join();
  if (channel_) channel_->set_replicator(nullptr);
  // Behind a cut nothing reaches the peer, not even our close: it sees a
  // silent peer. The socket waits in the registry until the cut heals.
  if (cut) LinkFaults::instance().park(options_.peer_host, std::move(peer_));
}

std::chrono::milliseconds TcpEndpoint::tick() const {
  return std::max(options_.heartbeat_interval, milliseconds(1));
}

void TcpEndpoint::wait_out_cut(Clock::time_point deadline, const std::string& what) {
  while (link_cut()) {
    const auto now = Clock::now();
    if (now >= deadline) throw HandshakeError(what + ": the link to host " + options_.peer_host + " is cut");
    std::this_thread::sleep_for(std::min<Clock::duration>(tick(), deadline - now));
  }
}

void TcpEndpoint::adopt(Region region, Channel channel) {
  apply_view_ = region.map();
  region_.emplace(std::move(region));
  channel_ = std::make_unique<Channel>(std::move(channel));
  size_ = channel_->size();
  log_ = ReplayLog(size_, options_.replay_limit);
  const ChannelHeader h = channel_->header();
  if (producers_.size() != channel_->queue_count())
    throw std::invalid_argument("queue producers given for " + std::to_string(producers_.size()) +
                                " queues, the channel has " + std::to_string(channel_->queue_count()));
  if (channel_->queue_count() > kMaxQueues)
    throw std::invalid_argument("a TCP-backed channel carries at most " + std::to_string(kMaxQueues) + " queues");
  caps_.type = h.chtype;
  caps_.size = size_;
  caps_.ch_space_offset = h.ch_space_offset;
  for (std::uint32_t q = 0; q < channel_->queue_count(); ++q) {
    const SignalQueueHeader qh = channel_->queue_header(q);
    caps_.queues.push_back({qh.signal_size, qh.max_slots, qh.sig_base_offset});
    const std::uint64_t at = h.ch_space_offset + q * sizeof(SignalQueueHeader);
    const std::uint64_t slots = at + qh.sig_base_offset;
    areas_.push_back({at, slots, slots + std::uint64_t{qh.max_slots} * qh.signal_size, qh.max_slots, producers_[q]});
  }
  channel_->set_replicator(this);
}

Capabilities TcpEndpoint::capabilities() const { return caps_; }

// ---- establishment ---------------------------------------------------------

std::unique_ptr<TcpEndpoint> TcpEndpoint::serve(const Address& at, const std::string& name, const ChannelSpec& spec,
                                                 Side side, QueueProducers producers, LinkOptions options,
                                                 EventHandler on_event) {
  std::unique_ptr<TcpEndpoint> e(new TcpEndpoint(side, name, std::move(producers), options, std::move(on_event)));
  Region region = Region::anonymous(channel_size(spec));
  Channel channel = Channel::format(region.map(), spec, true);  // a new region is all zero
  e->adopt(std::move(region), std::move(channel));
  e->listener_ = listen_on(at);
  e->address_ = local_address(e->listener_);
  e->thread_ = std::thread([p = e.get()] { p->link_loop(); });
  return e;
}

std::unique_ptr<TcpEndpoint> TcpEndpoint::attach(const Address& to, const std::string& name, const Expect& expect,
                                                  Side side, QueueProducers producers, LinkOptions options,
                                                  EventHandler on_event) {
  std::unique_ptr<TcpEndpoint> e(new TcpEndpoint(side, name, std::move(producers), options, std::move(on_event)));
  // A cut cable: the connection cannot be made (as a connect would time out).
  e->wait_out_cut(Clock::now() + options.handshake_timeout, "attach to " + to.str());
  Socket s = connect_to(to, options.handshake_timeout);
  e->handshake_as_client(s, &expect, false, options.handshake_timeout);
  e->announce_connected();
  e->thread_ = std::thread([p = e.get()] { p->link_loop(); });
  return e;
}

void TcpEndpoint::reattach(const Address& to, std::chrono::milliseconds timeout) {
  if (listener_) throw std::logic_error("reattach is for the attaching side");
  if (connected_) return;  // the link is up: nothing to do (joining its thread would wait forever)
  if (thread_.joinable()) thread_.join();  // the old link ended with its transport event
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (link_cut()) {  // nothing gets through until the cut heals (or its lease runs out)
      if (Clock::now() + tick() >= deadline)
        throw HandshakeError("re-attach to " + to.str() + " failed: the link to host " + options_.peer_host + " is cut");
      std::this_thread::sleep_for(tick());
      continue;
    }
    try {
      // An attempt is bounded by what is left of `timeout` (but gives a busy
      // peer a few ticks to answer): a server that is not answering — still
      // cut on its side, say — must not hold the caller, often a poll loop
      // serving other channels, for the whole handshake timeout.
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      const auto step = std::clamp(left, 5 * tick(), std::max(options_.handshake_timeout, 5 * tick()));
      Socket s = connect_to(to, step);
      handshake_as_client(s, nullptr, true, step);
      announce_connected();
      break;
    } catch (const std::exception& e) {
      // The server may not have noticed the old link's death yet, or may still
      // be restarting: retry until the deadline.
      if (Clock::now() + milliseconds(20) >= deadline)
        throw HandshakeError("re-attach to " + to.str() + " failed: " + e.what());
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  thread_ = std::thread([this] { link_loop(); });
}

void TcpEndpoint::send_frame(Socket& s, const Frame& f, std::optional<milliseconds> timeout) {
  std::vector<std::byte> out;
  encode(f, out);
  s.send_all(out, timeout.value_or(options_.handshake_timeout));
}

Frame TcpEndpoint::expect_frame(Socket& s, Decoder& d, const char* what, std::optional<milliseconds> timeout) {
  const auto deadline = Clock::now() + timeout.value_or(options_.handshake_timeout);
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

void TcpEndpoint::handshake_as_client(Socket& s, const Expect* expect, bool has_image, milliseconds step) {
  Decoder d;
  send_frame(s, Init{false, kMajorVersion, kMinorVersion, side_, has_image, false, name_}, step);
  const Frame f = expect_frame(s, d, "INIT_COMPLETE", step);
  const auto* init = std::get_if<Init>(&f);
  if (!init || !init->complete) throw HandshakeError("expected INIT_COMPLETE");
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
    Region region = Region::anonymous(theirs->size);
    Mapping view = region.map();
    for (;;) {
      const Frame img = expect_frame(s, d, "the channel image");
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

// Both locks held: a new image, a new stream, numbered from 0 on both sides.
// (The caller says which tails the image carried: ship_tails_locked() sends
// any that moved since.)
void TcpEndpoint::start_session_locked() {
  log_.restart();
  peer_acked_ = 0;
  rx_applied_ = 0;
}

// Both locks held. The peer applied `peer_applied` bytes of our stream: it
// gets the rest, in order, from there — everything written since, during the
// outage too. A folded stream (replay_limit) goes as the byte ranges written,
// as they are now, then the current indices.
std::string TcpEndpoint::resume_locked(std::uint64_t peer_applied) {
  // RESUME told the peer what we applied of its stream.
  const auto r = log_.resume(peer_applied, rx_applied_.load(), apply_view_.bytes());
  if (!r.error.empty()) return "cannot resume channel " + name_ + ": " + r.error;
  if (!r.rebuilt) {
    if (peer_acked_.load() < peer_applied) peer_acked_ = peer_applied;
    return {};
  }
  peer_acked_ = peer_applied;
  for (auto& a : areas_) {  // the current indices, after the byte ranges
    if (a.producer == side_) {
      log_.append(index_at(a.header + kSentAt, a.header + kHeadAt));
    } else {
      const Index ix = index_at(a.header + kReceivedAt, a.header + kTailAt);
      log_.append(ix);
      a.shipped_tail = ix.index;
    }
  }
  spdlog::info("channel {}: resuming with {} byte ranges written while the link was down", name_, r.ranges);
  return {};
}

// Both locks held: the link is up on `s`; what waits in the stream goes out.
void TcpEndpoint::go_live_locked(Socket s, Decoder d) {
  decoder_ = std::move(d);  // frames the peer sent after establishment stay queued
  stashed_.reset();
  last_rx_ns_ = Clock::now().time_since_epoch().count();
  peer_ = std::move(s);
  last_tx_ = Clock::now();
  stall_from_ = last_tx_;
  stalled_ = false;
  broken_ = false;
  drop_requested_ = false;
  connected_ = true;
  ship_tails_locked();  // a tail that moved while the link was down
  flush_locked(false);  // both locks held: the link thread sends the rest
}

void TcpEndpoint::announce_connected() {
  { std::lock_guard lock(state_mutex_); }  // a waiter is either asleep or will see connected_
  state_changed_.notify_all();
}

bool TcpEndpoint::handshake_as_server(Socket& s) {
  Decoder d;
  try {
    // INIT comes right after connect: a silent socket must not hold the
    // listener (and every peer queued behind it) for the whole handshake.
    const Frame f = expect_frame(s, d, "INIT", std::min(options_.handshake_timeout, milliseconds(500)));
    const auto* init = std::get_if<Init>(&f);
    auto refuse = [&](const std::string& why) {
      spdlog::warn("channel {}: refused a peer: {}", name_, why);
      send_frame(s, TransportEvent{EventCode::partner_failed, why});
      return false;
    };
    if (!init || init->complete) return refuse("expected INIT");
    if (init->major != kMajorVersion)
      return refuse("client speaks major version " + std::to_string(init->major) + ", this server " +
                    std::to_string(kMajorVersion));
    if (init->name != name_) return refuse("no channel named '" + init->name + "' here (this is '" + name_ + "')");
    if (init->side == side_) return refuse("both ends claim the same side of channel " + name_);
    send_frame(s, Init{true, kMajorVersion, kMinorVersion, side_, true, fresh_, name_});

    const Frame c = expect_frame(s, d, "CAP");
    const auto* caps = std::get_if<Capabilities>(&c);
    if (!caps || caps->response) return refuse("expected CAP");
    Capabilities ours = capabilities();
    if (const auto why = mismatch(*caps, ours); !why.empty()) return refuse(why);
    ours.response = true;
    send_frame(s, ours);

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
      send_image(s);
      std::vector<std::byte> done;
      encode(ImageDone{size_}, done);
      encode(Resume{session, 0}, done);
      s.send_all(done, options_.handshake_timeout);
      session_ = session;  // only now: a failed newcomer leaves a survivor's session intact
      start_session_locked();
      for (std::size_t q = 0; q < areas_.size(); ++q) areas_[q].shipped_tail = tails[q];
      fresh_ = false;
      go_live_locked(std::move(s), std::move(d));
    } else {
      // A survivor: each side tells what it applied of the other's stream,
      // then re-sends the rest of its own. Nothing drains while we are not
      // connected, so rx_applied_ holds still; waiting needs no lock.
      send_frame(s, Resume{session_, rx_applied_.load()});
      const Frame r = expect_frame(s, d, "RESUME");
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
    spdlog::warn("channel {}: handshake failed: {}", name_, e.what());
    return false;
  }
  announce_connected();
  return true;
}

// The image, in chunks (send_mutex_ held). Pages that are all zero are left
// out: a newcomer's image starts zeroed. Most of a channel is its data area,
// and drivers reuse few of its buffers (a free list is LIFO), so a restarted
// service partition gets megabytes less to wait for.
void TcpEndpoint::send_image(Socket& s) {
  constexpr std::uint64_t kPage = 4096;
  static const std::array<std::byte, kPage> kZeros{};
  std::vector<std::byte> out;
  const std::byte* base = apply_view_.bytes().data();
  auto zero = [&](std::uint64_t at, std::uint64_t limit) {
    const std::uint64_t n = std::min<std::uint64_t>(kPage, limit - at);
    return std::memcmp(base + at, kZeros.data(), n) == 0;
  };
  // Only pages ever written, and of those the non-zero ones. Scanning all of a
  // 9 MiB vhba image took ~10 ms per channel while 16 guests' channels were
  // sent at once to a restarted IO partition.
  for (auto [at, data_end] = region_->next_data(0); at < size_; std::tie(at, data_end) = region_->next_data(at)) {
    at -= at % kPage;
    while (at < data_end) {
      if (zero(at, data_end)) {
        at += kPage;
        continue;
      }
      std::uint64_t end = at;  // a run of non-zero pages, at most a chunk
      while (end < data_end && end - at < kWriteChunk && !zero(end, data_end)) end += kPage;
      end = std::min<std::uint64_t>(end, data_end);
      encode_write(at, base + at, end - at, out, true);
      s.send_all(out, options_.handshake_timeout);
      out.clear();
      at = end;
    }
  }
}

bool TcpEndpoint::wait_connected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_mutex_);
  return state_changed_.wait_for(lock, timeout, [&] { return connected_.load(); });
}

// ---- steady state ------------------------------------------------------------

void TcpEndpoint::link_loop() {
  // The link thread carries the heartbeat. It sleeps most of the time and
  // must run as soon as it wakes even when the partitions' pollers keep every
  // core busy, or a loaded host looks dead to its peers — so it runs
  // real-time, as cluster heartbeat daemons do (corosync: SCHED_RR). Its work
  // per wake-up is bounded and the locks it shares inherit its priority.
  // Without the privilege it falls back to a higher CFS weight.
  if (options_.link_rt_priority > 0) {
    sched_param p{};
    p.sched_priority = options_.link_rt_priority;
    if (pthread_setschedparam(pthread_self(), SCHED_RR, &p) != 0)
      (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), -10);
  }
  while (!stop_) {
    if (!connected_) {
      if (!listener_) return;  // client: reattach() starts a new link
      if (link_cut()) {  // nobody gets through a cut: connections wait in the backlog
        std::this_thread::sleep_for(tick());
        continue;
      }
      Socket s = accept_from(listener_, options_.heartbeat_interval);
      if (s) handshake_as_server(s);
      continue;
    }
    pump();
    if (listener_ && connected_ && !link_cut()) {
      // One live peer per channel: a second attach is refused, not adopted.
      Socket extra = accept_from(listener_, milliseconds(0));
      if (extra) {
        std::vector<std::byte> out;
        encode(TransportEvent{EventCode::partner_failed, "channel " + name_ + " already has a live peer"}, out);
        try {
          extra.send_all(out, milliseconds(100));
        } catch (const std::exception&) {
        }
      }
    }
  }
}

// The link thread's tick: it sleeps until the peer hangs up or a heartbeat
// interval passes — incoming data does not wake it, the waiting side pulls
// that — then takes in what nobody pulled, checks liveness, sends what waits,
// the acknowledgement (or a heartbeat) and the tails not yet shipped. While a
// writer left bytes unsent it also wakes when the socket has room, and on
// incoming data: a peer pushing a backlog of its own may be waiting for us to
// read, and our writer is not pulling.
void TcpEndpoint::pump() {
  if (link_cut()) {
    pump_cut();
    return;
  }
  const bool backlog = want_out_.load();
  pollfd p{peer_.fd(), static_cast<short>(POLLRDHUP | (backlog ? POLLOUT | POLLIN : 0)), 0};
  ::poll(&p, 1, static_cast<int>(options_.heartbeat_interval.count()));
  Rx result = Rx::ok;
  std::optional<Event> why;
  {
    // Never wait for the receive lock: whoever holds it is receiving, and a
    // consumer spinning on pull() would starve us (std::mutex is not fair) —
    // no heartbeats, and the peer would declare us dead.
    std::unique_lock rx(rx_mutex_, std::try_to_lock);
    if (rx) {
      result = drain_locked();
      why = stashed_;
    }
  }
  if (result == Rx::closed) {
    lose_peer(EventCode::partner_failed, "connection closed without deregistering");
    return;
  }
  if (result == Rx::failed) {
    lose_peer(why ? why->code : EventCode::partner_failed, why ? why->reason : "link failed");
    return;
  }
  const auto now = Clock::now();
  auto silent = now - Clock::time_point(Clock::duration(last_rx_ns_.load()));
  if (silent > options_.detect_timeout && !link_cut()) {
    // Bytes waiting unread mean the peer did speak; we were just slow to look.
    // (Not behind a cut: what waits there never arrived.)
    pollfd readable{peer_.fd(), POLLIN, 0};
    if (::poll(&readable, 1, 0) == 1 && (readable.revents & POLLIN)) {
      last_rx_ns_ = now.time_since_epoch().count();
      silent = Clock::duration::zero();
    }
  }
  if (silent > options_.detect_timeout) {
    lose_peer(EventCode::partner_failed,
              "no heartbeat for " + std::to_string(std::chrono::duration_cast<milliseconds>(silent).count()) + " ms");
    return;
  }
  std::unique_lock tx(send_mutex_);
  if (!connected_) return;
  if (drop_requested_) {
    const std::string why = broken_reason_;
    tx.unlock();
    lose_peer(EventCode::partner_failed, why);
    return;
  }
  ship_tails_locked();
  // An acknowledgement doubles as the heartbeat; a heartbeat when there is
  // nothing new to acknowledge and nothing went out for an interval.
  if (!ack_locked(false) && now - last_tx_ >= options_.heartbeat_interval) log_.append(Heartbeat{});
  flush_locked(false);  // the link thread never waits: the rest goes when there is room
  if (stalled_ && !broken_ && Clock::now() - stall_from_ > options_.detect_timeout) {
    // The peer has taken nothing for the whole detection bound.
    const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - stall_from_).count();
    tx.unlock();
    lose_peer(EventCode::partner_failed, "send: peer took nothing for " + std::to_string(waited) + " ms");
  }
}

// The link thread's tick while the peer host is cut: nothing in, nothing out,
// not even a look at the socket (a hang-up must not show through either).
// Only the silence counts, as with a pulled cable: past the detection bound
// the link is dropped with partner failed.
void TcpEndpoint::pump_cut() {
  std::optional<Event> why;
  {
    // A failure taken in before the cut (a puller found it) still counts.
    std::unique_lock rx(rx_mutex_, std::try_to_lock);
    if (rx) why = stashed_;
  }
  if (why) {
    lose_peer(why->code, why->reason);
    return;
  }
  const auto last_rx = Clock::time_point(Clock::duration(last_rx_ns_.load()));
  // Wake at the next tick, or just after the peer's silence crosses the bound.
  std::this_thread::sleep_until(
      std::min<Clock::time_point>(Clock::now() + tick(), last_rx + options_.detect_timeout + std::chrono::microseconds(200)));
  const auto silent = Clock::now() - Clock::time_point(Clock::duration(last_rx_ns_.load()));
  if (silent > options_.detect_timeout) {
    lose_peer(EventCode::partner_failed,
              "no heartbeat for " + std::to_string(std::chrono::duration_cast<milliseconds>(silent).count()) + " ms");
    return;
  }
  std::unique_lock tx(send_mutex_);
  stall_from_ = Clock::now();  // a cut is not the peer being slow to take what we send
  if (connected_ && drop_requested_) {
    const std::string why = broken_reason_;
    tx.unlock();
    lose_peer(EventCode::partner_failed, why);
  }
}

void TcpEndpoint::pull() noexcept {
  if (!connected_) return;
  std::unique_lock rx(rx_mutex_, std::try_to_lock);
  if (rx) drain_locked();  // a failure is stashed for the link thread to raise
}

TcpEndpoint::Rx TcpEndpoint::drain_locked() {
  if (!connected_ || !peer_) return Rx::ok;
  if (stashed_) return Rx::failed;
  if (link_cut()) return Rx::ok;  // nothing arrives through a cut; what waits in the socket stays there
  auto fail = [&](EventCode code, std::string reason) {
    spdlog::warn("channel {}: dropping the link: {}", name_, reason);
    stashed_ = Event{code, std::move(reason)};
    ::shutdown(peer_.fd(), SHUT_RDWR);
    return Rx::failed;
  };
  // Applies every whole frame the decoder holds, counting what was applied
  // of the peer's stream (acknowledged later: what the peer keeps for us).
  auto apply_buffered = [&]() -> std::optional<Rx> {
    try {
      std::uint64_t applied = rx_applied_.load(std::memory_order_relaxed);
      for (;;) {
        const std::size_t before = decoder_.buffered();
        auto f = decoder_.next();
        if (!f) break;
        if (const auto* ev = std::get_if<TransportEvent>(&*f)) {
          rx_applied_.store(applied, std::memory_order_relaxed);
          stashed_ = Event{ev->code, ev->reason};
          ::shutdown(peer_.fd(), SHUT_RDWR);
          return Rx::failed;
        }
        apply(*f);
        applied += before - decoder_.buffered();
        rx_applied_.store(applied, std::memory_order_relaxed);
      }
    } catch (const DecodeError& e) {
      return fail(EventCode::partner_failed, std::string("malformed frame: ") + e.what());
    } catch (const ProtocolError& e) {
      return fail(EventCode::partner_failed, e.what());
    }
    return std::nullopt;
  };
  if (auto r = apply_buffered()) return *r;  // left over from establishment
  // Bounded: a peer streaming faster than we apply cannot keep us here.
  for (int reads = 0; reads < 16; ++reads) {
    auto room = decoder_.prepare();
    const ssize_t n = ::recv(peer_.fd(), room.data(), room.size(), MSG_DONTWAIT);
    if (n == 0) return Rx::closed;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Rx::ok;
      return fail(EventCode::partner_failed, std::string("connection lost: ") + std::strerror(errno));
    }
    decoder_.commit(static_cast<std::size_t>(n));
    last_rx_ns_ = Clock::now().time_since_epoch().count();
    if (auto r = apply_buffered()) return *r;
    if (static_cast<std::size_t>(n) < room.size()) return Rx::ok;  // drained
  }
  return Rx::ok;
}

void TcpEndpoint::check_write(std::uint64_t offset, std::uint64_t length) const {
  if (offset > size_ || length > size_ - offset)
    throw ProtocolError("write of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                        " outside the channel's " + std::to_string(size_));
  const std::uint64_t end = offset + length;
  // signature .. zone_guid say what the channel is; the state fields after them stay writable.
  constexpr std::uint64_t kIdentityEnd = offsetof(ChannelHeader, cli_str_offset);
  if (overlaps(offset, end, 0, kIdentityEnd))
    throw ProtocolError("write at " + std::to_string(offset) + " touches the channel header's identity fields");
  for (std::size_t q = 0; q < areas_.size(); ++q) {
    const auto& a = areas_[q];
    if (overlaps(offset, end, a.header, a.header + sizeof(SignalQueueHeader)))
      throw ProtocolError("write at " + std::to_string(offset) + " touches queue " + std::to_string(q) +
                          "'s header (indices move only by INDEX frames)");
    if (a.producer == side_ && overlaps(offset, end, a.slots_begin, a.slots_end))
      throw ProtocolError("write at " + std::to_string(offset) + " touches the slots of queue " + std::to_string(q) +
                          ", which this side produces");
  }
}

void TcpEndpoint::check_index(const Index& ix) const {
  for (const auto& a : areas_) {
    const bool head = a.producer != side_ && ix.index_offset == a.header + kHeadAt && ix.counter_offset == a.header + kSentAt;
    const bool tail = a.producer == side_ && ix.index_offset == a.header + kTailAt && ix.counter_offset == a.header + kReceivedAt;
    if (head || tail) {
      if (ix.index >= a.max_slots)
        throw ProtocolError("index " + std::to_string(ix.index) + " >= max_slots " + std::to_string(a.max_slots));
      return;
    }
  }
  throw ProtocolError("index at " + std::to_string(ix.index_offset) + " is not one the peer owns");
}

void TcpEndpoint::apply(const Frame& frame) {
  std::byte* base = apply_view_.bytes().data();
  if (const auto* w = std::get_if<Write>(&frame)) {
    if (w->image) throw ProtocolError("IMAGE chunk outside establishment");
    check_write(w->offset, w->bytes.size());
    std::memcpy(base + w->offset, w->bytes.data(), w->bytes.size());
  } else if (const auto* ix = std::get_if<Index>(&frame)) {
    check_index(*ix);
    // Bytes first (already applied, in order), then the counter, then the
    // index with release: the local reader that sees the index sees the slot.
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(base + ix->counter_offset))
        .store(ix->counter, std::memory_order_relaxed);
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base + ix->index_offset))
        .store(ix->index, std::memory_order_release);
  } else if (const auto* ack = std::get_if<Ack>(&frame)) {
    // Trimmed by the sender's next flush (never beyond what it sent).
    std::uint64_t seen = peer_acked_.load(std::memory_order_relaxed);
    while (ack->applied > seen && !peer_acked_.compare_exchange_weak(seen, ack->applied, std::memory_order_relaxed)) {
    }
  } else if (!std::holds_alternative<Heartbeat>(frame)) {
    throw ProtocolError("unexpected establishment frame on a live link");
  }
}

// Link thread only: it is the one that closes sockets, so no other thread can
// ever read from a descriptor number that was closed and reused. The stream
// stays as it is: a re-attach resumes it.
void TcpEndpoint::lose_peer(EventCode code, const std::string& reason) {
  {
    std::lock_guard rx(rx_mutex_);
    std::lock_guard tx(send_mutex_);
    if (!connected_) return;
    connected_ = false;
    stalled_ = false;
    want_out_ = false;
    // Behind a cut even our close must not reach the peer: the socket waits
    // in the registry, open, until the cut heals.
    if (link_cut())
      LinkFaults::instance().park(options_.peer_host, std::move(peer_));
    else
      peer_.close();
    stashed_.reset();
  }
  // Why a link dropped, on both ends (the owner's handler may not say): a
  // clean close, or the peer reacting to our own, is routine.
  spdlog::log(code == EventCode::deregistered || stop_ ? spdlog::level::debug : spdlog::level::info,
              "channel {}: {} end lost its link ({}): {}", name_, side_ == Side::guest ? "guest" : "service",
              static_cast<int>(code), reason);
  announce_connected();  // wakes waiters on any state change
  if (on_event_) on_event_(Event{code, reason});
}

// ---- replication (called by the channel's users) ----------------------------

// Sends what the link has not taken yet, as far as the socket takes it now;
// the link thread sends the rest when there is room. Only a large backlog
// makes a writer (`may_wait`: a channel user, holding no other lock) wait.
// Nothing is ever dropped here: while the link is down (or broken, or cut)
// the stream waits for the re-attach.
void TcpEndpoint::flush_locked(bool may_wait) noexcept {
  fold_if_down_locked();
  if (!connected_ || broken_) return;
  const std::uint64_t unsent = log_.unsent_bytes();
  if (link_cut()) {
    // A cut cable: frames wait here, in order, and go out if the link heals
    // before it is dropped.
    stall_from_ = Clock::now();  // the cut is not the peer being slow
    if (unsent > kMaxQueuedWhileCut && !drop_requested_) {
      spdlog::warn("channel {}: {} bytes queued behind a cut: dropping the link", name_, unsent);
      broken_ = true;
      drop_requested_ = true;  // the link thread drops the link, cut or not by then
      broken_reason_ = "more than " + std::to_string(kMaxQueuedWhileCut) + " bytes queued behind a cut";
    }
    return;
  }
  try {
    if (unsent > 0) send_locked(may_wait && unsent > kMaxUnsent);
    log_.trim(peer_acked_.load(std::memory_order_relaxed));
  } catch (const std::exception& e) {
    // The link thread sees the broken socket and raises the transport event;
    // the stream waits for the re-attach.
    spdlog::warn("channel {}: send failed: {}", name_, e.what());
    broken_ = true;
    want_out_ = false;
    ::shutdown(peer_.fd(), SHUT_RDWR);
  }
}

// A clean close: everything, deregistration included, goes out (bounded).
void TcpEndpoint::flush_all_locked(milliseconds timeout) noexcept {
  if (!connected_ || broken_ || link_cut()) return;
  try {
    const auto deadline = Clock::now() + timeout;
    while (log_.unsent_bytes() > 0 && Clock::now() < deadline) {
      send_locked(false);
      if (log_.unsent_bytes() > 0) {
        pollfd p{peer_.fd(), POLLOUT, 0};
        ::poll(&p, 1, 1);
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("channel {}: send failed: {}", name_, e.what());
  }
}

// Sends what the current link has not taken yet: what the socket takes now,
// or with `wait` until the backlog is down to half the bound. Progress
// restarts the detection clock; a peer that took nothing for detect_timeout is
// a failure (thrown here when waiting, found by the link thread's tick
// otherwise).
void TcpEndpoint::send_locked(bool wait) {
  if (!stalled_) stall_from_ = Clock::now();  // bytes unsent from now on
  while (log_.unsent_bytes() > 0) {
    if (link_cut()) break;
    const auto unsent = log_.unsent();
    const ssize_t n = ::send(peer_.fd(), unsent.data(), unsent.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      log_.mark_sent(static_cast<std::uint64_t>(n));
      last_tx_ = stall_from_ = Clock::now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait || log_.unsent_bytes() <= kMaxUnsent / 2) break;
      const auto waited = Clock::now() - stall_from_;
      if (waited >= options_.detect_timeout)
        throw std::system_error(ETIMEDOUT, std::generic_category(),
                                "send: peer took nothing for " + std::to_string(options_.detect_timeout.count()) +
                                    " ms");
      // The peer may be waiting for room on its side too: take in what it
      // sent while we wait (lock order is rx then send, so only try).
      {
        std::unique_lock rx(rx_mutex_, std::try_to_lock);
        if (rx) drain_locked();  // a failure is stashed for the link thread
      }
      pollfd p{peer_.fd(), POLLOUT, 0};
      ::poll(&p, 1, 1);
      continue;
    }
    throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "send");
  }
  stalled_ = log_.unsent_bytes() > 0;
  want_out_ = stalled_;
}

// Tells the peer how much of its stream we applied (ReplayLog::acknowledge).
bool TcpEndpoint::ack_locked(bool only_if_due) {
  if (!keeps_stream_locked()) return false;
  return log_.acknowledge(rx_applied_.load(std::memory_order_relaxed), only_if_due);
}

// Too much kept while the link is down (LinkOptions::replay_limit): the kept
// frames become the byte ranges they wrote (ReplayLog::fold_beyond_limit).
void TcpEndpoint::fold_if_down_locked() {
  if (connected_) return;
  if (const std::size_t kept = log_.fold_beyond_limit())
    spdlog::warn("channel {}: {} bytes kept while the link is down: folded into {} byte ranges", name_, kept,
                 log_.ranges().size());
}

std::size_t TcpEndpoint::kept_bytes() {
  std::lock_guard lock(send_mutex_);
  return log_.kept_bytes();
}

bool TcpEndpoint::kept_folded() {
  std::lock_guard lock(send_mutex_);
  return log_.folded();
}

void TcpEndpoint::wrote(std::uint64_t offset, std::uint64_t length) noexcept {
  std::lock_guard lock(send_mutex_);
  if (!keeps_stream_locked()) return;  // no peer yet: the image will carry it
  // Folded: only the range is recorded. Otherwise the bytes go out with the
  // next signal (publish), or the link thread's tick.
  log_.write(offset, apply_view_.bytes().data() + offset, length);
  fold_if_down_locked();
}

Index TcpEndpoint::index_at(std::uint64_t counter_offset, std::uint64_t index_offset) const {
  std::byte* base = apply_view_.bytes().data();
  Index ix;
  ix.counter_offset = counter_offset;
  ix.counter = std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(base + counter_offset))
                   .load(std::memory_order_relaxed);
  ix.index_offset = index_offset;
  ix.index = std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(base + index_offset))
                 .load(std::memory_order_relaxed);
  return ix;
}

void TcpEndpoint::publish(std::uint64_t counter_offset, std::uint64_t index_offset) noexcept {
  std::lock_guard lock(send_mutex_);
  if (!keeps_stream_locked()) return;  // no peer yet: the image will carry it
  bool tail = false;
  for (auto& a : areas_) {
    if (a.producer != side_ && index_offset == a.header + kTailAt) {
      // Our tail: ship it only when the producer could start to need it.
      const std::uint32_t freed = (tail_of(a) + a.max_slots - a.shipped_tail) % a.max_slots;
      if (freed < std::max<std::uint32_t>(1, (a.max_slots - 1) / 4)) {
        // Not yet; but a due acknowledgement goes now (the producer keeps
        // what we have not acknowledged).
        if (!log_.folded() && ack_locked(true)) flush_locked(true);
        return;
      }
      tail = true;
      break;
    }
  }
  if (log_.folded()) return;  // the current indices go on re-attach
  ship_tails_locked();  // unshipped tails ride along with this frame
  if (!tail) log_.append(index_at(counter_offset, index_offset));
  ack_locked(true);
  flush_locked(true);
}

void TcpEndpoint::ship_tails_locked() {
  if (log_.folded()) return;
  for (auto& a : areas_) {
    if (a.producer == side_ || tail_of(a) == a.shipped_tail) continue;
    const Index ix = index_at(a.header + kReceivedAt, a.header + kTailAt);
    log_.append(ix);
    a.shipped_tail = ix.index;
  }
}

std::uint32_t TcpEndpoint::tail_of(const QueueArea& a) const {
  return std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(apply_view_.bytes().data() + a.header + kTailAt))
      .load(std::memory_order_relaxed);
}

void TcpEndpoint::mark_tails_shipped_locked() {
  for (auto& a : areas_) a.shipped_tail = tail_of(a);
}

}  // namespace visorlab::channel::tcp
