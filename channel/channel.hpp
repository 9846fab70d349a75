// A channel: the bytes of spec §1 — header, signal queues, data — seen through
// one endpoint's mapping. Formatting lays a new channel out; attaching
// validates an existing image first (spec §1 check, then structure) and throws
// ChannelError naming the failed check and its offset. Afterwards nothing
// reads or writes outside the validated size, whatever the peer writes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "channel/channel_error.hpp"
#include "channel/channel_header.hpp"
#include "channel/memory.hpp"
#include "channel/pause_guard.hpp"
#include "channel/signal_queue.hpp"

namespace visorlab::channel {

struct QueueSpec {
  std::uint32_t signal_size;
  std::uint32_t max_slots;  // capacity is max_slots - 1
};

// How to lay a channel out: header at 0, queue headers from ch_space_offset,
// slot arrays from slots_offset (64-aligned, in queue order), total at least
// min_size. Bytes between are the channel type's own data.
struct ChannelSpec {
  Guid type;
  std::uint32_t version_id = 0;
  std::uint64_t features = 0;
  std::uint64_t ch_space_offset = sizeof(ChannelHeader);
  std::vector<QueueSpec> queues;
  std::uint64_t slots_offset = 0;  // 0: right after the queue headers
  std::uint64_t min_size = 0;
};

// Bytes a channel of this spec needs (throws ChannelError{layout} if it cannot be laid out).
std::uint64_t channel_size(const ChannelSpec& spec);

// What an attaching driver requires. Zero/null fields are not checked, as in
// the kernel's visor_check_channel.
struct Expect {
  Guid type{};
  std::uint64_t min_bytes = 0;
  std::uint32_t version_id = 0;
  std::uint64_t signature = kChannelSignature;
  std::uint32_t queue_count = 0;
  std::uint32_t signal_size = 0;  // every queue's, when non-zero
};

class Channel {
 public:
  // Lays out a fresh channel over the mapping, zeroing it first unless
  // `zeroed` says it is known to be all zero (a region just created): the
  // memset would touch — and make resident — every page of a multi-MiB
  // channel whose data area may never be used.
  static Channel format(Mapping mapping, const ChannelSpec& spec, bool zeroed = false);
  // Validates the image in the mapping and attaches to it.
  static Channel attach(Mapping mapping, const Expect& expect);

  // Guarded, bounds-checked access to any byte range of the channel:
  // 0, -EIO past size, -EPERM while paused.
  int read(std::uint64_t offset, void* out, std::size_t length) const;
  int write(std::uint64_t offset, const void* data, std::size_t length);

  // A copy of the header (zeroed, and a violation recorded, while paused).
  ChannelHeader header() const;
  // A copy of queue q's header (same rules).
  SignalQueueHeader queue_header(std::uint32_t q) const;

  SignalQueue& queue(std::uint32_t q);
  const SignalQueue& queue(std::uint32_t q) const;
  std::uint32_t queue_count() const { return static_cast<std::uint32_t>(queues_.size()); }

  // Ships every local write (queues and data) to a remote copy; nullptr for
  // shared memory. Set before the channel is used; the replicator outlives it.
  void set_replicator(Replicator* replicator);

  // The validated size: the header's size field, never more than the mapping.
  std::uint64_t size() const { return size_; }

  // Pause guard: after pause(), every access through this endpoint is refused
  // and recorded; the mapping itself is also made inaccessible where it is
  // ours, so even a stray raw pointer faults instead of reading. Both fail
  // safe: if mprotect throws, the guard is left revoked.
  void pause();
  void resume();
  bool paused() const { return guard_->revoked(); }
  // Its doorbell (doorbell.hpp), when the memory has room for one past the
  // channel's bytes; nullptr otherwise (a consumer then polls).
  Doorbell* doorbell() const { return bell_; }
  PauseGuard& guard() { return *guard_; }

 private:
  Channel(Mapping mapping, std::uint64_t size);
  void add_queues(std::uint32_t count);

  Mapping mapping_;
  std::uint64_t size_;
  std::unique_ptr<PauseGuard> guard_;  // stable address: queues point at it
  std::vector<SignalQueue> queues_;
  Replicator* replicator_ = nullptr;
  Doorbell* bell_ = nullptr;
};

}  // namespace visorlab::channel
