// The IO partition's end of one vnic channel. From the cmd queue
// (IOCHAN_TO_IOPART) it takes NET_XMIT (the frame goes to the uplink — the
// software switch — and XMIT_DONE answers), NET_RCV_POST (the buffer is kept
// for a later receive) and NET_RCV_ENBDIS (acknowledged). deliver() writes a
// frame into the oldest posted buffer and answers NET_RCV; connect_status()
// tells the guest about its link. Every answer goes on the rsp queue
// (IOCHAN_FROM_IOPART) in order; what does not fit waits, and no command is
// taken while answers wait (the cmd queue is the guest's flow control).
//
// Nothing read from the channel is trusted: a frag must lie inside one page of
// the data area (after the slots), lengths must add up and fit a frame. A bad
// XMIT is counted and answered with an error result; a bad post is counted
// and dropped.
//
// Posts carry the guest's incarnation (unique_num): a post of a new
// incarnation means the guest forgot its old posts (it paused and resumed),
// so the backend forgets them too and never writes into a re-posted page
// through a stale post.
//
// Single-threaded: poll() and deliver() run on the IO partition's thread.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "channel/channel.hpp"
#include "channel/iochannel.hpp"
#include "channel/vnic_config.hpp"

namespace visorlab::service {

class SoftwareSwitch;

using Mac = channel::io::Mac;

// xmt_done_result values the backend answers.
inline constexpr std::uint32_t kXmitOk = 0;
inline constexpr std::uint32_t kXmitInvalid = 22;   // EINVAL: a length or frag failed a check
inline constexpr std::uint32_t kXmitLinkDown = 100;  // ENETDOWN: the port's link is down

enum class Delivery { delivered, link_down, disabled, no_buffer, too_big, failed };

struct VnicBackendCounts {
  std::uint64_t xmits = 0;        // frames taken from the guest and passed on
  std::uint64_t bad_xmits = 0;    // XMITs failing a check (answered kXmitInvalid)
  std::uint64_t tx_link_down = 0; // XMITs while the link is down (answered kXmitLinkDown)
  std::uint64_t posts = 0;        // receive buffers accepted
  std::uint64_t bad_posts = 0;    // posts failing a check, or past the limit
  std::uint64_t forgotten = 0;    // posts dropped because a new incarnation posted
  std::uint64_t delivered = 0;    // frames written into a posted buffer (NET_RCV)
  std::uint64_t rx_dropped = 0;   // frames deliver() refused (any reason but delivered)
  std::uint64_t ignored = 0;      // commands that are not vnic commands
};

class VnicBackend {
 public:
  using Uplink = std::function<void(VnicBackend& from, std::span<const std::byte> frame)>;

  // Reads the MAC and MTU from the channel's VnicData; throws
  // std::invalid_argument for a channel without the two I/O queues.
  explicit VnicBackend(channel::Channel& channel);
  ~VnicBackend();  // detaches from its switch
  VnicBackend(const VnicBackend&) = delete;
  VnicBackend& operator=(const VnicBackend&) = delete;

  // Where transmitted frames go; without one they are answered and dropped.
  void set_uplink(Uplink uplink) { uplink_ = std::move(uplink); }

  // Serves what is waiting; returns how many commands were taken.
  std::size_t poll(std::size_t max_commands = 64);

  // A frame for the guest: into the oldest posted buffer, then NET_RCV.
  Delivery deliver(std::span<const std::byte> frame);

  // Tells the guest its link is up or down (CONNECT_STATUS); while down,
  // nothing is delivered and transmits are refused.
  void connect_status(bool up);

  const Mac& mac() const { return mac_; }
  std::uint32_t max_frame() const { return max_frame_; }
  bool link_up() const { return link_up_; }
  bool rx_enabled() const { return rx_enabled_; }
  std::size_t posted() const { return posts_.size(); }
  std::size_t backlog() const { return backlog_.size(); }
  std::size_t held() const { return held_.size(); }  // frames waiting for a posted buffer
  const VnicBackendCounts& counts() const { return counts_; }

 private:
  friend class SoftwareSwitch;
  struct Post {
    std::uint64_t cookie;  // the guest's net.buf, echoed in NET_RCV
    std::uint64_t at;      // byte offset in the channel, checked
    std::uint32_t length;
  };

  void respond(const channel::io::CmdRsp& rsp);
  void xmit(channel::io::CmdRsp& cmd);
  void post(const channel::io::CmdRsp& cmd);
  // The byte offset of a frag if all of it lies in one page of the data area.
  bool frag_at(const channel::io::PhysInfo& frag, std::uint64_t& at) const;

  channel::Channel& channel_;
  Mac mac_{};
  std::uint32_t max_frame_ = 0;
  std::uint64_t data_at_ = 0;  // first byte after the slots
  Uplink uplink_;
  SoftwareSwitch* switch_ = nullptr;  // set by the switch it is attached to
  std::deque<Post> posts_;
  std::uint64_t incarnation_ = 0;  // unique_num of the posts held
  bool rx_enabled_ = false;
  bool link_up_ = true;
  std::uint32_t dropped_since_rcv_ = 0;  // reported in the next NET_RCV's rcvs_dropped_delta
  std::deque<channel::io::CmdRsp> backlog_;  // answers the rsp queue had no room for
  // Frames for a guest that has no receive buffer posted right now, in order:
  // a switch port's memory, so a guest briefly slow to re-post loses nothing.
  // Full, it drops new frames (tail drop); it never lets one overtake.
  static constexpr std::size_t kHeldFrames = 256;
  std::deque<std::vector<std::byte>> held_;
  void release_held();  // held frames into posted buffers, oldest first
  Delivery place(std::span<const std::byte> frame);
  void drop();  // counts a frame not delivered (rx_dropped, the next NET_RCV's delta)
  std::vector<std::byte> frame_;             // scratch for one transmitted frame
  VnicBackendCounts counts_;
};

}  // namespace visorlab::service
