// vnic end to end on one host: guests (chipset, bus, visornic, each created
// through the real command partition) and the IO partition (one vnic backend
// per guest, all on one software switch) share one vnic channel per guest in
// process memory. Frames carry sequence numbers and a pattern, so loss,
// duplication, reordering, misrouting and corruption all show.
#define BOOST_TEST_MODULE actors_vnic
#include <boost/test/unit_test.hpp>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "actors/drivers/visornic.hpp"
#include "actors/service/software_switch.hpp"
#include "actors/service/vnic_backend.hpp"
#include "channel/end/channel_end.hpp"
#include "channel/channel_types.hpp"
#include "tests/actors/guest_harness.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
namespace io = visorlab::channel::io;
namespace svc = visorlab::service;
using visorlab::command::CommandPartition;
using visorlab::drivers::Mac;
using visorlab::drivers::VisorNic;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t kEtherType = 0x88B5;  // IEEE local experimental
constexpr Mac kBroadcast{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
constexpr auto kPatience = 10s;  // every loop below also stops here

Mac mac_of(int i) { return {0x02, 0x00, 0x00, 0x00, 0x00, static_cast<std::uint8_t>(0x10 + i)}; }

std::byte pattern(std::uint64_t seq, std::size_t i) { return static_cast<std::byte>(seq * 131 + i * 7); }

// dst, src, ethertype, seq (8 bytes), then a pattern of seq and position.
std::vector<std::byte> make_frame(const Mac& dst, const Mac& src, std::uint64_t seq, std::size_t size = 128) {
  std::vector<std::byte> f(std::max<std::size_t>(size, 22));
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(f.data() + 6, src.data(), 6);
  f[12] = static_cast<std::byte>(kEtherType >> 8);
  f[13] = static_cast<std::byte>(kEtherType & 0xFF);
  std::memcpy(f.data() + 14, &seq, sizeof seq);
  for (std::size_t i = 22; i < f.size(); ++i) f[i] = pattern(seq, i);
  return f;
}

// Varied sizes from the minimum to a full 1500-byte MTU frame.
std::size_t size_of(std::uint64_t seq) { return 60 + (seq * 37) % (1514 - 60 + 1); }

struct Seen {
  Mac dst{}, src{};
  std::uint64_t seq = 0;
  std::size_t size = 0;
  bool intact = false;
};

Seen parse(std::span<const std::byte> f) {
  Seen s;
  s.size = f.size();
  if (f.size() < 22) return s;
  std::memcpy(s.dst.data(), f.data(), 6);
  std::memcpy(s.src.data(), f.data() + 6, 6);
  std::memcpy(&s.seq, f.data() + 14, sizeof s.seq);
  s.intact = f[12] == static_cast<std::byte>(kEtherType >> 8) && f[13] == static_cast<std::byte>(kEtherType & 0xFF);
  for (std::size_t i = 22; i < f.size() && s.intact; ++i) s.intact = f[i] == pattern(s.seq, i);
  return s;
}

// A channel end over process memory: the guest's own mapping of the region,
// so its pause guard can mprotect it without touching the IO partition's.
class MemoryEnd final : public ch::ChannelEnd {
 public:
  explicit MemoryEnd(ch::Channel channel) : channel_(std::move(channel)) {}
  ch::Channel& channel() override { return channel_; }
  std::string_view backing() const override { return "memory"; }

 private:
  ch::Channel channel_;
};

ch::ChannelSpec vnic_spec() { return ch::type_of(ch::ChannelKind::vnic).spec(); }

// The IO partition's side of guest i's vnic: the channel (configured with the
// guest's MAC before the guest probes) and its backend.
struct Port {
  explicit Port(int i)
      : region(ch::Region::anonymous(ch::channel_size(vnic_spec()))), io(ch::Channel::format(region.map(), vnic_spec())) {
    BOOST_REQUIRE(visorlab::channel::io::write_vnic_config(io, mac_of(i)) == 0);
    backend = std::make_unique<svc::VnicBackend>(io);
  }
  ch::Region region;
  ch::Channel io;
  std::unique_ptr<svc::VnicBackend> backend;
};

// One guest: its controlvm pair, chipset, bus and visornic; device vbus2:dev0
// created by the command partition.
struct Guest {
  explicit Guest(ch::Region& region)
      : bus([&region](const cvm::CreateDevice&, const ch::Expect& e) {
          return std::make_unique<MemoryEnd>(ch::Channel::attach(region.map(), e));
        }),
        chipset(controlvm.guest_end, bus),
        commands(controlvm.command_end) {
    bus.register_driver(nic);
    nic.on_receive([this](visorlab::bus::Device&, std::span<const std::byte> f) { got.push_back(parse(f)); });
    BOOST_REQUIRE(command(cvm::Id::bus_create, CommandPartition::bus(2)) == 0u);  // bus 2: the IO partition's
    BOOST_REQUIRE(command(cvm::Id::device_create, CommandPartition::device(2, 0, ch::guids::vnic)) == 0u);
    device = bus.find(2, 0);
    BOOST_REQUIRE(device);
    BOOST_REQUIRE(device->driver_name() == "visornic");
  }

  std::uint32_t command(cvm::Id id, cvm::Packet p) { return visorlab::test::run_command(commands, chipset, id, p).status; }
  std::uint32_t change_state(std::uint16_t state) {
    return command(cvm::Id::device_changestate, CommandPartition::change_state(2, 0, state));
  }
  int transmit(const Mac& dst, std::uint64_t seq, std::size_t size = 128) {
    return nic.transmit(*device, make_frame(dst, mac(), seq, size));
  }
  Mac mac() const { return VisorNic::mac(*device); }
  visorlab::drivers::NicCounts counts() const { return VisorNic::counts(*device); }
  bool link_up() const { return counts().link_up; }
  std::uint64_t violations() { return device->channel()->guard().violations(); }
  // Sequence numbers received from `src`, in arrival order; false in `intact` if any was corrupt or misaddressed.
  std::vector<std::uint64_t> seqs_from(const Mac& src, bool* intact = nullptr) const {
    std::vector<std::uint64_t> out;
    for (const auto& s : got) {
      if (s.src != src) continue;
      if (intact && (!s.intact || (s.dst != mac() && s.dst != kBroadcast))) *intact = false;
      out.push_back(s.seq);
    }
    return out;
  }

  visorlab::test::ControlvmPair controlvm;
  VisorNic nic;  // drivers outlive the bus that calls them
  visorlab::bus::VirtualBus bus;
  visorlab::chipset::Chipset chipset;
  CommandPartition commands;
  visorlab::bus::Device* device = nullptr;
  std::vector<Seen> got;
};

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = first; i < last; ++i) v.push_back(i);
  return v;
}

struct Flow {
  Guest* from;
  Mac dst;
  std::uint64_t next, end;
};

struct World {
  explicit World(int n = 2) : sw("sw0") {
    for (int i = 0; i < n; ++i) {
      ports.push_back(std::make_unique<Port>(i));
      sw.attach(*ports.back()->backend);
    }
    for (int i = 0; i < n; ++i) guests.push_back(std::make_unique<Guest>(ports[i]->region));
    BOOST_REQUIRE(pump([&] { return all_settled(); }));
  }

  Guest& g(int i) { return *guests[i]; }
  svc::VnicBackend& b(int i) { return *ports[i]->backend; }

  // Every link up, every receive buffer with its backend, nothing in flight.
  bool all_settled() {
    for (std::size_t i = 0; i < guests.size(); ++i)
      if (!g(i).link_up() || b(i).posted() != io::kVnicRcvBufs || VisorNic::outstanding(*g(i).device) != 0) return false;
    return true;
  }

  // Every guest, then every backend, polls once.
  void round() {
    for (auto& guest : guests) guest->bus.poll();
    for (auto& port : ports) port->backend->poll();
  }

  // Rounds until `done` holds; bounded in rounds and in time.
  template <typename Pred>
  bool pump(Pred done, int rounds = 20000) {
    const auto deadline = Clock::now() + kPatience;
    for (int i = 0; i < rounds && Clock::now() < deadline; ++i) {
      if (done()) return true;
      round();
    }
    return done();
  }

  // Sends every flow's frames [next, end), interleaved, a round whenever all
  // are throttled; bounded. False if a transmit failed or it got stuck.
  bool stream(std::vector<Flow> flows) {
    const auto deadline = Clock::now() + kPatience;
    for (int i = 0; i < 200000 && Clock::now() < deadline; ++i) {
      bool left = false;
      for (auto& f : flows) {
        for (int burst = 0; burst < 64 && f.next < f.end; ++burst) {
          const int rc = f.from->transmit(f.dst, f.next, size_of(f.next));
          if (rc == -EBUSY || rc == -EAGAIN) break;
          if (rc != 0) return false;
          ++f.next;
        }
        left = left || f.next < f.end;
      }
      if (!left) return true;
      round();
    }
    return false;
  }

  std::vector<std::unique_ptr<Port>> ports;
  svc::SoftwareSwitch sw;  // after the ports: destroyed (detaching them) first
  std::vector<std::unique_ptr<Guest>> guests;
};

io::CmdRsp net(io::NetType type, std::uint64_t buf) {
  io::CmdRsp c{};
  c.cmdtype = io::CmdType::net;
  c.net.type = type;
  c.net.buf = buf;
  return c;
}

}  // namespace

BOOST_AUTO_TEST_CASE(probe_reads_the_mac_posts_every_buffer_and_the_link_comes_up_on_the_ack) {
  World w;  // pumps until settled, or fails
  for (int i = 0; i < 2; ++i) {
    BOOST_TEST(w.g(i).mac() == mac_of(i));
    BOOST_TEST(w.b(i).posted() == io::kVnicRcvBufs);
    BOOST_TEST(w.b(i).rx_enabled());
    BOOST_TEST(w.b(i).counts().bad_posts == 0u);
    BOOST_TEST(w.g(i).counts().bad == 0u);
    BOOST_TEST(w.sw.lookup(mac_of(i)) == &w.b(i));
  }
}

BOOST_AUTO_TEST_CASE(frames_flow_both_ways_none_lost_duplicated_or_reordered) {
  World w;
  constexpr std::uint64_t kFrames = 3000;
  const Mac m0 = w.g(0).mac(), m1 = w.g(1).mac();
  BOOST_REQUIRE(w.stream({{&w.g(0), m1, 0, kFrames}, {&w.g(1), m0, 0, kFrames}}));
  BOOST_REQUIRE(w.pump([&] { return w.g(1).got.size() == kFrames && w.g(0).got.size() == kFrames && w.all_settled(); }));

  bool intact0 = true, intact1 = true;
  BOOST_TEST(w.g(1).seqs_from(m0, &intact1) == range(0, kFrames));
  BOOST_TEST(w.g(0).seqs_from(m1, &intact0) == range(0, kFrames));
  BOOST_TEST(intact0);
  BOOST_TEST(intact1);
  for (std::uint64_t k = 0; k < kFrames; ++k) BOOST_TEST_REQUIRE(w.g(1).got[k].size == size_of(k));
  for (int i = 0; i < 2; ++i) {
    const auto c = w.g(i).counts();
    BOOST_TEST(c.sent == kFrames);
    BOOST_TEST(c.xmit_done == kFrames);
    BOOST_TEST(c.xmit_errors == 0u);
    BOOST_TEST(c.received == kFrames);
    BOOST_TEST(c.dropped == 0u);
    BOOST_TEST(c.bad == 0u);
    BOOST_TEST(w.b(i).counts().xmits == kFrames);
    BOOST_TEST(w.b(i).counts().delivered == kFrames);
  }
  BOOST_TEST(w.sw.counts().unicast == 2 * kFrames);
  BOOST_TEST(w.sw.counts().dropped() == 0u);
}

BOOST_AUTO_TEST_CASE(short_frames_are_padded_and_bad_sizes_refused) {
  World w;
  BOOST_TEST(w.g(0).transmit(w.g(1).mac(), 7, 22) == 0);  // header + seq only
  BOOST_REQUIRE(w.pump([&] { return w.g(1).got.size() == 1u; }));
  BOOST_TEST(w.g(1).got[0].size == visorlab::drivers::kEthMinFrame);
  BOOST_TEST(w.g(1).got[0].seq == 7u);
  std::vector<std::byte> runt(13), jumbo(1515);
  BOOST_TEST(w.g(0).nic.transmit(*w.g(0).device, runt) == -EINVAL);
  BOOST_TEST(w.g(0).nic.transmit(*w.g(0).device, jumbo) == -EMSGSIZE);
  BOOST_TEST(w.g(0).counts().sent == 1u);
}

BOOST_AUTO_TEST_CASE(unicast_reaches_only_its_port_broadcast_floods_unknown_is_dropped) {
  World w(3);
  const Mac m0 = w.g(0).mac(), m1 = w.g(1).mac();
  BOOST_REQUIRE(w.stream({{&w.g(0), m1, 0, 10}}));
  BOOST_REQUIRE(w.stream({{&w.g(0), kBroadcast, 100, 105}}));
  BOOST_REQUIRE(w.pump([&] { return w.g(1).got.size() == 15u && w.g(2).got.size() == 5u && w.all_settled(); }));
  bool intact = true;
  std::vector<std::uint64_t> want = range(0, 10);
  for (std::uint64_t s = 100; s < 105; ++s) want.push_back(s);
  BOOST_TEST(w.g(1).seqs_from(m0, &intact) == want);
  BOOST_TEST(w.g(2).seqs_from(m0, &intact) == range(100, 105));  // the broadcasts only
  BOOST_TEST(intact);
  BOOST_TEST(w.g(0).got.empty());  // a flood skips its own port
  BOOST_TEST(w.sw.counts().flooded == 5u);
  BOOST_TEST(w.sw.counts().delivered == 10u + 2 * 5u);

  // Unknown unicast: dropped at the switch, counted, seen by nobody.
  const Mac nobody{0x02, 0, 0, 0, 0, 0x99};
  BOOST_TEST(w.g(0).transmit(nobody, 200) == 0);
  BOOST_REQUIRE(w.pump([&] { return w.sw.counts().unknown == 1u && w.all_settled(); }));
  BOOST_TEST(w.g(1).got.size() == 15u);
  BOOST_TEST(w.g(2).got.size() == 5u);

  // A source address is learned: a reply to it goes to the port it came from
  // (where the guest's own filter drops it: not its MAC).
  const Mac alias{0x02, 0, 0, 0, 0, 0x42};
  auto f = make_frame(m0, alias, 300);
  BOOST_TEST(w.g(2).nic.transmit(*w.g(2).device, f) == 0);
  BOOST_REQUIRE(w.pump([&] { return w.g(0).got.size() == 1u; }));
  BOOST_TEST(w.sw.lookup(alias) == &w.b(2));
  const auto delivered2 = w.b(2).counts().delivered;
  BOOST_TEST(w.g(0).transmit(alias, 301) == 0);
  BOOST_REQUIRE(w.pump([&] { return w.g(2).counts().dropped == 1u; }));
  BOOST_TEST(w.b(2).counts().delivered == delivered2 + 1);
  BOOST_TEST(w.b(1).counts().delivered == 15u);
  // Learning never takes over a port's configured address.
  BOOST_TEST(w.g(2).nic.transmit(*w.g(2).device, make_frame(m0, m1, 302)) == 0);
  BOOST_REQUIRE(w.pump([&] { return w.g(0).got.size() == 2u; }));
  BOOST_TEST(w.sw.lookup(m1) == &w.b(1));
}

BOOST_AUTO_TEST_CASE(throttle_engages_at_the_upper_threshold_and_releases_at_the_lower) {
  World w;
  auto& g0 = w.g(0);
  const auto limits = VisorNic::limits(*g0.device);
  // Linux visornic's formula for 64 receive buffers.
  BOOST_TEST(limits.rcv_bufs == 64u);
  BOOST_TEST(limits.max_outstanding == 19u);
  BOOST_TEST(limits.upper == 18u);
  BOOST_TEST(limits.lower == 9u);

  const Mac m1 = w.g(1).mac();
  std::uint64_t seq = 0;
  int rc = 0;
  for (int i = 0; i < 100 && (rc = g0.transmit(m1, seq)) == 0; ++i) ++seq;  // the backend does not run
  BOOST_TEST(rc == -EBUSY);
  BOOST_TEST(seq == limits.upper);
  BOOST_TEST(VisorNic::outstanding(*g0.device) == limits.upper);
  BOOST_TEST(g0.counts().upper_hits == 1u);
  BOOST_TEST(g0.counts().throttled == 1u);
  BOOST_TEST(g0.transmit(m1, seq) == -EBUSY);
  BOOST_TEST(g0.counts().throttled == 2u);

  // 5 done: 13 outstanding, above lower — still stopped.
  BOOST_TEST(w.b(0).poll(5) == 5u);
  g0.bus.poll();
  BOOST_TEST(VisorNic::outstanding(*g0.device) == 13u);
  BOOST_TEST(g0.transmit(m1, seq) == -EBUSY);
  BOOST_TEST(g0.counts().lower_hits == 0u);
  // 4 more: 9 outstanding, at lower — the queue restarts.
  BOOST_TEST(w.b(0).poll(4) == 4u);
  g0.bus.poll();
  BOOST_TEST(g0.counts().lower_hits == 1u);
  BOOST_TEST(g0.transmit(m1, seq) == 0);
  ++seq;
  BOOST_TEST(g0.counts().throttled == 3u);

  // Nothing was lost to the throttle.
  BOOST_REQUIRE(w.pump([&] { return w.g(1).got.size() == seq && w.all_settled(); }));
  BOOST_TEST(w.g(1).seqs_from(g0.mac()) == range(0, seq));
}

BOOST_AUTO_TEST_CASE(pause_stops_the_driver_touching_the_channel_and_resume_continues) {
  World w;
  auto &g0 = w.g(0), &g1 = w.g(1);
  const Mac m0 = g0.mac(), m1 = g1.mac();
  BOOST_REQUIRE(w.stream({{&g0, m1, 0, 100}, {&g1, m0, 0, 100}}));
  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == 100u && g0.got.size() == 100u && w.all_settled(); }));

  // g1 has 10 transmits in flight when it pauses.
  for (std::uint64_t s = 100; s < 110; ++s) BOOST_REQUIRE(g1.transmit(m0, s) == 0);
  BOOST_TEST(g1.change_state(cvm::segment::standby) == 0u);
  BOOST_TEST(g1.device->channel()->paused());
  BOOST_TEST(!g1.link_up());
  BOOST_TEST(g1.transmit(m0, 999) == -EAGAIN);  // refused before any touch
  BOOST_TEST(g1.counts().down == 1u);

  // g0 keeps sending to g1: its 64 old posts fill, the rest find no buffer.
  BOOST_REQUIRE(w.stream({{&g0, m1, 100, 200}}));
  BOOST_REQUIRE(w.pump([&] { return VisorNic::outstanding(*g0.device) == 0 && g0.got.size() == 110u; }));
  for (int i = 0; i < 50; ++i) w.round();  // the paused driver is not polled
  BOOST_TEST(g1.violations() == 0u);
  BOOST_TEST(w.sw.counts().no_buffer == 0u);  // the port holds what found no buffer
  BOOST_TEST(g0.seqs_from(m1) == range(0, 110));  // what g1 sent before the pause still arrived
  BOOST_TEST(g1.got.size() == 100u);

  BOOST_TEST(g1.change_state(cvm::segment::running) == 0u);
  BOOST_REQUIRE(w.pump([&] { return w.all_settled(); }));
  const auto c = g1.counts();
  BOOST_TEST(c.stale == io::kVnicRcvBufs + 10u);   // the receives into old posts, the late XMIT_DONEs
  BOOST_TEST(c.dropped == 100u);  // frames of the fault window: old posts, then held ones landing in them
  BOOST_TEST(c.bad == 0u);

  BOOST_REQUIRE(w.stream({{&g0, m1, 200, 300}, {&g1, m0, 200, 300}}));
  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == 200u && g0.got.size() == 210u && w.all_settled(); }));
  bool intact = true;
  std::vector<std::uint64_t> want1 = range(0, 100), tail = range(200, 300);
  want1.insert(want1.end(), tail.begin(), tail.end());
  std::vector<std::uint64_t> want0 = range(0, 110);
  want0.insert(want0.end(), tail.begin(), tail.end());
  BOOST_TEST(g1.seqs_from(m0, &intact) == want1);  // only the paused window is missing
  BOOST_TEST(g0.seqs_from(m1, &intact) == want0);
  BOOST_TEST(intact);
  BOOST_TEST(g1.violations() == 0u);
  BOOST_TEST(g0.violations() == 0u);
}

BOOST_AUTO_TEST_CASE(a_second_pause_or_resume_is_refused) {
  World w;
  BOOST_TEST(w.g(0).change_state(cvm::segment::standby) == 0u);
  BOOST_TEST(w.g(0).change_state(cvm::segment::standby) != 0u);
  BOOST_TEST(w.g(0).change_state(cvm::segment::running) == 0u);
  BOOST_TEST(w.g(0).change_state(cvm::segment::running) != 0u);
  BOOST_REQUIRE(w.pump([&] { return w.all_settled(); }));
}

BOOST_AUTO_TEST_CASE(link_status_changes_reach_the_driver) {
  World w;
  auto &g0 = w.g(0), &g1 = w.g(1);
  w.b(1).connect_status(false);
  BOOST_REQUIRE(w.pump([&] { return !g1.link_up(); }));
  BOOST_TEST(g1.transmit(g0.mac(), 1) == -EAGAIN);
  BOOST_TEST(g0.transmit(g1.mac(), 1) == 0);  // g0's link is fine; g1's port drops it
  BOOST_REQUIRE(w.pump([&] { return w.sw.counts().link_down == 1u; }));
  BOOST_TEST(g1.got.empty());

  w.b(1).connect_status(true);
  BOOST_REQUIRE(w.pump([&] { return g1.link_up(); }));
  BOOST_TEST(g0.transmit(g1.mac(), 2) == 0);
  BOOST_TEST(g1.transmit(g0.mac(), 2) == 0);
  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == 1u && g0.got.size() == 1u; }));
  BOOST_TEST(g1.got[0].seq == 2u);
  BOOST_TEST(g0.got[0].seq == 2u);
}

BOOST_AUTO_TEST_CASE(the_backend_rejects_hostile_lengths_and_offsets) {
  World w;
  auto& g0 = w.g(0);
  auto& cmd_q = g0.device->channel()->queue(io::to_iopart);
  const std::uint64_t size = g0.device->channel()->size();
  const std::uint64_t last_page = size / io::kVnicPageSize - 1;  // a real data page
  const std::uint64_t frames_before = w.sw.counts().frames;

  auto xmit = [&](std::int32_t len, std::int32_t frags, io::PhysInfo frag) {
    io::CmdRsp c = net(io::NetType::xmit, 0xBAD0000 + len);  // a cookie the driver never issued
    c.net.xmt.len = len;
    c.net.xmt.num_frags = frags;
    for (auto& f : c.net.xmt.frags) f = frag;
    return c;
  };
  const io::PhysInfo good{last_page, 0, 100};
  const std::vector<io::CmdRsp> bad = {
      xmit(-1, 1, good),                                    // negative length
      xmit(1 << 30, 1, good),                               // longer than any frame
      xmit(10, 1, {last_page, 0, 10}),                      // shorter than an Ethernet header
      xmit(100, 0, good),                                   // no frags
      xmit(100, 65, good),                                  // more frags than the list holds
      xmit(100, 1, {0, 0, 100}),                            // the channel header
      xmit(100, 1, {1472 / io::kVnicPageSize, 1472 % io::kVnicPageSize, 100}),  // the slots
      xmit(100, 1, {last_page + 1, 0, 100}),                // past the channel's end
      xmit(100, 1, {(std::uint64_t{1} << 52) + last_page, 0, 100}),  // wraps around onto a real page
      xmit(100, 1, {last_page, 4000, 100}),                 // crosses the page
      xmit(100, 1, {last_page, 0, 60}),                     // frags do not add up to len
      xmit(100, 2, {last_page, 0, 60}),                     // nor here (120)
  };
  for (const auto& c : bad) BOOST_REQUIRE(cmd_q.insert_signal(c) == 0);
  // Posts: header, empty, past the end, crossing the page.
  for (io::PhysInfo f : {io::PhysInfo{0, 0, 4032}, io::PhysInfo{last_page, 0, 0}, io::PhysInfo{last_page + 5, 0, 4032},
                         io::PhysInfo{last_page, 100, 4032}}) {
    io::CmdRsp p = net(io::NetType::rcv_post, 7);
    p.net.rcvpost.frag = f;
    p.net.rcvpost.unique_num = 12345;  // would otherwise make the backend forget the real posts
    BOOST_REQUIRE(cmd_q.insert_signal(p) == 0);
  }
  BOOST_TEST(w.b(0).poll() == bad.size() + 4);
  BOOST_TEST(w.b(0).counts().bad_xmits == bad.size());
  BOOST_TEST(w.b(0).counts().bad_posts == 4u);
  BOOST_TEST(w.b(0).counts().xmits == 0u);
  BOOST_TEST(w.b(0).posted() == io::kVnicRcvBufs);  // the real posts are untouched
  BOOST_TEST(w.sw.counts().frames == frames_before);  // nothing reached the switch
  // Each bad XMIT was answered with an error, under a cookie the driver does not know.
  auto& rsp_q = w.ports[0]->io.queue(io::from_iopart);
  BOOST_REQUIRE(rsp_q.pending() == bad.size());
  std::array<std::byte, io::kSignalSize> slot{};  // peek copies a whole slot
  BOOST_REQUIRE(rsp_q.peek(0, slot.data()) == 0);
  io::CmdRsp answer{};
  std::memcpy(&answer, slot.data(), sizeof answer);
  BOOST_TEST((answer.net.type == io::NetType::xmit_done));
  const std::uint32_t result = answer.net.xmtdone.xmt_done_result;
  BOOST_TEST(result == svc::kXmitInvalid);
  g0.bus.poll();
  BOOST_TEST(g0.counts().bad == bad.size());

  // And the device still works.
  BOOST_TEST(g0.transmit(w.g(1).mac(), 1) == 0);
  BOOST_REQUIRE(w.pump([&] { return w.g(1).got.size() == 1u && w.all_settled(); }));
  BOOST_TEST(w.g(1).got[0].intact);
}

BOOST_AUTO_TEST_CASE(the_driver_rejects_hostile_receives_from_the_io_partition) {
  World w;
  auto& g1 = w.g(1);
  auto& rsp_q = w.ports[1]->io.queue(io::from_iopart);  // the IO partition's end, written by "it"
  auto rcv = [&](std::uint32_t len, std::uint8_t n, std::uint64_t cookie, std::uint64_t unique = 1) {
    io::CmdRsp r = net(io::NetType::rcv, cookie);
    r.net.rcv.rcv_done_len = len;
    r.net.rcv.numrcvbufs = n;
    for (std::size_t i = 0; i < io::kMaxNetRcvChain; ++i) r.net.rcv.rcvbuf[i] = cookie;
    r.net.rcv.unique_num = unique;
    return r;
  };
  io::CmdRsp scsi{};
  scsi.cmdtype = io::CmdType::scsi;
  io::CmdRsp odd_type = net(static_cast<io::NetType>(99), 0);
  const std::vector<io::CmdRsp> bad = {
      rcv(100, 0, 0),          // no buffers
      rcv(100, 6, 0),          // a longer chain than allowed
      rcv(100, 1, 1000),       // not one of ours
      rcv(100, 1, ~0ull),      // nor this
      rcv(5000, 1, 0),         // longer than the buffers it names
      rcv(~0u, 1, 4),          // 4 GiB: refused before anything is allocated for it
      rcv(5, 1, 1),            // shorter than an Ethernet header
      rcv(100, 2, 2),          // the same buffer twice in one chain
      net(io::NetType::xmit_done, 0xDEAD),  // a transmit never sent
      scsi,                    // not a net response
      odd_type,                // no such net type
  };
  for (const auto& r : bad) BOOST_REQUIRE(rsp_q.insert_signal(r) == 0);
  BOOST_REQUIRE(rsp_q.insert_signal(rcv(100, 1, 3, 77)) == 0);  // another incarnation's
  io::CmdRsp ack = net(io::NetType::rcv_enbdis_ack, 0);
  ack.net.enbdis.context = 77;  // not our enable
  BOOST_REQUIRE(rsp_q.insert_signal(ack) == 0);

  g1.bus.poll();
  const auto c = g1.counts();
  BOOST_TEST(c.bad == bad.size());
  BOOST_TEST(c.stale == 2u);
  BOOST_TEST(c.received == 0u);
  BOOST_TEST(g1.got.empty());
  BOOST_TEST(c.link_up);

  // Still works (the buffers the bad receives named were posted again).
  BOOST_REQUIRE(w.stream({{&w.g(0), g1.mac(), 0, 20}}));
  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == 20u; }));
  bool intact = true;
  BOOST_TEST(g1.seqs_from(w.g(0).mac(), &intact) == range(0, 20));
  BOOST_TEST(intact);
}

BOOST_AUTO_TEST_CASE(frames_for_a_guest_with_receive_disabled_are_dropped_and_counted) {
  World w;
  auto& cmd_q = w.g(1).device->channel()->queue(io::to_iopart);
  io::CmdRsp off = net(io::NetType::rcv_enbdis, 0);
  off.net.enbdis.enable = 0;
  BOOST_REQUIRE(cmd_q.insert_signal(off) == 0);
  w.b(1).poll();
  BOOST_TEST(!w.b(1).rx_enabled());
  BOOST_TEST(w.g(0).transmit(w.g(1).mac(), 1) == 0);
  BOOST_REQUIRE(w.pump([&] { return w.sw.counts().disabled == 1u; }));
  BOOST_TEST(w.g(1).got.empty());
  BOOST_TEST(w.b(1).counts().rx_dropped == 1u);
}

BOOST_AUTO_TEST_CASE(ports_detach_and_a_recovered_backend_carries_on) {
  World w;
  auto &g0 = w.g(0), &g1 = w.g(1);
  w.sw.detach(w.b(1));
  BOOST_TEST(!w.sw.attached(w.b(1)));
  BOOST_TEST(w.sw.lookup(g1.mac()) == nullptr);
  BOOST_TEST(g0.transmit(g1.mac(), 1) == 0);
  BOOST_TEST(g1.transmit(g0.mac(), 1) == 0);  // answered, goes nowhere
  BOOST_REQUIRE(w.pump([&] { return w.sw.counts().unknown == 1u && w.all_settled(); }));
  BOOST_TEST(g1.got.empty());
  BOOST_TEST(g0.got.empty());
  w.sw.attach(w.b(1));

  // Recovery of the IO partition: pause the guest, a new backend on the same
  // channel (the old one detaches as it goes), resume.
  BOOST_TEST(g1.change_state(cvm::segment::standby) == 0u);
  w.ports[1]->backend.reset();
  BOOST_TEST(w.sw.ports() == 1u);
  w.ports[1]->backend = std::make_unique<svc::VnicBackend>(w.ports[1]->io);
  w.sw.attach(w.b(1));
  BOOST_TEST(g1.change_state(cvm::segment::running) == 0u);
  BOOST_REQUIRE(w.pump([&] { return w.all_settled(); }));
  BOOST_REQUIRE(w.stream({{&g0, g1.mac(), 10, 60}, {&g1, g0.mac(), 10, 60}}));
  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == 50u && g0.got.size() == 50u; }));
  BOOST_TEST(g1.seqs_from(g0.mac()) == range(10, 60));
  BOOST_TEST(g0.seqs_from(g1.mac()) == range(10, 60));
  BOOST_TEST(g1.violations() == 0u);
}

// A crashed IO partition takes transmits off the queue and never answers them.
// Their buffers come back at the first answer after resume (answers are in
// order); without that, a few crashes would leave the guest no buffer to send.
BOOST_AUTO_TEST_CASE(buffers_of_transmits_a_crashed_io_partition_took_come_back) {
  World w;
  auto &g0 = w.g(0), &g1 = w.g(1);
  constexpr int kCrashes = 8;  // 8 × 10 taken > the 64 transmit buffers
  std::uint64_t seq = 0;
  for (int crash = 0; crash < kCrashes; ++crash) {
    for (int i = 0; i < 10; ++i) BOOST_REQUIRE(g1.transmit(g0.mac(), 1000 + i) == 0);
    // The IO partition takes them, then dies without an answer.
    io::CmdRsp taken{};
    int took = 0;
    while (w.ports[1]->io.queue(io::to_iopart).remove_signal(taken) == 0) took += taken.net.type == io::NetType::xmit;
    BOOST_REQUIRE(took == 10);
    BOOST_REQUIRE(g1.change_state(cvm::segment::standby) == 0u);
    w.ports[1]->backend = std::make_unique<svc::VnicBackend>(w.ports[1]->io);
    w.sw.attach(w.b(1));
    BOOST_REQUIRE(g1.change_state(cvm::segment::running) == 0u);
    BOOST_REQUIRE(w.pump([&] { return w.all_settled(); }));
    BOOST_REQUIRE(w.stream({{&g1, g0.mac(), seq, seq + 5}}));
    seq += 5;
    BOOST_REQUIRE(w.pump([&] { return g0.got.size() == seq && w.all_settled(); }));
    BOOST_TEST(g1.counts().reclaimed == 10u * (crash + 1));
  }
  BOOST_TEST(g0.seqs_from(g1.mac()) == range(0, seq));
  BOOST_TEST(g1.counts().bad == 0u);
  BOOST_TEST(g1.violations() == 0u);
}

// A port holds frames while its guest has no buffer posted. When the guest
// re-posts while the hold queue is full, the next frame used to go straight
// into a new buffer, ahead of every held one (io_bench saw frame N+256 where
// N was due). Held frames go first; a frame arriving at a full queue is
// dropped, counted, never placed ahead.
BOOST_AUTO_TEST_CASE(a_frame_never_overtakes_the_frames_a_port_holds) {
  World w;
  auto &g0 = w.g(0), &g1 = w.g(1);
  const Mac m1 = g1.mac();
  const std::uint64_t posts = io::kVnicRcvBufs, full = posts + 256;  // 256: the backend's hold queue

  // g1 is not polled: its buffers fill, then its port holds 256 frames.
  std::uint64_t seq = 0;
  const auto deadline = Clock::now() + kPatience;
  for (int i = 0; i < 20000 && seq < full && Clock::now() < deadline; ++i) {
    while (seq < full && g0.transmit(m1, seq) == 0) ++seq;
    g0.bus.poll();
    w.b(0).poll();
    w.b(1).poll();
  }
  BOOST_REQUIRE(seq == full);
  for (int i = 0; i < 100 && VisorNic::outstanding(*g0.device) != 0; ++i) {
    g0.bus.poll();
    w.b(0).poll();
  }
  BOOST_REQUIRE(w.b(1).held() == 256u);
  BOOST_REQUIRE(w.b(1).posted() == 0u);

  // g1 takes its 64 frames and re-posts; its port takes the posts. Then a
  // frame arrives before the port's next poll.
  for (int i = 0; i < 100 && g1.got.size() < posts; ++i) g1.bus.poll();
  BOOST_REQUIRE(g1.got.size() == posts);
  w.b(1).poll();
  BOOST_REQUIRE(g0.transmit(m1, full) == 0);
  w.b(0).poll();  // the switch hands it to port 1

  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == full + 1 && w.all_settled(); }));
  BOOST_TEST(g1.seqs_from(g0.mac()) == range(0, full + 1));
  BOOST_TEST(g1.counts().dropped == 0u);
  BOOST_TEST(w.b(1).counts().rx_dropped == 0u);
}

// A full hold queue drops the newest frame (a switch port's tail drop),
// counted by the port and the switch; the held frames arrive in order.
BOOST_AUTO_TEST_CASE(a_full_port_drops_the_newest_frame_and_says_so) {
  World w;
  auto &g0 = w.g(0), &g1 = w.g(1);
  const Mac m1 = g1.mac();
  const std::uint64_t full = io::kVnicRcvBufs + 256, sent = full + 5;
  std::uint64_t seq = 0;
  const auto deadline = Clock::now() + kPatience;
  for (int i = 0; i < 20000 && seq < sent && Clock::now() < deadline; ++i) {
    while (seq < sent && g0.transmit(m1, seq) == 0) ++seq;
    g0.bus.poll();
    w.b(0).poll();
    w.b(1).poll();
  }
  BOOST_REQUIRE(seq == sent);
  BOOST_REQUIRE(w.pump([&] { return g1.got.size() == full && w.all_settled(); }));
  BOOST_TEST(g1.seqs_from(g0.mac()) == range(0, full));
  BOOST_TEST(w.b(1).counts().rx_dropped == 5u);
  BOOST_TEST(w.sw.counts().no_buffer == 5u);
  BOOST_TEST(g1.counts().dropped == 0u);  // the driver dropped nothing: the port did
}
