// The console partition's end of one keyboard or mouse channel. It numbers
// every report it produces (seq_no, consecutive, per device) and moves them
// into queue 0 in order on poll(); the guest's visorinput checks the numbers,
// so a report lost or reordered anywhere between here and the guest shows.
//
// Reports wait in an in-order backlog while the queue is full (-EIO) or the
// device is paused. The backlog is bounded (64k by default): beyond it the
// OLDEST report is dropped and counted in dropped() — the guest then sees a
// seq_no gap and counts it as lost, so an overload is visible, never hidden.
//
// Pause: while the guest's device is paused the backend must not touch the
// channel. pause() revokes this endpoint's pause guard (a stray access is then
// a recorded violation, not a silent one) and poll() returns at once; reports
// produced meanwhile are held and delivered in order after resume(). An
// endpoint someone else revoked is left alone the same way.
//
// Restart of the console partition process:
//  - planned: the supervisor reads next_seq() from the old backend and
//    constructs the new one with it as first_seq;
//  - unplanned crash: the reports in the channel queue are authoritative. The
//    new backend calls resume_from_channel(), which reads the queue's last
//    inserted report (slot `head`, spec §2 — still there after the guest has
//    taken it) with a bounded, validated read and continues after its seq_no.
//    The guest then sees no gap and no duplicate. Reports the crashed process
//    held but never inserted died with it; their seq_nos are reused.
//
// Not thread-safe: one owner (the console partition's actor) drives it.
#pragma once

#include <cstdint>
#include <deque>

#include "channel/channel.hpp"
#include "channel/channel_types.hpp"
#include "channel/input_report.hpp"

namespace visorlab::service {

struct InputBackendCounts {
  std::uint64_t produced = 0;   // numbered by this backend
  std::uint64_t delivered = 0;  // inserted into the channel
  std::uint64_t held = 0;       // waiting in the backlog now
  std::uint64_t dropped = 0;    // oldest, pushed out of a full backlog
};  // produced == delivered + held + dropped

class InputBackend {
 public:
  static constexpr std::size_t kDefaultMaxBacklog = 64 * 1024;
  static constexpr std::size_t kDefaultMaxPoll = 256;  // reports per poll()

  // `kind` is keyboard or mouse; the channel must have the input layout
  // (queue 0 of 16-byte reports). Throws std::invalid_argument otherwise.
  // Touches no channel memory, so it may be followed by pause() at once.
  InputBackend(channel::Channel& channel, channel::ChannelKind kind, std::uint64_t first_seq = 1,
               std::size_t max_backlog = kDefaultMaxBacklog);
  ~InputBackend();
  InputBackend(const InputBackend&) = delete;
  InputBackend& operator=(const InputBackend&) = delete;

  // Numbers one report and holds it; returns its seq_no.
  std::uint64_t produce(const channel::input::Activity& activity);
  // n reports of the deterministic pattern (see pattern()).
  void produce(std::size_t n);
  // The pattern produce(n) uses, a function of kind and seq_no. Keyboard:
  // key_down then key_up of scancodes 16..41 in turn. Mouse: motion,
  // button 1 down, motion, button 1 up.
  static channel::input::Activity pattern(channel::ChannelKind kind, std::uint64_t seq);

  // Moves up to max_reports held reports into the queue, in order; returns
  // how many went in. Stops when the queue is full. Nothing while paused.
  std::size_t poll(std::size_t max_reports = kDefaultMaxPoll);

  // Idempotent. pause() stops all channel access; resume() allows it again.
  void pause();
  void resume();
  bool paused() const { return paused_; }

  enum class Continue {
    from_channel,  // continued after the last seq_no in the queue
    empty,         // nothing was ever inserted: kept first_seq
    unreadable,    // the queue header or report failed validation: kept first_seq
    deferred,      // paused: runs in the first poll() allowed to touch the
                   // channel, before anything is inserted
  };
  // For a backend re-attached after a crash: continue after the last report
  // in the channel. Held reports are renumbered to follow it (gaps from drops
  // kept). Only before this backend has delivered anything (std::logic_error).
  Continue resume_from_channel();

  // The seq_no the next produced report gets: what a planned restart passes on.
  std::uint64_t next_seq() const { return next_seq_; }
  channel::ChannelKind kind() const { return kind_; }
  InputBackendCounts counts() const;
  // The last insert result other than success or full (-EFAULT: the peer
  // wrote an out-of-range index); 0 if none. Held reports stay held.
  int last_error() const { return last_error_; }

 private:
  Continue sync_from_channel();
  void rebase(std::uint64_t first_seq);

  channel::Channel& channel_;
  channel::ChannelKind kind_;
  std::size_t max_backlog_;
  std::uint64_t first_seq_;  // what this backend's numbering started at
  std::uint64_t next_seq_;
  std::deque<channel::input::Report> backlog_;
  bool paused_ = false;
  bool revoked_guard_ = false;  // we revoked the endpoint, so we restore it
  bool sync_pending_ = false;
  std::uint64_t produced_ = 0, delivered_ = 0, dropped_ = 0;
  int last_error_ = 0;
};

}  // namespace visorlab::service
