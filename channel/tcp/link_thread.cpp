// The link thread of a TCP-backed channel end (tcp_endpoint.hpp): it accepts
// (server), carries the heartbeat, takes in and applies what the peer sent
// when nobody pulled it, checks the peer's liveness, sends what writers left
// queued, and raises the transport event when the link is lost. Receiving
// (drain_locked, apply) also runs on the channel's users' threads via pull().
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
#include <cerrno>
#include <cstring>
#include <new>
#include <thread>

namespace visorlab::channel::tcp {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

bool overlaps(std::uint64_t a, std::uint64_t a_end, std::uint64_t b, std::uint64_t b_end) {
  return a < b_end && b < a_end;
}

}  // namespace

Doorbell* TcpEndpoint::local_doorbell() const {
  const auto bytes = apply_view_.bytes();
  if (bytes.size() < size_with_doorbell(size_)) return nullptr;
  return std::launder(reinterpret_cast<Doorbell*>(bytes.data() + doorbell_offset(size_)));
}

std::chrono::milliseconds TcpEndpoint::tick() const {
  return std::max(options_.heartbeat_interval, milliseconds(1));
}

TcpEndpoint::Pace TcpEndpoint::pace(Clock::time_point now) {
  const auto fast = tick();
  const auto idle_beat = options_.idle_heartbeat_interval;
  if (idle_beat <= fast || options_.idle_after <= milliseconds(0)) return {fast, options_.detect_timeout, false, false};
  auto judge = [&](bool moved) {
    if (moved || last_data_ == Clock::time_point{}) {
      if (last_data_ != Clock::time_point{} && now - last_data_ >= options_.idle_after)
        strict_from_ = now + 2 * idle_beat;  // the peer may still beat slowly
      last_data_ = now;
    }
    return now - last_data_ >= options_.idle_after + std::chrono::seconds(1);
  };
  bool slow = judge(false);
  // Say we beat slowly before looking for data: a writer either sees slow_
  // (and wakes us) or left data_moved_ for this look (note_data's order).
  slow_.store(slow, std::memory_order_seq_cst);
  if (data_moved_.exchange(false, std::memory_order_seq_cst)) {
    slow = judge(true);
    slow_.store(slow, std::memory_order_seq_cst);
  }
  // Forgive first, beat slowly a second later: the peer, seeing the same data
  // within a beat of us, has relaxed by the time our beats thin out.
  const bool relaxed = now - last_data_ >= options_.idle_after || now < strict_from_;
  const auto detect = relaxed ? options_.detect_timeout * idle_beat.count() / fast.count() : options_.detect_timeout;
  return {slow ? idle_beat : fast, detect, relaxed, slow};
}

// When the peer was last heard: on this link, or — backing off — on any link
// of its process (a link that slept while its group's beater listened).
std::chrono::steady_clock::time_point TcpEndpoint::heard_last(const Pace& pace) const {
  const auto own = last_rx_ns_.load();
  return Clock::time_point(Clock::duration(pace.relaxed && group_ ? std::max(own, group_->last_heard()) : own));
}

void TcpEndpoint::note_data() noexcept {
  if (!data_moved_.load(std::memory_order_relaxed)) data_moved_.store(true, std::memory_order_seq_cst);
  if (slow_.load(std::memory_order_seq_cst) && slow_.exchange(false, std::memory_order_relaxed)) wake_.wake();
}

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
      // One live peer per channel: a second attach is refused, not adopted —
      // unless our peer is gone already and the newcomer is its successor.
      Socket extra = accept_from(listener_, milliseconds(0));
      if (extra && peer_hung_up()) {
        handshake_as_server(extra);
        continue;
      }
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
  if (group_ && group_->convicted()) {
    lose_peer(EventCode::partner_failed, "no heartbeat from the peer's process (judged on channel links it shares)");
    return;
  }
  if (link_cut()) {
    pump_cut();
    return;
  }
  const Pace pace = this->pace(Clock::now());
  // Backing off with others to the same process, and not the one that beats:
  // no timer at all. Data (ours or the peer's), a hang-up, a newcomer at the
  // listener or the group's verdict wakes us.
  const bool shares = pace.slow && group_ && !group_->beats(this);
  const bool backlog = want_out_.load();
  // A consumer asleep on the doorbell pulls nothing: we take in for it.
  const Doorbell* bell = local_doorbell();
  const bool for_sleeper = bell && bell->sleepers.load(std::memory_order_relaxed) > 0;
  const bool take_in = backlog || for_sleeper || shares;
  // Only a sleeper without a timer needs the listener to wake it (link_loop
  // looks at it after every tick).
  pollfd p[3] = {{peer_.fd(), static_cast<short>(POLLRDHUP | (backlog ? POLLOUT : 0) | (take_in ? POLLIN : 0)), 0},
                 {wake_.fd(), POLLIN, 0},
                 {shares && listener_ ? listener_.fd() : -1, POLLIN, 0}};
  ::poll(p, 3, shares ? -1 : static_cast<int>(pace.beat.count()));
  if (p[1].revents & POLLIN) wake_.drain();
  if (p[2].revents & POLLIN) {
    // A newcomer while our peer seems up: often its successor, the old one
    // on its way out (a planned recover). Give the old one's hang-up the
    // tick a busy link would, before the newcomer is refused as a second peer.
    pollfd hangup{peer_.fd(), POLLRDHUP, 0};
    ::poll(&hangup, 1, static_cast<int>(tick().count()));
  }
  const bool heard = p[0].revents & POLLIN;
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
  if (shares) {
    // The beater judges for us; we keep its news, so that a silence we judge
    // ourselves later starts from what the group last heard.
    if (group_) last_rx_ns_ = std::max(last_rx_ns_.load(), group_->last_heard());
    last_pump_ = now;
    std::unique_lock tx(send_mutex_);
    if (connected_) flush_locked(false);
    return;
  }
  // Silence counts only while we were listening: if this thread did not run
  // for a while (a stalled VM, a starved core) the peer's silence over that
  // span is no evidence — the peer is as likely to have been stalled too, and
  // its heartbeat may still be on its way. Failure detectors that convict on
  // their own pauses raise false alarms exactly under load.
  if (const auto gap = now - last_pump_; last_pump_ != Clock::time_point{} && gap > pace.beat + 2 * tick()) {
    const auto stalled = std::chrono::duration_cast<Clock::duration>(gap - pace.beat).count();
    const auto moved = std::min(last_rx_ns_.load() + stalled, now.time_since_epoch().count());
    if (moved > last_rx_ns_.load()) last_rx_ns_ = moved;
  }
  last_pump_ = now;
  const bool for_group = pace.relaxed && group_;
  auto silent = now - heard_last(pace);
  if (silent > pace.detect && !link_cut()) {
    // Bytes waiting unread mean the peer did speak; we were just slow to look.
    // (Not behind a cut: what waits there never arrived.)
    pollfd readable{peer_.fd(), POLLIN, 0};
    if (::poll(&readable, 1, 0) == 1 && (readable.revents & POLLIN)) {
      last_rx_ns_ = now.time_since_epoch().count();
      silent = Clock::duration::zero();
    } else if (for_group) {
      group_->look_all();  // the other side may have picked another link to beat on
      silent = now - heard_last(pace);
    }
  }
  if (silent > pace.detect) {
    // Only a beater judging for its group convicts it; a busy link judges itself.
    if (group_ && pace.relaxed && group_->beats(this)) group_->convict();
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
  // An acknowledgement doubles as the heartbeat: when nothing went out for
  // an interval, an acknowledgement of what is new (else a heartbeat); before
  // that only one that is due. Acknowledging every frame at once would have
  // two ends whose consumers sleep (both link threads then wake on incoming
  // data) acknowledge each other's acknowledgements at full speed. Beating
  // slowly, a beat heard from the peer is answered when ours is half due: the
  // two ends fall into step, and each wakes once per beat, not twice.
  const auto due = pace.slow && heard ? pace.beat / 2 : pace.beat;
  if (now - last_tx_ >= due) {
    if (!ack_locked(false)) log_.append(Heartbeat{});
  } else {
    ack_locked(true);
  }
  flush_locked(false);  // the link thread never waits: the rest goes when there is room
  if (stalled_ && !broken_ && Clock::now() - stall_from_ > options_.detect_timeout) {
    // The peer has taken nothing for the whole detection bound.
    const auto waited = std::chrono::duration_cast<milliseconds>(Clock::now() - stall_from_).count();
    tx.unlock();
    lose_peer(EventCode::partner_failed, "send: peer took nothing for " + std::to_string(waited) + " ms");
  }
}

// A newcomer while our peer seems up: often its successor (a restarted
// service partition), the old one's hang-up waiting unread — the tick's
// drain skips a turn when a consumer holds the receive lock, and a loaded
// machine runs us late. What the kernel knows decides: a hung-up peer is
// read out (waiting for the lock: its last frames, a deregistration) and
// dropped, and the newcomer is let in.
bool TcpEndpoint::peer_hung_up() {
  pollfd hangup{peer_.fd(), POLLRDHUP, 0};
  if (::poll(&hangup, 1, 0) != 1 || !(hangup.revents & (POLLRDHUP | POLLHUP | POLLERR))) return false;
  Rx result = Rx::ok;
  std::optional<Event> why;
  {
    std::lock_guard rx(rx_mutex_);
    result = drain_locked();
    why = stashed_;
  }
  if (result == Rx::failed)
    lose_peer(why ? why->code : EventCode::partner_failed, why ? why->reason : "link failed");
  else
    lose_peer(EventCode::partner_failed, "connection closed without deregistering");
  return true;
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
  const auto pace = this->pace(Clock::now());
  // Wake at the next tick, or just after the peer's silence crosses the bound.
  std::this_thread::sleep_until(
      std::min<Clock::time_point>(Clock::now() + tick(), heard_last(pace) + pace.detect + std::chrono::microseconds(200)));
  last_pump_ = Clock::now();  // behind a cut the silence counts in full
  const auto silent = Clock::now() - heard_last(pace);
  if (silent > pace.detect) {
    if (group_ && pace.relaxed && group_->beats(this)) group_->convict();
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

// ---- receiving ---------------------------------------------------------------

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
        // A publish (an index moved): a consumer asleep here hears it.
        if (std::holds_alternative<Index>(*f))
          if (Doorbell* bell = local_doorbell()) bell->ring();
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
    if (group_) group_->heard(last_rx_ns_.load(std::memory_order_relaxed));
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
    note_data();
  } else if (const auto* ix = std::get_if<Index>(&frame)) {
    check_index(*ix);
    note_data();
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
  std::shared_ptr<PeerGroup> group;
  {
    std::lock_guard rx(rx_mutex_);
    std::lock_guard tx(send_mutex_);
    if (!connected_) return;
    connected_ = false;
    group = std::move(group_);
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
  if (group) group->leave(this);
  // Why a link dropped, on both ends (the owner's handler may not say): a
  // clean close, or the peer reacting to our own, is routine.
  spdlog::log(code == EventCode::deregistered || stop_ ? spdlog::level::debug : spdlog::level::info,
              "channel {}: {} end lost its link ({}): {}", name_, side_ == Side::guest ? "guest" : "service",
              static_cast<int>(code), reason);
  announce_connected();  // wakes waiters on any state change
  // A consumer asleep on this channel must hear of it too (it re-attaches).
  if (Doorbell* bell = local_doorbell()) bell->ring();
  if (on_event_) on_event_(Event{code, reason});
}

}  // namespace visorlab::channel::tcp
