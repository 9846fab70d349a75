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
// channel::io::mac_for(peer). A frame carries the sender's device name and tag,
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
// Its messages (workload_actor, actors/runtime/interfaces.hpp) arrive through
// the guest actor: start (the spec, the drill clock's start, the vnic peers;
// the first start sets the spec, a start after stop resumes), stop (issue
// nothing new; in-flight ops complete, recorded; then, when recording and
// verifying, the final read: every block with an acknowledged write is read
// once more, as ordinary recorded reads), idle (no disk op or capacity probe
// in flight and the final read done), quiesce(device) (stop using it; true once
// nothing is in flight on it — ask until then; it stays unused until it
// leaves the bus), stats, collect(first) (the history in chunks, from `first`:
// asking from `first` forgets what lies below it, so a drill that drains the
// history as it runs keeps the workload small).

// Threading: everything runs on the guest's thread (step, control, on_frame,
// on_input, the drivers' completion callbacks); no locks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "actors/guest/application.hpp"
#include "actors/runtime/messages.hpp"
#include "actors/runtime/workload_messages.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

using WorkloadStats = actors::WorkloadStats;

// At most this many events travel in one collect chunk.
inline constexpr std::size_t kHistoryChunkEvents = 1 << 16;

class Workload final : public guest::Application {
 public:
  // `guest` names the guest it runs in ("g0"). What it does comes with start
  // (its spec's `record` false runs the same I/O without recording a history,
  // to measure what recording costs).
  // `abandoned_dir`: where abandon() keeps the history nobody collected
  // (<dir>/<guest>.history.jsonl); empty: it is not kept.
  explicit Workload(std::string guest, std::filesystem::path abandoned_dir = {});
  ~Workload() override;
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  bool step(guest::Guest& guest, Clock::time_point now) override;
  void start(guest::Guest& guest, const actors::WorkloadStart& start) override;
  void stop(guest::Guest& guest) override;
  bool abandon(guest::Guest& guest) override;
  bool quiesce(guest::Guest& guest, const std::string& device) override;
  bool idle(guest::Guest& guest) override;
  WorkloadStats stats() const override;
  actors::HistoryChunk collect(std::uint64_t first) override;
  void on_frame(const std::string& device, std::span<const std::byte> frame) override;
  void on_input(const std::string& device, const channel::input::Report& report) override;
  // From its start on (a drill's I/O, then its read-back): before it, an
  // idle guest may sleep on its doorbells.
  bool keeps_time() const override;

  // For tests and benches, on the guest's thread (or with it stopped).
  History history() const;  // what collect has not yet been told to forget
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
