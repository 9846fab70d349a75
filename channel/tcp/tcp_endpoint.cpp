// TcpEndpoint: construction, establishment (serve / attach / reattach, and
// the session a handshake starts or resumes) and the Replicator side — what
// the channel's users write and publish goes into the replay log and out to
// the socket. The handshake is in handshake.cpp, the link thread in
// link_thread.cpp, the kept stream in replay_log.cpp.
#include "channel/tcp/tcp_endpoint.hpp"

#include <spdlog/spdlog.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <thread>

namespace visorlab::channel::tcp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Frames queued while the peer host is cut, beyond which the link is dropped
// at once (a re-attach resumes from what the peer applied): a real cut would
// block the sender long before.
constexpr std::size_t kMaxQueuedWhileCut = 32u << 20;
// Unsent bytes beyond which a writer waits for the socket to take some (it
// takes in the peer's frames meanwhile); below it the link thread sends the
// rest when there is room, and the writer goes on.
constexpr std::size_t kMaxUnsent = 16u << 20;

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
  wake_.wake();  // a link thread beating slowly would sleep on for a beat
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
  if (group_) group_->leave(this);
  if (channel_) channel_->set_replicator(nullptr);
  // Behind a cut nothing reaches the peer, not even our close: it sees a
  // silent peer. The socket waits in the registry until the cut heals.
  if (cut) LinkFaults::instance().park(options_.peer_host, std::move(peer_));
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
  Region region = Region::anonymous(size_with_doorbell(channel_size(spec)));
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
  e->wait_out_cut(Clock::now() + options.handshake_timeout, "attach to " + to.text());
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
        throw HandshakeError("re-attach to " + to.text() + " failed: the link to host " + options_.peer_host + " is cut");
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
        throw HandshakeError("re-attach to " + to.text() + " failed: " + e.what());
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
  thread_ = std::thread([this] { link_loop(); });
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
  // A new link starts busy (fast beat, strict bound), whatever the old one was:
  // its peer is new to it too.
  data_moved_.store(true, std::memory_order_seq_cst);
  join_group_locked();
  ship_tails_locked();  // a tail that moved while the link was down
  flush_locked(false);  // both locks held: the link thread sends the rest
}

// Both locks held, the link just up: with the other links to the peer's
// process it shares one beat while they all back off.
void TcpEndpoint::join_group_locked() {
  // A peer that does not name its process, or is this one (both ends here:
  // they would hear each other's beats as the peer's), beats for itself.
  if (peer_process_ == 0 || peer_process_ == this_process()) return;
  group_ = PeerGroup::of(peer_process_);
  group_->heard(last_rx_ns_.load());
  group_->join(this, {name_,
                      [this] {
                        std::unique_lock rx(rx_mutex_, std::try_to_lock);
                        if (rx) (void)drain_locked();  // a failure is stashed for our link thread
                      },
                      [this] { wake_.wake(); }});
}

void TcpEndpoint::announce_connected() {
  { std::lock_guard lock(state_mutex_); }  // a waiter is either asleep or will see connected_
  state_changed_.notify_all();
}

bool TcpEndpoint::wait_connected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(state_mutex_);
  return state_changed_.wait_for(lock, timeout, [&] { return connected_.load(); });
}

// ---- replication (called by the channel's users) ----------------------------

void TcpEndpoint::pull() noexcept {
  if (!connected_) return;
  std::unique_lock rx(rx_mutex_, std::try_to_lock);
  if (rx) drain_locked();  // a failure is stashed for the link thread to raise
}

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
  note_data();
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
  // Data for the peer (a tail kept back above is not: the peer sees nothing).
  note_data();
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
