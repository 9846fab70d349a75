#include "actors/service/input_backend.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <limits>
#include <stdexcept>

namespace visorlab::service {

namespace in = channel::input;

namespace {

// Reports staged per insert_batch (one head store each, one doorbell over TCP).
constexpr std::size_t kBatch = 64;

bool known_action(in::Action a) {
  switch (a) {
    case in::Action::xy_motion:
    case in::Action::mouse_button_down:
    case in::Action::mouse_button_up:
    case in::Action::mouse_button_click:
    case in::Action::mouse_button_dclick:
    case in::Action::wheel_rotate_away:
    case in::Action::wheel_rotate_toward:
    case in::Action::key_down:
    case in::Action::key_up:
    case in::Action::set_locking_key_state:
    case in::Action::key_down_up:
      return true;
  }
  return false;
}

}  // namespace

InputBackend::InputBackend(channel::Channel& channel, channel::ChannelKind kind, std::uint64_t first_seq,
                           std::size_t max_backlog)
    : channel_(channel), kind_(kind), max_backlog_(max_backlog), first_seq_(first_seq), next_seq_(first_seq) {
  if (kind != channel::ChannelKind::keyboard && kind != channel::ChannelKind::mouse)
    throw std::invalid_argument("input backend: kind must be keyboard or mouse");
  // Geometry from the attach-time copy, not channel memory: batches are laid
  // out sizeof(Report) apart, so the slot size must be exactly that.
  if (channel.queue_count() < 1 || channel.queue(0).signal_size() != sizeof(in::Report))
    throw std::invalid_argument("input backend: channel has no queue of 16-byte input reports");
  // seq_no 0 marks a never-written slot (channels start zeroed).
  if (first_seq == 0) throw std::invalid_argument("input backend: seq_no starts at 1");
  if (max_backlog == 0) throw std::invalid_argument("input backend: backlog bound must be > 0");
}

InputBackend::~InputBackend() {
  // Hand the endpoint back as we got it: a backend created over the same
  // Channel next (re-attach) decides for itself whether it is paused.
  if (revoked_guard_) {
    try {
      channel_.resume();
    } catch (...) {  // mprotect failed: the guard stays revoked, which is safe
    }
  }
}

std::uint64_t InputBackend::produce(const in::Activity& activity) {
  if (backlog_.size() >= max_backlog_) {
    backlog_.pop_front();  // the oldest goes: the guest sees the gap as lost
    ++dropped_;
  }
  const std::uint64_t seq = next_seq_++;
  backlog_.push_back(in::Report{seq, activity});
  ++produced_;
  return seq;
}

void InputBackend::produce(std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) produce(pattern(kind_, next_seq_));
}

in::Activity InputBackend::pattern(channel::ChannelKind kind, std::uint64_t seq) {
  if (kind == channel::ChannelKind::keyboard) {
    const auto scancode = static_cast<std::uint16_t>(16 + ((seq - 1) / 2) % 26);
    return {seq % 2 == 1 ? in::Action::key_down : in::Action::key_up, scancode, 0, 0};
  }
  switch (seq % 4) {
    case 2: return {in::Action::mouse_button_down, 1, 0, 0};
    case 0: return {in::Action::mouse_button_up, 1, 0, 0};
    default:
      return {in::Action::xy_motion, static_cast<std::uint16_t>(seq * 7 % 1024),
              static_cast<std::uint16_t>(seq * 13 % 768), 0};
  }
}

std::size_t InputBackend::poll(std::size_t max_reports) {
  if (paused_ || channel_.paused()) return 0;
  if (sync_pending_) {
    sync_pending_ = false;
    sync_from_channel();  // renumbers what is held before any of it goes in
  }
  auto& queue = channel_.queue(0);
  std::array<in::Report, kBatch> batch;
  std::size_t total = 0;
  // Bounded: every round that does not break moves at least one report.
  while (total < max_reports && !backlog_.empty()) {
    const std::size_t n = std::min({kBatch, max_reports - total, backlog_.size()});
    std::copy_n(backlog_.begin(), n, batch.begin());
    int status = 0;
    const std::size_t put = queue.insert_batch(batch.data(), n, &status);
    backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<std::ptrdiff_t>(put));
    total += put;
    delivered_ += put;
    if (put < n) {
      if (status != 0 && status != -EIO) last_error_ = status;  // -EIO: full, the normal backpressure
      break;
    }
  }
  return total;
}

void InputBackend::pause() {
  if (paused_) return;
  paused_ = true;
  if (!channel_.paused()) {
    revoked_guard_ = true;  // set first: if mprotect throws the guard is revoked anyway
    channel_.pause();
  }
}

void InputBackend::resume() {
  if (!paused_) return;
  if (revoked_guard_) {
    channel_.resume();
    revoked_guard_ = false;
  }
  paused_ = false;
}

InputBackend::Continue InputBackend::resume_from_channel() {
  // After a delivery the channel's last report is our own: nothing to learn,
  // and renumbering would break what the guest already has.
  if (delivered_ > 0) throw std::logic_error("resume_from_channel: this backend has already delivered reports");
  if (paused_ || channel_.paused()) {
    sync_pending_ = true;
    return Continue::deferred;
  }
  sync_pending_ = false;
  return sync_from_channel();
}

InputBackend::Continue InputBackend::sync_from_channel() {
  const auto& queue = channel_.queue(0);
  const channel::SignalQueueHeader h = channel_.queue_header(0);  // a copy, bounds-checked
  // The header is peer-writable: accept only the geometry validated at attach
  // and the input layout's slot array, so we read the slot we mean or nothing.
  if (h.signal_size != sizeof(in::Report) || h.max_slots != queue.max_slots() || h.head >= queue.max_slots() ||
      queue.header_offset() + h.sig_base_offset != in::kReportsOffset)
    return Continue::unreadable;
  if (h.num_sent == 0) return Continue::empty;
  // Insert writes slot head+1 and then moves head there: slot `head` holds the
  // last report published, whether or not the guest has removed it. A report
  // written but not yet published when the old process died is not in it.
  in::Report last{};
  if (channel_.read(in::kReportsOffset + std::uint64_t{h.head} * sizeof last, &last, sizeof last) != 0)
    return Continue::unreadable;
  if (last.seq_no == 0) return Continue::empty;  // a never-written slot
  if (last.seq_no == std::numeric_limits<std::uint64_t>::max() || !known_action(last.activity.action))
    return Continue::unreadable;
  rebase(last.seq_no + 1);
  return Continue::from_channel;
}

void InputBackend::rebase(std::uint64_t first_seq) {
  // Shift by offset from our start, so a gap left by a drop stays a gap.
  for (auto& r : backlog_) r.seq_no = first_seq + (r.seq_no - first_seq_);
  next_seq_ = first_seq + (next_seq_ - first_seq_);
  first_seq_ = first_seq;
}

InputBackendCounts InputBackend::counts() const {
  return {produced_, delivered_, backlog_.size(), dropped_};
}

}  // namespace visorlab::service
