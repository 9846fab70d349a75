#include "actors/drivers/visornic.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

namespace visorlab::drivers {
namespace {

namespace io = channel::io;

constexpr std::array kClaims = {channel::ChannelKind::vnic};
constexpr std::uint64_t kPage = io::kVnicPageSize;
constexpr std::uint32_t kDefaultMtu = 1500;

struct NicState {
  Mac mac{};
  NicLimits limits;
  std::uint64_t rcv_at = 0;   // receive buffer i is the page at rcv_at + i * kPage
  std::uint64_t xmit_at = 0;  // transmit buffer i likewise
  std::vector<bool> posted;   // receive buffer i is with the IO partition
  std::vector<std::uint32_t> free_xmit;
  std::map<std::uint64_t, std::uint32_t> in_flight;  // xmit cookie → buffer, this incarnation
  std::map<std::uint64_t, std::uint32_t> stale;      // xmit cookie → buffer, sent before a pause
  std::uint64_t next_cookie = 1;                     // never reused, so a late XMIT_DONE is recognised
  std::uint64_t incarnation = 1;                     // unique_num of this incarnation's posts
  // The first cookie issued after the last resume (0: never resumed). The IO
  // partition answers transmits in order, so once one of these is answered, a
  // stale transmit still unanswered never will be (a crashed IO partition took
  // it): its buffer comes back then, as visorhba does.
  std::uint64_t first_after_resume = 0;
  bool paused = false;
  bool enable_pending = true;  // RCV_ENBDIS enable=1 not yet sent
  bool acked = false;          // RCV_ENBDIS_ACK seen this incarnation
  bool connected = true;       // last CONNECT_STATUS
  bool stopped = false;        // transmit queue stopped by flow control
  NicCounts counts;
};

NicState* state_of(const bus::Device& d) { return static_cast<NicState*>(d.driver_data.get()); }

// The data area starts after the last queue's slots; buffers start on the next page.
std::uint64_t pool_offset(channel::Channel& ch) {
  std::uint64_t end = 0;
  for (std::uint32_t q = 0; q < ch.queue_count(); ++q) {
    const auto& queue = ch.queue(q);
    const auto h = ch.queue_header(q);
    end = std::max<std::uint64_t>(end, queue.header_offset() + h.sig_base_offset +
                                           std::uint64_t{queue.max_slots()} * queue.signal_size());
  }
  return (end + kPage - 1) / kPage * kPage;
}

// Linux visornic's thresholds, from the receive buffer count.
void set_thresholds(NicLimits& l) {
  l.max_outstanding = std::max<std::uint32_t>(3, l.rcv_bufs / 3 > 2 ? l.rcv_bufs / 3 - 2 : 0);
  l.upper = std::max<std::uint32_t>(2, l.max_outstanding - 1);
  l.lower = std::max<std::uint32_t>(1, l.max_outstanding / 2);
}

void update_link(NicState& s) { s.counts.link_up = !s.paused && s.acked && s.connected; }

// Posts every receive buffer not with the IO partition, then (once all are
// posted, as visornic_open does) enables receive. What does not fit waits for
// the next poll.
void refill(NicState& s, channel::Channel& ch) {
  auto& cmd_q = ch.queue(io::to_iopart);
  for (std::uint32_t i = 0; i < s.limits.rcv_bufs; ++i) {
    if (s.posted[i]) continue;
    io::CmdRsp post{};
    post.cmdtype = io::CmdType::net;
    post.net.type = io::NetType::rcv_post;
    post.net.buf = i;
    const std::uint64_t at = s.rcv_at + i * kPage;
    post.net.rcvpost.frag = {at / kPage, 0, static_cast<std::uint16_t>(io::kRcvPostBufSize)};
    post.net.rcvpost.unique_num = s.incarnation;
    if (cmd_q.insert_signal(post) != 0) return;
    s.posted[i] = true;
  }
  if (!s.enable_pending) return;
  io::CmdRsp enable{};
  enable.cmdtype = io::CmdType::net;
  enable.net.type = io::NetType::rcv_enbdis;
  enable.net.enbdis.context = s.incarnation;  // the ACK echoes it: an older incarnation's ACK is ignored
  enable.net.enbdis.enable = 1;
  if (cmd_q.insert_signal(enable) == 0) s.enable_pending = false;
}

void xmit_done(NicState& s, const io::CmdRsp& rsp) {
  const std::uint64_t cookie = rsp.net.buf;
  if (auto it = s.in_flight.find(cookie); it != s.in_flight.end()) {
    s.free_xmit.push_back(it->second);
    s.in_flight.erase(it);
    ++s.counts.xmit_done;
    if (rsp.net.xmtdone.xmt_done_result != 0) ++s.counts.xmit_errors;
    if (s.first_after_resume && cookie >= s.first_after_resume) {
      for (const auto& [old, buffer] : s.stale) s.free_xmit.push_back(buffer);
      s.counts.reclaimed += s.stale.size();
      s.stale.clear();
    }
  } else if (auto st = s.stale.find(cookie); st != s.stale.end()) {
    s.free_xmit.push_back(st->second);  // the IO partition is done reading it
    s.stale.erase(st);
    ++s.counts.stale;
  } else {
    ++s.counts.bad;
    return;
  }
  if (s.stopped && s.in_flight.size() <= s.limits.lower) {
    s.stopped = false;
    ++s.counts.lower_hits;
  }
}

}  // namespace

std::span<const channel::ChannelKind> VisorNic::claims() const { return kClaims; }

int VisorNic::probe(bus::Device& device) {
  channel::Channel* ch = device.channel();
  if (!ch || ch->queue_count() < io::kQueueCount) return -ENODEV;
  io::VnicData data{};
  if (ch->read(offsetof(io::IoChannel, vnic), &data, sizeof data) != 0) return -EIO;

  auto s = std::make_shared<NicState>();
  std::memcpy(s->mac.data(), data.macaddr, s->mac.size());
  s->rcv_at = pool_offset(*ch);
  const std::uint64_t pages = s->rcv_at < ch->size() ? (ch->size() - s->rcv_at) / kPage : 0;
  if (pages < 2) return -ENOMEM;  // no room for one receive and one transmit buffer
  // A channel nobody configured says 0: take the default. More than the pool holds: clamp.
  const std::uint32_t wanted = data.num_rcv_bufs ? data.num_rcv_bufs : io::kVnicRcvBufs;
  s->limits.rcv_bufs = static_cast<std::uint32_t>(std::min<std::uint64_t>({wanted, io::kVnicRcvBufs, pages - 1}));
  s->limits.xmit_bufs = static_cast<std::uint32_t>(std::min<std::uint64_t>(io::kVnicXmitBufs, pages - s->limits.rcv_bufs));
  const std::uint64_t mtu = data.mtu ? data.mtu : kDefaultMtu;
  s->limits.max_frame = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(mtu + io::kEthHeaderLen, kEthMinFrame, io::kRcvPostBufSize));
  set_thresholds(s->limits);
  s->xmit_at = s->rcv_at + std::uint64_t{s->limits.rcv_bufs} * kPage;
  s->posted.assign(s->limits.rcv_bufs, false);
  for (std::uint32_t i = s->limits.xmit_bufs; i > 0; --i) s->free_xmit.push_back(i - 1);
  refill(*s, *ch);
  device.driver_data = std::move(s);
  return 0;
}

void VisorNic::remove(bus::Device& device) { device.driver_data.reset(); }

int VisorNic::pause(bus::Device& device, Done done) {
  NicState* s = state_of(device);
  if (!s) return -ENODEV;
  if (s->paused) return -EBUSY;
  // Forget the IO partition's state: it may be restarting. Buffers of
  // transmits it may still read stay held until their XMIT_DONE.
  s->stale.merge(s->in_flight);
  s->in_flight.clear();
  s->posted.assign(s->posted.size(), false);
  s->stopped = false;
  s->acked = false;
  s->enable_pending = false;
  s->paused = true;
  update_link(*s);
  done(0);  // from here on the channel is not touched until resume
  return 0;
}

int VisorNic::resume(bus::Device& device, Done done) {
  NicState* s = state_of(device);
  channel::Channel* ch = device.channel();
  if (!s || !ch) return -ENODEV;
  if (!s->paused) return -EBUSY;
  s->paused = false;
  ++s->incarnation;
  s->first_after_resume = s->next_cookie;
  s->enable_pending = true;
  refill(*s, *ch);  // the link comes up on the ACK
  done(0);
  return 0;
}

void VisorNic::channel_interrupt(bus::Device& device) {
  NicState* s = state_of(device);
  channel::Channel* ch = device.channel();
  if (!s || !ch || s->paused) return;
  auto& rsp_q = ch->queue(io::from_iopart);
  // One queue's worth per poll, so a peer that never stops cannot hold us here.
  io::CmdRsp rsp{};  // filled by remove_signal; zeroed so no path reads garbage
  for (std::uint32_t n = rsp_q.capacity(); n > 0 && !s->paused && rsp_q.remove_signal(rsp) == 0; --n) {
    if (rsp.cmdtype != io::CmdType::net) {
      ++s->counts.bad;
      continue;
    }
    switch (rsp.net.type) {
      case io::NetType::xmit_done:
        xmit_done(*s, rsp);
        break;
      case io::NetType::rcv: {
        const io::NetRcv& r = rsp.net.rcv;
        if (r.unique_num != s->incarnation) {  // its page has been posted again since
          ++s->counts.stale;
          ++s->counts.dropped;
          break;
        }
        // Take back every buffer named that is ours and posted (the IO
        // partition is done with it; it is posted again below), then check
        // the rest. Nothing from the response is used unchecked.
        std::vector<std::uint32_t> chain;
        bool ok = r.numrcvbufs >= 1 && r.numrcvbufs <= io::kMaxNetRcvChain;
        for (std::uint8_t i = 0; ok && i < r.numrcvbufs; ++i) {
          const std::uint64_t cookie = r.rcvbuf[i];
          ok = cookie < s->limits.rcv_bufs && s->posted[cookie];
          if (ok) {
            s->posted[cookie] = false;
            chain.push_back(static_cast<std::uint32_t>(cookie));
          }
        }
        const std::uint32_t len = r.rcv_done_len;
        if (!ok || len < io::kEthHeaderLen || len > chain.size() * io::kRcvPostBufSize) {
          ++s->counts.bad;
          break;
        }
        if (!s->acked) {  // receive not enabled yet: as Linux, repost and drop
          ++s->counts.dropped;
          break;
        }
        std::vector<std::byte> frame(len);
        std::size_t got = 0;
        for (std::uint32_t b : chain) {
          const std::size_t piece = std::min<std::size_t>(len - got, io::kRcvPostBufSize);
          if (piece == 0 || ch->read(s->rcv_at + b * kPage, frame.data() + got, piece) != 0) break;
          got += piece;
        }
        if (got != len) {
          ++s->counts.bad;
          break;
        }
        // Not promiscuous: our unicast address and broadcast only (no multicast list).
        const bool broadcast = std::all_of(frame.begin(), frame.begin() + 6, [](std::byte b) { return b == std::byte{0xFF}; });
        if (!broadcast && std::memcmp(frame.data(), s->mac.data(), s->mac.size()) != 0) {
          ++s->counts.dropped;
          break;
        }
        ++s->counts.received;
        if (sink_) sink_(device, frame);
        break;
      }
      case io::NetType::rcv_enbdis_ack:
        if (rsp.net.enbdis.context == s->incarnation && !s->enable_pending) {
          s->acked = true;
          s->connected = true;  // spec §4: the link is up again on the ACK
        } else {
          ++s->counts.stale;
        }
        break;
      case io::NetType::connect_status:
        s->connected = rsp.net.enbdis.enable == 1;
        break;
      default:
        ++s->counts.bad;  // nothing else is sent to a guest
        break;
    }
    update_link(*s);
  }
  if (!s->paused) refill(*s, *ch);
}

int VisorNic::transmit(bus::Device& device, std::span<const std::byte> frame) {
  NicState* s = state_of(device);
  channel::Channel* ch = device.channel();
  if (!s || !ch || device.driver_name() != name()) return -ENODEV;
  if (frame.size() < io::kEthHeaderLen) return -EINVAL;
  if (frame.size() > s->limits.max_frame) return -EMSGSIZE;
  if (s->paused || !s->acked || !s->connected) {  // checked before any touch of the channel
    ++s->counts.down;
    return -EAGAIN;
  }
  if (s->stopped || s->in_flight.size() >= s->limits.max_outstanding) {
    s->stopped = true;
    ++s->counts.throttled;
    return -EBUSY;
  }
  if (s->free_xmit.empty()) {  // buffers held by stale transmits: wait for their XMIT_DONE
    ++s->counts.throttled;
    return -EBUSY;
  }
  const std::uint32_t buffer = s->free_xmit.back();
  const std::uint64_t at = s->xmit_at + buffer * kPage;
  const std::size_t len = std::max(frame.size(), kEthMinFrame);
  static constexpr std::array<std::byte, kEthMinFrame> kZeros{};
  if (ch->write(at, frame.data(), frame.size()) != 0 ||
      (len > frame.size() && ch->write(at + frame.size(), kZeros.data(), len - frame.size()) != 0))
    return -EIO;
  io::CmdRsp cmd{};
  cmd.cmdtype = io::CmdType::net;
  cmd.net.type = io::NetType::xmit;
  cmd.net.buf = s->next_cookie;
  cmd.net.xmt.len = static_cast<std::int32_t>(len);
  cmd.net.xmt.num_frags = 1;
  cmd.net.xmt.frags[0] = {at / kPage, 0, static_cast<std::uint16_t>(len)};
  std::memcpy(cmd.net.xmt.ethhdr, frame.data(), io::kEthHeaderLen);
  if (ch->queue(io::to_iopart).insert_signal(cmd) != 0) {  // cmd queue full: busy, as NETDEV_TX_BUSY
    ++s->counts.throttled;
    return -EBUSY;
  }
  s->free_xmit.pop_back();
  s->in_flight.emplace(s->next_cookie++, buffer);
  ++s->counts.sent;
  if (s->in_flight.size() >= s->limits.upper) {
    s->stopped = true;
    ++s->counts.upper_hits;
  }
  return 0;
}

NicCounts VisorNic::counts(const bus::Device& device) {
  const NicState* s = state_of(device);
  return s ? s->counts : NicCounts{};
}

NicLimits VisorNic::limits(const bus::Device& device) {
  const NicState* s = state_of(device);
  return s ? s->limits : NicLimits{};
}

Mac VisorNic::mac(const bus::Device& device) {
  const NicState* s = state_of(device);
  return s ? s->mac : Mac{};
}

std::size_t VisorNic::outstanding(const bus::Device& device) {
  const NicState* s = state_of(device);
  return s ? s->in_flight.size() : 0;
}

}  // namespace visorlab::drivers
