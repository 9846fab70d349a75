// A TCP channel's guest endpoint facing a misbehaving peer: a raw socket that
// speaks the frame format by hand, badly. Every bad input is refused with a
// reason (a transport event once a peer was attached), the guest never
// crashes, and a correct attach afterwards streams as usual.
// Every wait is bounded.
#define BOOST_TEST_MODULE channel_tcp_bad_input
#include <boost/test/unit_test.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "channel/channel_header.hpp"
#include "channel/tcp/tcp_endpoint.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;
using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::byte>;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kCmd = 0, kRsp = 1;  // produced by the guest, by the service
constexpr std::uint32_t kSlots = 16;
const std::string kName = "g0/vhba0";

struct Signal {
  std::uint64_t seq;
  std::uint8_t fill[56];
};

Signal make(std::uint64_t seq) {
  Signal s{};
  s.seq = seq;
  std::memset(s.fill, static_cast<int>(seq & 0xFF), sizeof s.fill);
  return s;
}

const ch::Guid kType = ch::Guid::make(0x11112222, 0x3333, 0x4444, {5, 5, 6, 6, 7, 7, 8, 8});

ch::ChannelSpec spec() {
  ch::ChannelSpec s;
  s.type = kType;
  s.version_id = 1;
  s.queues = {{64, kSlots}, {64, kSlots}};
  s.min_size = 16384;
  return s;
}

ch::Expect expect() { return ch::Expect{.type = kType, .version_id = 1, .queue_count = 2, .signal_size = 64}; }

const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};

// Transport events seen by the guest, taken one at a time.
struct Events {
  std::mutex m;
  std::vector<tcp::Event> seen;
  tcp::TcpEndpoint::EventHandler handler() {
    return [this](const tcp::Event& e) {
      std::lock_guard lock(m);
      seen.push_back(e);
    };
  }
  std::optional<tcp::Event> take(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      {
        std::lock_guard lock(m);
        if (!seen.empty()) {
          tcp::Event e = seen.front();
          seen.erase(seen.begin());
          return e;
        }
      }
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(1ms);
    }
  }
  std::size_t count() {
    std::lock_guard lock(m);
    return seen.size();
  }
};

// Where the guest's channel keeps things, from its CAP_RESP.
struct Layout {
  std::uint64_t size;
  std::uint64_t header[2];        // queue headers
  std::uint64_t slots[2];         // first slot of each queue
  std::uint64_t slots_bytes[2];
  std::uint32_t max_slots[2];

  explicit Layout(const tcp::Capabilities& caps) : size(caps.size) {
    BOOST_REQUIRE(caps.queues.size() == 2u);
    for (int q = 0; q < 2; ++q) {
      header[q] = caps.ch_space_offset + q * sizeof(ch::SignalQueueHeader);
      slots[q] = header[q] + caps.queues[q].sig_base_offset;
      slots_bytes[q] = std::uint64_t{caps.queues[q].signal_size} * caps.queues[q].max_slots;
      max_slots[q] = caps.queues[q].max_slots;
    }
  }
  std::uint64_t head(int q) const { return header[q] + offsetof(ch::SignalQueueHeader, head); }
  std::uint64_t num_sent(int q) const { return header[q] + offsetof(ch::SignalQueueHeader, num_sent); }
  std::uint64_t tail(int q) const { return header[q] + offsetof(ch::SignalQueueHeader, tail); }
  std::uint64_t num_received(int q) const { return header[q] + offsetof(ch::SignalQueueHeader, num_received); }
};

Bytes encoded(const tcp::Frame& f) {
  Bytes out;
  tcp::encode(f, out);
  return out;
}

Bytes text(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return Bytes(p, p + s.size());
}

Bytes write_frame(std::uint64_t offset, std::size_t length) {
  const Bytes payload(length, std::byte{0x5A});
  return encoded(tcp::Write{false, offset, payload});
}

// A peer that speaks the wire format by hand, through a plain socket.
class RawPeer {
 public:
  explicit RawPeer(const tcp::Address& at) : socket_(tcp::connect_to(at, 2s)) {}

  void send(const Bytes& bytes) { socket_.send_all(bytes, 2s); }
  void send(const tcp::Frame& f) { send(encoded(f)); }
  // Closes like a process that exits: FIN first, then whatever the guest still
  // sends (heartbeats) is read until it closes too. Closing with unread bytes
  // would send a reset instead, which the guest reports as "recv: Connection
  // reset by peer".
  void close() {
    if (!socket_) return;
    ::shutdown(socket_.fd(), SHUT_WR);
    closed_by_guest();
    socket_.close();
  }
  // Closes with a reset (SO_LINGER 0), as a killed process with unread bytes.
  void reset() {
    const linger abort{1, 0};
    setsockopt(socket_.fd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    socket_.close();
  }

  // The next frame within `timeout`, nullopt on timeout or when the guest
  // closed the connection. A Write's bytes last until the next call.
  std::optional<tcp::Frame> next(std::chrono::milliseconds timeout = 2s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (auto f = decoder_.next()) return f;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0 || closed_) return std::nullopt;
      try {
        const long n = socket_.receive(decoder_.prepare(), left);
        if (n == 0) closed_ = true;
        if (n > 0) decoder_.commit(static_cast<std::size_t>(n));
      } catch (const std::system_error&) {  // reset: the guest closed with our bytes unread
        closed_ = true;
      }
    }
  }

  // The next frame that is not a heartbeat.
  std::optional<tcp::Frame> next_non_heartbeat(std::chrono::milliseconds timeout = 2s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      auto f = next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
      if (!f || !std::holds_alternative<tcp::Heartbeat>(*f)) return f;
    }
  }

  // Whether the guest closed the connection within `timeout`.
  bool closed_by_guest(std::chrono::milliseconds timeout = 2s) {
    const auto deadline = Clock::now() + timeout;
    while (!closed_ && Clock::now() < deadline) next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    return closed_;
  }

  // INIT as the service side; returns the guest's INIT_COMPLETE.
  tcp::Init init(std::uint16_t major = tcp::kMajorVersion) {
    send(tcp::Init{false, major, tcp::kMinorVersion, tcp::Side::service, false, false, kName});
    auto f = next();
    BOOST_REQUIRE_MESSAGE(f && std::holds_alternative<tcp::Init>(*f), "no INIT_COMPLETE");
    const auto& init = std::get<tcp::Init>(*f);
    BOOST_REQUIRE(init.complete);
    return init;
  }

  // The whole establishment done right: INIT, CAP (by default claiming
  // nothing), then the image up to IMAGE_DONE (its chunks in order, inside
  // the channel; all-zero pages left out). Returns the guest's layout.
  Layout handshake(const tcp::Capabilities& ours = {}) {
    init();
    send(ours);
    auto f = next();
    BOOST_REQUIRE_MESSAGE(f && std::holds_alternative<tcp::Capabilities>(*f), "no CAP_RESP");
    const auto caps = std::get<tcp::Capabilities>(*f);
    BOOST_REQUIRE(caps.response);
    BOOST_REQUIRE(caps.status == 0u);
    std::uint64_t image_bytes = 0, end = 0;
    for (;;) {
      auto img = next();
      BOOST_REQUIRE_MESSAGE(img, "the image stopped after " << image_bytes << " bytes");
      if (const auto* done = std::get_if<tcp::ImageDone>(&*img)) {
        BOOST_REQUIRE(done->size == caps.size);
        break;
      }
      const auto* w = std::get_if<tcp::Write>(&*img);
      BOOST_REQUIRE(w && w->image);
      BOOST_REQUIRE(w->offset >= end);  // in order, no overlap
      end = w->offset + w->bytes.size();
      BOOST_REQUIRE(end <= caps.size);
      image_bytes += w->bytes.size();
    }
    BOOST_REQUIRE(image_bytes > 0u);  // the header at least is never zero
    return Layout(caps);
  }

 private:
  tcp::Socket socket_;
  tcp::Decoder decoder_;
  bool closed_ = false;
};

// Retries `op` (0: done) until the deadline; false if it never succeeded.
bool retry(const std::function<int()>& op, Clock::time_point deadline) {
  while (op() != 0)
    if (Clock::now() >= deadline) return false;
  return true;
}

// A guest endpoint serving on loopback; its link tolerates a silent peer for
// long enough that every drop below is for the reason under test.
struct Guest {
  Events events;
  std::unique_ptr<tcp::TcpEndpoint> endpoint;

  static tcp::LinkOptions options() {
    tcp::LinkOptions o;
    o.detect_timeout = 10s;
    return o;
  }

  Guest() {
    endpoint = tcp::TcpEndpoint::serve({"127.0.0.1", 0}, kName, spec(), tcp::Side::guest, kProducers, options(),
                                       events.handler());
  }
  tcp::Address address() const { return endpoint->address(); }

  // The guest stays unattached for a while (a refused handshake).
  void stays_unattached() {
    const auto until = Clock::now() + 50ms;
    while (Clock::now() < until) {
      BOOST_REQUIRE(!endpoint->connected());
      std::this_thread::sleep_for(5ms);
    }
    BOOST_TEST(events.count() == 0u);  // no peer was attached: nothing to report
  }

  // Handshakes by hand, sends `bad`, and returns the transport event it caused.
  tcp::Event drop_after(const std::function<void(RawPeer&, const Layout&)>& misbehave) {
    RawPeer peer(address());
    const Layout layout = peer.handshake();
    BOOST_REQUIRE(endpoint->wait_connected(2s));
    misbehave(peer, layout);
    auto e = events.take(2s);
    BOOST_REQUIRE_MESSAGE(e, "the guest kept the link");
    BOOST_TEST(static_cast<int>(e->code) == 0x01);
    BOOST_TEST(!endpoint->connected());
    BOOST_TEST_MESSAGE("dropped: " << e->reason);
    return *e;
  }

  // A correct service attaches and a hundred signals go round.
  void good_attach_streams() {
    auto service = tcp::TcpEndpoint::attach(address(), kName, expect(), tcp::Side::service, kProducers, options());
    BOOST_REQUIRE(endpoint->wait_connected(2s));
    const auto deadline = Clock::now() + 10s;
    auto& guest = endpoint->channel();
    auto& svc = service->channel();
    for (std::uint64_t i = 0; i < 100; ++i) {
      const Signal out = make(i);
      Signal in{};
      BOOST_REQUIRE(retry([&] { return guest.queue(kCmd).insert(&out); }, deadline));
      BOOST_REQUIRE(retry([&] { return svc.queue(kCmd).remove(&in); }, deadline));
      BOOST_REQUIRE(in.seq == i);
      BOOST_REQUIRE(retry([&] { return svc.queue(kRsp).insert(&in); }, deadline));
      BOOST_REQUIRE(retry([&] { return guest.queue(kRsp).remove(&in); }, deadline));
      BOOST_REQUIRE(in.seq == i);
      BOOST_REQUIRE(std::memcmp(in.fill, out.fill, sizeof in.fill) == 0);
    }
    BOOST_TEST(endpoint->connected());
    BOOST_TEST(events.count() == 0u);
  }
};

void mentions(const std::string& reason, const std::string& what) {
  BOOST_TEST(reason.find(what) != std::string::npos, "reason '" << reason << "' should mention '" << what << "'");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(handshake)

// Control: the hand-made handshake and frames are right, so the drops below
// are for what each test breaks. A signal written by hand reaches the guest,
// and the guest's tail comes back.
BOOST_AUTO_TEST_CASE(a_correct_raw_peer_is_accepted_and_signals_flow) {
  Guest g;
  RawPeer peer(g.address());
  const Layout layout = peer.handshake();
  BOOST_REQUIRE(g.endpoint->wait_connected(2s));

  // As the kernel's signalinsert: the head moves to slot 1, the signal goes there.
  const Signal s = make(77);
  const std::uint64_t slot1 = layout.slots[kRsp] + sizeof s;
  peer.send(encoded(tcp::Write{false, slot1, {reinterpret_cast<const std::byte*>(&s), sizeof s}}));
  peer.send(tcp::Index{layout.num_sent(kRsp), 1, layout.head(kRsp), 1});
  Signal in{};
  BOOST_REQUIRE(retry([&] { return g.endpoint->channel().queue(kRsp).remove(&in); }, Clock::now() + 2s));
  BOOST_TEST(in.seq == 77u);

  std::optional<tcp::Frame> f;
  while ((f = peer.next_non_heartbeat()) && !std::holds_alternative<tcp::Index>(*f)) {
  }
  BOOST_REQUIRE_MESSAGE(f, "the guest's tail never came back");
  const auto& ix = std::get<tcp::Index>(*f);
  BOOST_TEST(ix.index_offset == layout.tail(kRsp));
  BOOST_TEST(ix.index == 1u);
  BOOST_TEST(ix.counter == 1u);

  peer.close();
  const auto e = g.events.take(2s);
  BOOST_REQUIRE(e);
  mentions(e->reason, "connection closed");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(garbage_instead_of_init_is_refused) {
  Guest g;
  {
    RawPeer peer(g.address());
    peer.send(text("GET / HTTP/1.1\r\nHost: guest\r\n\r\n"));
    BOOST_TEST(peer.closed_by_guest());
  }
  g.stays_unattached();
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(init_with_major_version_2_is_refused_with_the_version) {
  Guest g;
  {
    RawPeer peer(g.address());
    peer.send(tcp::Init{false, 2, 0, tcp::Side::service, false, false, kName});
    auto f = peer.next();
    BOOST_REQUIRE_MESSAGE(f && std::holds_alternative<tcp::TransportEvent>(*f), "no refusal");
    const auto& ev = std::get<tcp::TransportEvent>(*f);
    BOOST_TEST(static_cast<int>(ev.code) == 0x01);
    mentions(ev.reason, "major version 2");
    BOOST_TEST(peer.closed_by_guest());
  }
  g.stays_unattached();
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(capabilities_that_differ_are_refused_naming_what_differed) {
  Guest g;
  auto refused = [&](tcp::Capabilities caps, const std::string& what) {
    RawPeer peer(g.address());
    peer.init();
    peer.send(caps);
    auto f = peer.next();
    BOOST_REQUIRE_MESSAGE(f && std::holds_alternative<tcp::TransportEvent>(*f), "capabilities accepted: " << what);
    mentions(std::get<tcp::TransportEvent>(*f).reason, what);
    BOOST_TEST(peer.closed_by_guest());
    g.stays_unattached();
  };
  // What the guest's channel really looks like, as CAP would say it.
  const ch::Channel& c = g.endpoint->channel();
  tcp::Capabilities right;
  right.type = kType;
  right.size = c.size();
  right.ch_space_offset = c.header().ch_space_offset;
  for (std::uint32_t q = 0; q < 2; ++q) {
    const ch::SignalQueueHeader qh = c.queue_header(q);
    right.queues.push_back({qh.signal_size, qh.max_slots, qh.sig_base_offset});
  }

  tcp::Capabilities wrong_size = right;
  wrong_size.size += 4096;
  refused(wrong_size, "size " + std::to_string(right.size + 4096) + ", this channel is " + std::to_string(right.size));

  tcp::Capabilities one_queue = right;
  one_queue.queues.pop_back();
  refused(one_queue, "1 queues, this channel has 2");

  tcp::Capabilities more_slots = right;
  more_slots.queues[1].max_slots *= 2;
  refused(more_slots, "queue 1 geometry " + std::to_string(2 * kSlots) + " slots of 64 bytes");

  tcp::Capabilities moved_slots = right;
  moved_slots.queues[0].sig_base_offset += 64;
  refused(moved_slots, "queue 0 geometry");

  tcp::Capabilities other_space = right;
  other_space.ch_space_offset += 8;
  refused(other_space, "ch_space_offset");

  tcp::Capabilities other_type = right;
  other_type.type = ch::Guid::make(1, 2, 3, {4, 5, 6, 7, 8, 9, 10, 11});
  refused(other_type, "channel type");

  // Control: the guest's own numbers are accepted.
  {
    RawPeer peer(g.address());
    const Layout layout = peer.handshake(right);
    BOOST_TEST(layout.size == right.size);
    BOOST_REQUIRE(g.endpoint->wait_connected(2s));
  }
  const auto e = g.events.take(2s);
  BOOST_REQUIRE(e);
  mentions(e->reason, "connection closed");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(after_the_handshake)

BOOST_AUTO_TEST_CASE(garbage_is_a_malformed_frame) {
  Guest g;
  const auto e = g.drop_after([](RawPeer& p, const Layout&) { p.send(text("this is not a frame at all")); });
  mentions(e.reason, "malformed frame");
  mentions(e.reason, "unknown frame kind");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(a_length_of_4_GiB_is_a_malformed_frame) {
  Guest g;
  const auto e = g.drop_after([](RawPeer& p, const Layout&) {
    p.send(Bytes{std::byte{0x80}, std::byte{0x10}, std::byte{0}, std::byte{0}, std::byte{0xFF}, std::byte{0xFF},
                 std::byte{0xFF}, std::byte{0xFF}});
  });
  mentions(e.reason, "malformed frame");
  mentions(e.reason, "frame length 4294967295 exceeds");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(a_write_outside_the_channel_is_refused) {
  Guest g;
  // Across the end, and at an offset where offset + length wraps around.
  auto e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(write_frame(l.size - 4, 8)); });
  mentions(e.reason, "outside the channel");
  e = g.drop_after([](RawPeer& p, const Layout&) { p.send(write_frame(~std::uint64_t{0} - 3, 8)); });
  mentions(e.reason, "outside the channel");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(a_write_touching_a_queue_header_is_refused) {
  Guest g;
  // The service's own queue: its head may move only by INDEX.
  auto e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(write_frame(l.head(kRsp), 4)); });
  mentions(e.reason, "queue 1's header");
  // A write from the channel header that runs one byte into queue 0's.
  e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(write_frame(l.header[kCmd] - 8, 9)); });
  mentions(e.reason, "queue 0's header");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(a_write_over_the_channel_identity_is_refused) {
  Guest g;
  // Rewriting type, size or signature would poison every later attach.
  auto e = g.drop_after([](RawPeer& p, const Layout&) { p.send(write_frame(0, 64)); });
  mentions(e.reason, "identity fields");
  e = g.drop_after([](RawPeer& p, const Layout&) { p.send(write_frame(95, 1)); });  // last byte of zone_guid
  mentions(e.reason, "identity fields");
  g.good_attach_streams();  // still announces and validates as the original type
}

BOOST_AUTO_TEST_CASE(a_write_into_the_guests_slots_is_refused) {
  Guest g;
  auto e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(write_frame(l.slots[kCmd], 64)); });
  mentions(e.reason, "slots of queue 0");
  // The last byte of the guest's slots.
  e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(write_frame(l.slots[kCmd] + l.slots_bytes[kCmd] - 1, 1)); });
  mentions(e.reason, "slots of queue 0");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(an_index_at_or_past_max_slots_is_refused) {
  Guest g;
  const auto e = g.drop_after([](RawPeer& p, const Layout& l) {
    p.send(tcp::Index{l.num_sent(kRsp), 1, l.head(kRsp), l.max_slots[kRsp]});
  });
  mentions(e.reason, "index " + std::to_string(kSlots) + " >= max_slots " + std::to_string(kSlots));
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(an_index_the_peer_does_not_own_is_refused) {
  Guest g;
  // Queue 0's head belongs to the guest, which produces queue 0.
  auto e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(tcp::Index{l.num_sent(kCmd), 1, l.head(kCmd), 1}); });
  mentions(e.reason, "not one the peer owns");
  // The right index with some other counter (here: anywhere in the data area).
  e = g.drop_after([](RawPeer& p, const Layout& l) { p.send(tcp::Index{l.size - 8, 1, l.head(kRsp), 1}); });
  mentions(e.reason, "not one the peer owns");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(half_a_frame_then_close_is_a_closed_connection) {
  Guest g;
  const auto e = g.drop_after([](RawPeer& p, const Layout& l) {
    const Bytes whole = write_frame(l.slots[kRsp], 64);
    p.send(Bytes(whole.begin(), whole.begin() + 20));
    p.close();
  });
  mentions(e.reason, "connection closed");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_CASE(a_reset_connection_is_partner_failed) {
  Guest g;
  const auto e = g.drop_after([](RawPeer& p, const Layout&) { p.reset(); });
  mentions(e.reason, "reset");
  g.good_attach_streams();
}

BOOST_AUTO_TEST_SUITE_END()
