#include "actors/service/vnic_backend.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "actors/service/software_switch.hpp"

namespace visorlab::service {
namespace {

namespace io = channel::io;

constexpr std::uint64_t kPage = io::kVnicPageSize;
constexpr std::uint32_t kDefaultMtu = 1500;
constexpr std::uint32_t kMinFrame = 60;  // the guest pads shorter frames (ETH_ZLEN)

// The first byte after the last queue's slots: guests' buffers live from here on.
std::uint64_t data_offset(channel::Channel& ch) {
  std::uint64_t end = 0;
  for (std::uint32_t q = 0; q < ch.queue_count(); ++q) {
    const auto& queue = ch.queue(q);
    end = std::max<std::uint64_t>(end, queue.header_offset() + ch.queue_header(q).sig_base_offset +
                                           std::uint64_t{queue.max_slots()} * queue.signal_size());
  }
  return end;
}

io::CmdRsp net_answer(io::NetType type, std::uint64_t buf) {
  io::CmdRsp rsp{};
  rsp.cmdtype = io::CmdType::net;
  rsp.net.type = type;
  rsp.net.buf = buf;
  return rsp;
}

}  // namespace

VnicBackend::VnicBackend(channel::Channel& channel) : channel_(channel) {
  if (channel_.queue_count() < io::kQueueCount) throw std::invalid_argument("vnic backend: channel has no cmd and rsp queues");
  io::VnicData data{};
  channel_.read(offsetof(io::IoChannel, vnic), &data, sizeof data);  // zeroes on failure: defaults below
  std::memcpy(mac_.data(), data.macaddr, mac_.size());
  const std::uint64_t mtu = data.mtu ? data.mtu : kDefaultMtu;
  max_frame_ = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(mtu + io::kEthHeaderLen, kMinFrame, io::kRcvPostBufSize));
  data_at_ = data_offset(channel_);
  frame_.resize(max_frame_);
}

VnicBackend::~VnicBackend() {
  if (switch_) switch_->detach(*this);
}

std::size_t VnicBackend::poll(std::size_t max_commands) {
  auto& rsp = channel_.queue(io::from_iopart);
  while (!backlog_.empty() && rsp.insert_signal(backlog_.front()) == 0) backlog_.pop_front();
  release_held();

  std::size_t done = 0;
  io::CmdRsp cmd{};
  // No command is taken while answers wait: the guest is not draining.
  while (done < max_commands && backlog_.empty() && channel_.queue(io::to_iopart).remove_signal(cmd) == 0) {
    ++done;
    if (cmd.cmdtype != io::CmdType::net) {
      ++counts_.ignored;
      continue;
    }
    switch (cmd.net.type) {
      case io::NetType::xmit:
        xmit(cmd);
        break;
      case io::NetType::rcv_post:
        post(cmd);
        break;
      case io::NetType::rcv_enbdis: {
        rx_enabled_ = cmd.net.enbdis.enable != 0;
        io::CmdRsp ack = net_answer(io::NetType::rcv_enbdis_ack, cmd.net.buf);
        ack.net.enbdis = cmd.net.enbdis;  // the guest matches its context
        respond(ack);
        // The guest takes the link as up on the ACK; correct it at once if it is not.
        if (!link_up_) connect_status(false);
        break;
      }
      default:
        ++counts_.ignored;  // promiscuous mode and MAC changes are not modelled
        break;
    }
  }
  release_held();  // into the buffers just posted, not a poll later
  return done;
}

void VnicBackend::release_held() {
  // In order, while buffers are posted (link down or receive disabled drops
  // them: the guest asked for that).
  while (!held_.empty() && (!posts_.empty() || !link_up_ || !rx_enabled_)) {
    place(held_.front());
    held_.pop_front();
  }
}

bool VnicBackend::frag_at(const io::PhysInfo& frag, std::uint64_t& at) const {
  const std::uint64_t off = frag.pi_off;
  const std::uint64_t len = frag.pi_len;
  if (len == 0 || off + len > kPage) return false;
  if (frag.pi_pfn > channel_.size() / kPage) return false;  // also keeps the multiply from overflowing
  at = frag.pi_pfn * kPage + off;
  return at >= data_at_ && at + len <= channel_.size();
}

void VnicBackend::xmit(io::CmdRsp& cmd) {
  const io::NetXmit& x = cmd.net.xmt;
  const std::int64_t len = x.len;
  bool ok = len >= static_cast<std::int64_t>(io::kEthHeaderLen) && len <= max_frame_ && x.num_frags >= 1 &&
            x.num_frags <= static_cast<std::int32_t>(io::kMaxPhysInfo);
  std::uint64_t got = 0;
  for (std::int32_t i = 0; ok && i < x.num_frags; ++i) {
    std::uint64_t at = 0;
    const std::uint64_t piece = x.frags[i].pi_len;
    ok = frag_at(x.frags[i], at) && piece <= static_cast<std::uint64_t>(len) - got &&
         channel_.read(at, frame_.data() + got, piece) == 0;
    got += piece;
  }
  ok = ok && got == static_cast<std::uint64_t>(len);

  io::CmdRsp done = net_answer(io::NetType::xmit_done, cmd.net.buf);
  if (!ok) {
    ++counts_.bad_xmits;
    done.net.xmtdone.xmt_done_result = kXmitInvalid;
  } else if (!link_up_) {
    ++counts_.tx_link_down;
    done.net.xmtdone.xmt_done_result = kXmitLinkDown;
  } else {
    ++counts_.xmits;
    if (uplink_) uplink_(*this, std::span<const std::byte>(frame_.data(), got));
  }
  respond(done);
}

void VnicBackend::post(const io::CmdRsp& cmd) {
  const io::NetRcvPost& p = cmd.net.rcvpost;
  std::uint64_t at = 0;
  // A guest cannot have more distinct buffers than the data area has pages.
  const std::uint64_t max_posts = data_at_ < channel_.size() ? (channel_.size() - data_at_) / kPage : 0;
  if (!frag_at(p.frag, at) || p.frag.pi_len < io::kEthHeaderLen) {
    ++counts_.bad_posts;
    return;
  }
  if (p.unique_num != incarnation_) {
    counts_.forgotten += posts_.size();
    posts_.clear();
    incarnation_ = p.unique_num;
  }
  if (posts_.size() >= max_posts) {
    ++counts_.bad_posts;
    return;
  }
  posts_.push_back({cmd.net.buf, at, p.frag.pi_len});
  ++counts_.posts;
}

Delivery VnicBackend::deliver(std::span<const std::byte> frame) {
  // Buffers posted since the last poll take the held frames first: a frame
  // must never overtake the ones held before it.
  release_held();
  // Behind held frames, or nowhere to put it yet: hold it (bounded).
  if (link_up_ && rx_enabled_ && (!held_.empty() || posts_.empty()) && frame.size() >= io::kEthHeaderLen &&
      frame.size() <= max_frame_) {
    if (held_.size() < kHeldFrames) {
      held_.emplace_back(frame.begin(), frame.end());
      return Delivery::delivered;
    }
    // The port's queue is full: drop the newest frame (tail drop, as a switch
    // port does), counted and reported to the guest. Placing it would put it
    // ahead of every held frame.
    drop();
    return Delivery::no_buffer;
  }
  return place(frame);
}

void VnicBackend::drop() {
  ++counts_.rx_dropped;
  if (dropped_since_rcv_ < std::numeric_limits<std::uint32_t>::max()) ++dropped_since_rcv_;
}

Delivery VnicBackend::place(std::span<const std::byte> frame) {
  Delivery result = Delivery::delivered;
  if (!link_up_)
    result = Delivery::link_down;
  else if (!rx_enabled_)
    result = Delivery::disabled;
  else if (posts_.empty())
    result = Delivery::no_buffer;
  else if (frame.size() < io::kEthHeaderLen || frame.size() > max_frame_ || frame.size() > posts_.front().length)
    result = Delivery::too_big;
  else if (channel_.write(posts_.front().at, frame.data(), frame.size()) != 0)
    result = Delivery::failed;
  if (result != Delivery::delivered) {
    drop();
    return result;
  }
  const Post p = posts_.front();
  posts_.pop_front();
  io::CmdRsp rcv = net_answer(io::NetType::rcv, p.cookie);
  rcv.net.rcv.rcv_done_len = static_cast<std::uint32_t>(frame.size());
  rcv.net.rcv.numrcvbufs = 1;  // a frame never exceeds one buffer (max_frame <= kRcvPostBufSize)
  rcv.net.rcv.rcvbuf[0] = p.cookie;
  rcv.net.rcv.unique_num = incarnation_;
  rcv.net.rcv.rcvs_dropped_delta = dropped_since_rcv_;
  dropped_since_rcv_ = 0;
  respond(rcv);
  ++counts_.delivered;
  return result;
}

void VnicBackend::connect_status(bool up) {
  link_up_ = up;
  io::CmdRsp status = net_answer(io::NetType::connect_status, 0);
  status.net.enbdis.enable = up ? 1 : 0;
  respond(status);
}

void VnicBackend::respond(const io::CmdRsp& rsp) {
  if (backlog_.empty() && channel_.queue(io::from_iopart).insert_signal(rsp) == 0) return;
  backlog_.push_back(rsp);  // in order behind what already waits
}

}  // namespace visorlab::service
