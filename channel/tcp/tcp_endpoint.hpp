// One end of a TCP-backed channel (issue: cross-host channels). Each end holds
// a full copy of the channel bytes in its own memory; what a side writes is
// shipped in order and becomes visible on the peer at the signal (index move)
// that refers to it — RDMA WRITE then doorbell, over TCP. The code above sees
// an ordinary Channel: same queues, same -EIO/-EAGAIN, same counters.
//
// Roles: the end that outlives the other serves (the guest: its service
// partition may crash and come back, maybe on another host); the other
// attaches. A first attach, or an attach by a restarted process, receives the
// server's image, which is authoritative. A surviving client that re-attaches
// after the link dropped resumes: each side keeps everything it sent (queue
// slots, indices and data-area bytes alike) until the peer acknowledged
// applying it, and re-sends what the peer had not applied, in order — so
// nothing either side wrote, before or during the outage, is lost.
//
// The link speaks CRQ-style frames (frame.hpp): INIT / INIT_COMPLETE, then
// capabilities; a mismatch refuses the channel with a reason. Peer failure
// reaches the owner as a transport event: killed or reset → partner failed
// (0x01); clean close → deregistered (0x02); silence past the detection bound
// → partner failed. Malformed or out-of-bounds input drops the connection
// with a logged reason and a partner-failed event.
//
// Sending never waits on the peer in the common case: what the socket does
// not take at once stays queued and the link thread sends it when there is
// room, so a channel user never blocks while the peer, itself blocked, is not
// reading (a writer only waits once a large backlog is queued, and then keeps
// taking in the peer's frames while it waits).
//
// An endpoint that knows its peer's host (LinkOptions::peer_host) can have its
// link cut in-process (link_faults.hpp): while cut it sends and receives
// nothing, exactly like a pulled cable.
//
// The pieces: tcp_endpoint.cpp (construction, establishment, the session a
// handshake starts or resumes, and the Replicator side: what the channel's
// users write goes out), handshake.hpp/.cpp (INIT, capabilities, image,
// RESUME), replay_log.hpp/.cpp (the outgoing stream kept until the peer
// acknowledges it, folding, what a resume re-sends) and link_thread.cpp (the
// link thread's tick, receiving and applying the peer's frames, losing the
// peer).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "channel/channel.hpp"
#include "channel/log_throttle.hpp"
#include "channel/memory.hpp"
#include "channel/replicator.hpp"
#include "channel/tcp/frame.hpp"
#include "channel/tcp/handshake.hpp"
#include "channel/tcp/link_faults.hpp"
#include "channel/tcp/peer_group.hpp"
#include "channel/tcp/pi_mutex.hpp"
#include "channel/tcp/replay_log.hpp"
#include "channel/tcp/socket.hpp"
#include "net/wake_fd.hpp"

namespace visorlab::channel::tcp {

struct LinkOptions {
  std::chrono::milliseconds heartbeat_interval{10};
  std::chrono::milliseconds detect_timeout{80};  // silent peer → partner failed
  // The kernel's visorbus backs off from 10 to 100 jiffies after 10 s idle
  // (spec §4); so does a link: one that carried no data either way for
  // idle_after judges its peer's silence by detect_timeout scaled as
  // idle_heartbeat_interval is to heartbeat_interval, and a second later beats
  // every idle_heartbeat_interval. The next data brings the fast beat back at
  // once; the strict bound two slow beats later (the peer may not have seen
  // it yet). idle_heartbeat_interval <= heartbeat_interval: never back off.
  std::chrono::milliseconds idle_heartbeat_interval{100};
  std::chrono::milliseconds idle_after{10000};
  // The link thread's real-time priority (SCHED_RR; 0: normal scheduling);
  // where that is not permitted, nice -10. See link_loop.
  int link_rt_priority = 10;
  std::chrono::milliseconds handshake_timeout{2000};
  // The host the peer end lives on, as LinkFaults names it: a cut of that
  // host cuts this link. Empty: never cut.
  std::string peer_host;
  // What this side keeps, while the link is down, of the stream it could not
  // send. Beyond it the kept frames are folded into the byte ranges they
  // wrote, re-sent as they are then (plus the current indices) on re-attach:
  // bounded memory, same end state, without the intermediate history.
  std::size_t replay_limit = std::size_t{64} << 20;
};

struct Event {
  EventCode code;
  std::string reason;
};

// Which side produces each queue; the other side consumes it.
using QueueProducers = std::vector<Side>;

class TcpEndpoint final : public Replicator {
 public:
  using EventHandler = std::function<void(const Event&)>;

  // Formats a channel in local memory and listens on `at` for its peer.
  static std::unique_ptr<TcpEndpoint> serve(const Address& at, const std::string& name, const ChannelSpec& spec,
                                            Side side, QueueProducers producers, LinkOptions options = {},
                                            EventHandler on_event = {});
  // Connects, receives the server's image and validates it as `expect` says
  // (throws HandshakeError naming what differed, or ChannelError).
  static std::unique_ptr<TcpEndpoint> attach(const Address& to, const std::string& name, const Expect& expect,
                                             Side side, QueueProducers producers, LinkOptions options = {},
                                             EventHandler on_event = {});

  ~TcpEndpoint() override;  // a clean close: the peer sees deregistered

  Channel& channel() { return *channel_; }
  Address address() const { return address_; }  // where a server listens
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  // Waits until a peer is attached (server) or returns false at the deadline.
  bool wait_connected(std::chrono::milliseconds timeout);

  // Client: attach again after a transport event — the server restarted the
  // link, or a cut network healed — and resume: each side re-sends what the
  // other had not applied. Retries until `timeout` (throws HandshakeError
  // then), waiting out an injected cut of the peer host; each handshake step
  // of an attempt waits for an unresponsive server at most max(timeout,
  // 5 ticks). Does nothing while still connected. Not from the event handler
  // (it runs on the link thread this joins).
  void reattach(const Address& to, std::chrono::milliseconds timeout);

  // The peer host this endpoint is registered under with LinkFaults (empty:
  // none), and whether that host is cut now.
  const std::string& peer_host() const { return options_.peer_host; }
  bool link_cut() const noexcept { return fault_.cut(); }

  // Bytes of this side's stream kept for the peer (sent or not, not yet
  // acknowledged), and whether the kept stream was folded into byte ranges
  // (LinkOptions::replay_limit). For tests and diagnostics.
  std::size_t kept_bytes();
  bool kept_folded();

  // Replicator: called by the channel on local writes and signal boundaries.
  void wrote(std::uint64_t offset, std::uint64_t length) noexcept override;
  void publish(std::uint64_t counter_offset, std::uint64_t index_offset) noexcept override;
  void pull() noexcept override;

 private:
  struct QueueArea {
    std::uint64_t header;
    std::uint64_t slots_begin, slots_end;
    std::uint32_t max_slots;
    Side producer;
    // We consume this queue: the tail last put in our stream for the peer
    // (guarded by send_mutex_). The producer needs our tail only before it
    // runs out of room, so it ships once a quarter of the queue was freed,
    // with the next frame out, or on the link tick.
    std::uint32_t shipped_tail = 0;
  };
  enum class Rx { ok, closed, failed };
  // Where a queue's indices and their counters sit in its header.
  static constexpr std::uint64_t kHeadAt = offsetof(SignalQueueHeader, head);
  static constexpr std::uint64_t kTailAt = offsetof(SignalQueueHeader, tail);
  static constexpr std::uint64_t kSentAt = offsetof(SignalQueueHeader, num_sent);
  static constexpr std::uint64_t kReceivedAt = offsetof(SignalQueueHeader, num_received);

  // tcp_endpoint.cpp: construction and establishment.
  TcpEndpoint(Side side, std::string name, QueueProducers producers, LinkOptions options, EventHandler on_event);
  void adopt(Region region, Channel channel);
  Capabilities capabilities() const;
  // Waits (bounded by `deadline`) until the peer host is not cut; throws
  // HandshakeError saying so at the deadline.
  void wait_out_cut(std::chrono::steady_clock::time_point deadline, const std::string& what);
  // Both locks held. A newcomer: a new session, the stream starts at 0 on
  // both sides. A survivor's peer applied `peer_applied` bytes of our stream:
  // re-send from there (an error message if we cannot).
  void start_session_locked();
  std::string resume_locked(std::uint64_t peer_applied);
  void go_live_locked(Socket s, Decoder d);
  void announce_connected();  // wakes wait_connected()

  // handshake.cpp: run by whichever thread holds the new socket.
  // `step` bounds each exchange (the image aside, which may be large).
  void handshake_as_client(Socket& s, const Expect* expect, bool has_image, std::chrono::milliseconds step);
  bool handshake_as_server(Socket& s);  // false: refused, peer told why

  // link_thread.cpp: the link thread, and receiving.
  void link_loop();
  void pump();
  void pump_cut();  // the tick while the peer host is cut
  bool peer_hung_up();  // a newcomer knocks: is our peer gone already? (drops it if so)
  std::chrono::milliseconds tick() const;
  // The link thread's pace now: how often it beats, how long a silence it
  // forgives (LinkOptions::idle_after).
  struct Pace {
    std::chrono::milliseconds beat;
    std::chrono::milliseconds detect;
    bool relaxed;  // judged by the scaled bound; then what the peer's process sent on any link counts
    bool slow;
  };
  Pace pace(std::chrono::steady_clock::time_point now);
  std::chrono::steady_clock::time_point heard_last(const Pace& pace) const;
  // Data moved (a write, a publish, a frame applied): the link is busy. Wakes
  // a link thread beating slowly.
  void note_data() noexcept;
  // The doorbell in our copy of the channel, rung as the peer's publishes are
  // applied (nullptr: no room for one).
  Doorbell* local_doorbell() const;
  Rx drain_locked();  // rx_mutex_ held: take in what has arrived, without blocking
  void apply(const Frame& frame);
  void check_write(std::uint64_t offset, std::uint64_t length) const;
  void check_index(const Index& index) const;
  void lose_peer(EventCode code, const std::string& reason);

  // tcp_endpoint.cpp: sending (send_mutex_ held).
  // Sends the unsent rest of the stream. `wait`: until all is out (taking in
  // the peer's frames meanwhile), else only what the socket takes now. Throws
  // when the peer took nothing for detect_timeout.
  void send_locked(bool wait);
  void flush_locked(bool may_wait) noexcept;
  void flush_all_locked(std::chrono::milliseconds timeout) noexcept;  // a clean close: wait for it to go out
  void ship_tails_locked();
  void mark_tails_shipped_locked();
  std::uint32_t tail_of(const QueueArea& a) const;
  Index index_at(std::uint64_t counter_offset, std::uint64_t index_offset) const;
  // The outgoing stream.
  bool keeps_stream_locked() const { return !(listener_ && fresh_); }
  bool ack_locked(bool only_if_due);  // true: an ACK went into the stream
  void fold_if_down_locked();  // LinkOptions::replay_limit: the kept stream becomes byte ranges

  const Side side_;
  const std::string name_;
  LogThrottle handshake_warnings_;  // a peer retrying across a cut fails every few ms
  const QueueProducers producers_;
  const LinkOptions options_;
  EventHandler on_event_;
  // Registered with LinkFaults for the endpoint's whole life (from the
  // constructor; destroyed after every other member, so after the link thread).
  LinkFaults::Registration fault_;

  std::optional<Region> region_;
  Mapping apply_view_;  // the link's own view: never paused, the peer's writes land here
  std::unique_ptr<Channel> channel_;
  std::vector<QueueArea> areas_;
  std::uint64_t size_ = 0;
  Capabilities caps_;  // as validated at adopt(): the peer cannot rewrite what we announce

  Socket listener_;
  Address address_;
  bool fresh_ = true;  // server: no peer has attached yet

  // Lock order: rx_mutex_, then send_mutex_. Only the link thread closes peer_.
  PiMutex rx_mutex_;  // guards receiving on peer_, decoder_ and stashed_
  Decoder decoder_;
  std::optional<Event> stashed_;  // why the link broke, found by whoever received
  std::atomic<std::int64_t> last_rx_ns_{0};
  // The peer's process, as its INIT named it (0: it did not), and while the
  // link is up the group of our links to it (peer_group.hpp). Set with both
  // locks held, by the link thread or before it runs; read by receivers.
  std::uint64_t peer_process_ = 0;
  std::shared_ptr<PeerGroup> group_;
  void join_group_locked();
  std::chrono::steady_clock::time_point last_pump_;  // the link thread's previous tick (link thread only)

  PiMutex send_mutex_;  // guards sends on peer_, the outgoing stream and the tail counts
  Socket peer_;
  // The outgoing stream, kept until the peer acknowledges it (and what we
  // last acknowledged of the peer's): replay_log.hpp.
  ReplayLog log_;
  std::uint64_t session_ = 0;  // the image this stream belongs to
  // The peer acknowledged applying this much of our stream (set by receivers,
  // under rx_mutex_ only; log_ trims to it under send_mutex_).
  std::atomic<std::uint64_t> peer_acked_{0};
  // How much of the peer's stream we applied (written under rx_mutex_).
  std::atomic<std::uint64_t> rx_applied_{0};
  std::chrono::steady_clock::time_point last_tx_;
  std::chrono::steady_clock::time_point stall_from_;  // unsent bytes waiting since (or last progress)
  bool stalled_ = false;                              // the last send left bytes unsent
  std::atomic<bool> want_out_{false};                 // the link thread waits for room (POLLOUT)
  bool broken_ = false;  // a send failed; the link thread will raise the event
  // Too much queued behind a cut: the link thread drops the link (its drain
  // cannot notice, nothing was shut down), for this reason.
  bool drop_requested_ = false;
  std::string broken_reason_;

  std::atomic<bool> connected_{false};
  std::atomic<bool> stop_{false};
  // Pace (LinkOptions::idle_after). The flags are set by writers and
  // receivers, the times are the link thread's own.
  std::atomic<bool> data_moved_{false};  // since the link thread last looked
  std::atomic<bool> slow_{false};        // the link thread beats slowly: the next data wakes it
  net::WakeFd wake_;                     // wakes the link thread from its poll
  std::chrono::steady_clock::time_point last_data_{};
  std::chrono::steady_clock::time_point strict_from_{};  // silence judged by detect_timeout from here
  std::chrono::milliseconds last_wait_{0};              // how long the previous poll could sleep
  std::mutex state_mutex_;
  std::condition_variable state_changed_;
  std::thread thread_;
};

}  // namespace visorlab::channel::tcp
