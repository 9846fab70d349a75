// visornic: the vnic function driver, an Ethernet NIC over an I/O channel.
// Receive buffers and transmit buffers are pages of the channel's data area
// (channel/iochannel.hpp, kVnicPageSize). Probe posts every receive buffer
// (NET_RCV_POST) and enables receive (NET_RCV_ENBDIS); the link is up once the
// IO partition acknowledges (NET_RCV_ENBDIS_ACK) and follows CONNECT_STATUS.
//
// Transmit throttles as the Linux visornic does: from the receive buffer
// count n, max outstanding = max(3, n/3 - 2), upper = max(2, max - 1), lower =
// max(1, max / 2). Reaching upper stops the queue; it restarts when an
// XMIT_DONE brings the outstanding count down to lower. A stopped queue
// answers -EBUSY (counted as throttled).
//
// Pause forgets every posted buffer and in-flight transmit and stops touching
// the channel; resume starts a new incarnation (the posts' unique_num), posts
// every buffer again and re-enables. Responses of an older incarnation are
// stale: a stale receive is dropped (its page has been posted again), a stale
// transmit's buffer is held until its XMIT_DONE shows the IO partition is done
// reading it — or until the first transmit after resume is answered: answers
// come in order, so a stale transmit still unanswered then died with a crashed
// IO partition, and its buffer is taken back.
//
// One thread per guest: transmit() and channel_interrupt() are not reentrant
// across threads (the receive sink may call transmit()).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "actors/bus/device.hpp"
#include "actors/bus/driver.hpp"
#include "channel/iochannel.hpp"

namespace visorlab::drivers {

using Mac = std::array<std::uint8_t, channel::io::kMacAddrLen>;

// Frames shorter than this are zero-padded on transmit, as Linux pads to ETH_ZLEN.
inline constexpr std::size_t kEthMinFrame = 60;

struct NicCounts {
  std::uint64_t sent = 0;         // NET_XMITs inserted
  std::uint64_t xmit_done = 0;    // XMIT_DONEs for this incarnation's transmits
  std::uint64_t xmit_errors = 0;  // of those, refused by the IO partition (non-zero result)
  std::uint64_t received = 0;     // frames handed to the sink
  std::uint64_t throttled = 0;    // transmits refused by flow control (-EBUSY)
  std::uint64_t down = 0;         // transmits refused while paused or the link is down (-EAGAIN)
  std::uint64_t dropped = 0;      // received frames not handed on: stale, not for us, receive not enabled
  std::uint64_t stale = 0;        // responses of an older incarnation (dropped receives, late XMIT_DONEs)
  std::uint64_t reclaimed = 0;    // buffers of stale transmits never answered (the IO partition died), taken back
  std::uint64_t bad = 0;          // responses failing a check (cookie, length, chain, type): ignored
  std::uint64_t upper_hits = 0;   // queue stopped at the upper threshold
  std::uint64_t lower_hits = 0;   // queue restarted at the lower threshold
  bool link_up = false;
};

struct NicLimits {
  std::uint32_t rcv_bufs = 0;
  std::uint32_t xmit_bufs = 0;
  std::uint32_t max_outstanding = 0;
  std::uint32_t upper = 0;
  std::uint32_t lower = 0;
  std::uint32_t max_frame = 0;  // Ethernet header + MTU, never more than one receive buffer
};

class VisorNic final : public bus::Driver {
 public:
  // A received frame (Ethernet header first), valid only during the call.
  using Sink = std::function<void(bus::Device& device, std::span<const std::byte> frame)>;

  std::string_view name() const override { return "visornic"; }
  std::span<const channel::ChannelKind> claims() const override;
  int probe(bus::Device& device) override;
  void remove(bus::Device& device) override;
  int pause(bus::Device& device, Done done) override;
  int resume(bus::Device& device, Done done) override;
  void channel_interrupt(bus::Device& device) override;

  void on_receive(Sink sink) { sink_ = std::move(sink); }

  // Sends one frame (at least an Ethernet header). 0: queued; -ENODEV: not a
  // device of this driver; -EINVAL: shorter than an Ethernet header;
  // -EMSGSIZE: longer than max_frame; -EAGAIN: paused or link down; -EBUSY:
  // throttled (try again after the next channel_interrupt).
  int transmit(bus::Device& device, std::span<const std::byte> frame);

  static NicCounts counts(const bus::Device& device);
  static NicLimits limits(const bus::Device& device);
  static Mac mac(const bus::Device& device);  // from the channel's VnicData
  static std::size_t outstanding(const bus::Device& device);  // this incarnation's transmits in flight

 private:
  Sink sink_;
};

}  // namespace visorlab::drivers
