// The drill's workload (Jepsen's clients): a guest Application that drives
// real I/O through the guest's own drivers while the nemesis injects faults,
// and records what it did and saw into a drill history (drill/recorder.hpp).
//
// Disk — every vhba the guest has (discovered on every step: a device
// created mid-drill joins, a destroyed one leaves) gets READ CAPACITY(16)
// once, then `queue_depth` ops in flight: reads (probability `read_ratio`) or
// writes of `block_size` bytes at random block-aligned LBAs, from an RNG
// seeded by (seed, guest, device). No two ops are ever in flight on one
// block. A write encodes every 512-byte sector (drill/block_format.hpp) with
// its LBA, the device's write generation and tag; a read decodes every
// sector (when `verify`) into the BlockSeen the checker judges. In the
// history an op's `lba` is its first 512-byte LBA and `blocks` its sector
// count. A command reissued after DID_RESET is recorded as one disk_retried
// per reset before its ok; a non-zero linuxstat as a fail with the reason.
//
// Net — every vnic sends `frame_size` frames at `net_rate` frames/s (a token
// bucket) to the peers given at start, round-robin, addressed by
// actors::mac_for(peer). A frame carries the sender's device name and tag,
// the destination's tag and a sequence number per (sender, destination),
// and filler derived from them. A frame the driver refuses (-EBUSY throttle,
// -EAGAIN paused or link down) was not sent: it is counted, not recorded.
// Received frames are recorded (source resolved by the name in the frame);
// a corrupt or misaddressed one is a violation.
//
// Input — every report the guest's keyboard or mouse delivers is recorded
// (input_delivered, by seq_no).
//
// Before "start" there is no drill clock: frames and input reports arriving
// then are held (with their steady-clock time) and recorded at start.
//
// Control verbs (control(); replies are text):
//   start <start_ns> [<peer>,<peer>…]  "ok"      begin issuing; start_ns is DrillClock::start_ns()
//                                                 of the drill (a repeated start after stop resumes)
//   stop                               "ok"      issue nothing new; in-flight ops complete, recorded
//   idle                               "yes"|"no" nothing in flight: no disk op (or capacity probe),
//                                                 no vnic transmit awaiting XMIT_DONE
//   quiesce <device>                   "quiesced"|"busy"  stop using the device; "quiesced" once
//                                                 nothing is in flight on it (poll until then). It
//                                                 stays unused until it leaves the bus.
//   completed                          "<n>"     disk ops completed (ok or failed) so far
//   stats                              "key=value …" one line of counters (WorkloadStats)
//   collect                            the history so far, written by drill::write_history
//   anything else                      "error: unknown verb <verb>"
// Malformed arguments answer "error: …".
//
// Threading: everything runs on the guest's thread (step, control, on_frame,
// on_input, the drivers' completion callbacks); no locks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "actors/guest/application.hpp"
#include "actors/runtime/messages.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

struct WorkloadStats {
  // Disk.
  std::uint64_t invoked = 0;        // ops issued (capacity probes not counted)
  std::uint64_t completed = 0;      // ops completed, ok or failed
  std::uint64_t failed = 0;         // …with an error (submit refused, or a non-zero linuxstat)
  std::uint64_t reads = 0;          // ops issued that read
  std::uint64_t writes = 0;         // ops issued that write
  std::uint64_t retried = 0;        // DID_RESET reissues of completed ops
  std::uint64_t bad_sectors = 0;    // sectors a read saw with a bad checksum or the wrong LBA/device
  std::uint64_t in_flight = 0;      // disk ops and capacity probes now
  std::uint64_t disks = 0;          // vhba devices in use now
  // Net.
  std::uint64_t frames_sent = 0;
  std::uint64_t frames_received = 0;
  std::uint64_t frames_busy = 0;      // transmits refused by the throttle (-EBUSY)
  std::uint64_t frames_down = 0;      // transmits refused while paused or the link is down (-EAGAIN)
  std::uint64_t frames_refused = 0;   // transmits refused otherwise (-EMSGSIZE, -ENODEV, …)
  std::uint64_t frames_foreign = 0;   // received frames that are not the workload's: ignored
  std::uint64_t frames_bad = 0;       // received workload frames corrupt or for another device
  std::uint64_t frames_reordered = 0; // received with a seq not above the last from that sender
  std::uint64_t frames_skipped = 0;   // sequence numbers skipped over (dropped on the way)
  std::uint64_t nics = 0;             // vnic devices in use now
  // Input.
  std::uint64_t inputs = 0;
  // History.
  std::uint64_t events = 0;  // recorded so far
};

class Workload final : public guest::Application {
 public:
  // `guest` names the guest it runs in ("g0"); `record` false runs the same
  // I/O without recording a history (to measure what recording costs).
  Workload(std::string guest, actors::WorkloadSpec spec, bool record = true);
  ~Workload() override;
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  bool step(guest::Guest& guest, Clock::time_point now) override;
  std::string control(guest::Guest& guest, const std::string& verb) override;
  void on_frame(const std::string& device, std::span<const std::byte> frame) override;
  void on_input(const std::string& device, const channel::input::Report& report) override;

  // For tests and benches, on the guest's thread (or with it stopped).
  WorkloadStats stats() const;
  History history() const;  // what "collect" writes
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The workload's frame layout, for tests: after the Ethernet header (ethertype
// kFrameEtherType) a header of magic, name length, seq, source tag and
// destination tag, then the source device's name and filler.
inline constexpr std::uint16_t kFrameEtherType = 0x88B6;
inline constexpr std::size_t kFrameHeader = 14 + 4 + 2 + 2 + 8 + 8 + 8;

}  // namespace visorlab::drill
