// One signal queue of a channel (spec §2), for one producer and one consumer
// in different threads or processes.
//
// Geometry (slot address, signal size, slot count) is copied at attach time
// after validation and never re-read: the peer can scribble on its header, but
// it cannot make us touch memory outside the queue. head and tail are re-read
// (acquire) only when the cached copy says full or empty, and a value out of
// range is refused as corruption. Each side keeps its own index locally.
//
// Results follow the kernel: 0 on success, -EIO when full (num_overflows
// counted), -EAGAIN when empty; plus -EPERM when the pause guard is revoked
// and -EFAULT when the peer wrote an out-of-range index.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "channel/channel_header.hpp"
#include "channel/doorbell.hpp"
#include "channel/pause_guard.hpp"
#include "channel/replicator.hpp"

namespace visorlab::channel {

class SignalQueue {
 public:
  // `header` is the validated snapshot of the queue header at `header_offset`
  // inside `base`; the caller has checked that every slot lies inside.
  SignalQueue(std::byte* base, std::uint64_t header_offset, const SignalQueueHeader& header,
              PauseGuard* guard, int index);

  // Ships this queue's writes to a remote copy (nullptr: shared memory).
  void set_replicator(Replicator* replicator) noexcept { replicator_ = replicator; }
  // Rung after every publish (nullptr: a channel without one).
  void set_doorbell(Doorbell* bell) noexcept { bell_ = bell; }

  int insert(const void* signal) noexcept;
  int remove(void* signal) noexcept;

  // Typed forms: copy sizeof(T) bytes, -EINVAL if T does not fit in a slot,
  // so neither the slot nor the object can be overrun. (A uiscmdrsp is 1185
  // bytes in a 1216-byte slot, as in the kernel.)
  template <typename T>
  int insert_signal(const T& signal) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    return sizeof(T) <= signal_size_ ? insert_n(&signal, Fixed<sizeof(T)>{}) : -EINVAL;
  }
  template <typename T>
  int remove_signal(T& signal) noexcept {
    static_assert(std::is_trivially_copyable_v<T>);
    return sizeof(T) <= signal_size_ ? remove_n(&signal, Fixed<sizeof(T)>{}) : -EINVAL;
  }

  // Inserts up to `count` signals laid out back to back (signal_size apart),
  // exactly as repeated insert() calls stopping at the first failure would,
  // but with one head store. Returns how many went in; *status gets 0 or the
  // failing call's result.
  std::size_t insert_batch(const void* signals, std::size_t count, int* status = nullptr) noexcept;
  // Removes up to `count` signals into `out`; one tail store. Returns how many.
  std::size_t remove_batch(void* out, std::size_t count, int* status = nullptr) noexcept;

  // Copies the i-th pending signal (0 = next to be removed) without consuming it.
  int peek(std::uint32_t i, void* signal) const noexcept;
  // Signals inserted and not yet removed, from the live indices (0 if corrupt,
  // and 0 with a recorded violation while paused).
  std::uint32_t pending() const noexcept;

  std::uint32_t signal_size() const noexcept { return signal_size_; }
  std::uint32_t max_slots() const noexcept { return max_slots_; }
  std::uint32_t capacity() const noexcept { return max_slots_ - 1; }
  std::uint64_t header_offset() const noexcept { return header_offset_; }
  int index() const noexcept { return index_; }

 private:
  template <typename T>
  std::atomic_ref<T> field(std::size_t offset) const noexcept {
    return std::atomic_ref<T>(*reinterpret_cast<T*>(header_ + offset));
  }
  std::atomic_ref<std::uint32_t> head_ref() const noexcept {
    return field<std::uint32_t>(offsetof(SignalQueueHeader, head));
  }
  std::atomic_ref<std::uint32_t> tail_ref() const noexcept {
    return field<std::uint32_t>(offsetof(SignalQueueHeader, tail));
  }
  std::byte* slot(std::uint32_t i) const noexcept {
    return slots_ + static_cast<std::size_t>(i) * signal_size_;
  }
  std::uint32_t next(std::uint32_t i) const noexcept { return i + 1 == max_slots_ ? 0 : i + 1; }
  int refused(const char* operation) const noexcept {
    return guard_->violation(operation, index_, header_offset_);
  }
  int overflow() noexcept;
  // Signal boundaries for a remote copy: slots [first, first+count) and the
  // producer's counter and head; or the consumer's counter and tail.
  void replicate_produced(std::uint32_t first, std::size_t count) noexcept;
  void replicate_consumed() noexcept {
    if (replicator_)
      replicator_->publish(header_offset_ + offsetof(SignalQueueHeader, num_received),
                           header_offset_ + offsetof(SignalQueueHeader, tail));
  }
  // The copy size as a type: a compile-time size lets the compiler inline the
  // copy (no libc call for a 64-byte, one-cache-line signal).
  template <std::size_t N>
  using Fixed = std::integral_constant<std::size_t, N>;
  template <typename Size>
  int insert_n(const void* signal, Size size) noexcept;
  template <typename Size>
  int remove_n(void* signal, Size size) noexcept;
  void copy(void* to, const void* from) const noexcept { std::memcpy(to, from, signal_size_); }
  // Reload the peer's index; false if it is out of range.
  bool reload_tail() noexcept;
  bool reload_head() noexcept;

  // Immutable after construction.
  std::byte* header_;
  std::byte* slots_;
  std::uint64_t header_offset_;
  std::uint32_t signal_size_;
  std::uint32_t max_slots_;
  PauseGuard* guard_;
  int index_;
  Replicator* replicator_ = nullptr;
  Doorbell* bell_ = nullptr;

  // Producer side and consumer side on separate cache lines, so one thread
  // inserting and another removing through this object never share a line.
  struct alignas(64) Producer {
    std::uint32_t head;        // our index, authoritative
    std::uint32_t tail_cache;  // last tail we read
    std::uint64_t sent;
  } producer_;
  struct alignas(64) Consumer {
    std::uint32_t tail;
    std::uint32_t head_cache;
    std::uint64_t received;
    std::uint32_t empty_polls = 0;  // consecutive polls that found nothing
  } consumer_;
  // Measured on the 2-core VM (bench/channel_bench): a ping-pong consumer polls
  // 4-8 times per hop; at 4 the round trip gains ~8% over no prefetch while a
  // streaming consumer keeps >= 1.05x boost; at 8 or 16 the gain is gone.
  static constexpr std::uint32_t kIdlePolls = 4;
};

// The counter is stored before the index: both live in the same cache line, so
// the producer writes that line once instead of taking it back from a consumer
// that read the index in between. A reader sees num_sent at most one ahead.
inline int SignalQueue::insert(const void* signal) noexcept {
  return signal_size_ == 64 ? insert_n(signal, Fixed<64>{}) : insert_n(signal, std::size_t{signal_size_});
}

inline int SignalQueue::remove(void* signal) noexcept {
  return signal_size_ == 64 ? remove_n(signal, Fixed<64>{}) : remove_n(signal, std::size_t{signal_size_});
}

template <typename Size>
inline int SignalQueue::insert_n(const void* signal, Size size) noexcept {
  if (guard_->revoked()) return refused("insert");
  const std::uint32_t h = next(producer_.head);
  if (h == producer_.tail_cache) {
    if (replicator_) replicator_->pull();
    if (!reload_tail()) return -EFAULT;
    if (h == producer_.tail_cache) return overflow();
  }
  std::memcpy(slot(h), signal, size);
  field<std::uint64_t>(offsetof(SignalQueueHeader, num_sent)).store(++producer_.sent, std::memory_order_relaxed);
  head_ref().store(h, std::memory_order_release);  // publishes the slot
  producer_.head = h;
  if (replicator_) replicate_produced(h, 1);
  if (bell_) bell_->ring();
  return 0;
}

template <typename Size>
inline int SignalQueue::remove_n(void* signal, Size size) noexcept {
  if (guard_->revoked()) return refused("remove");
  const std::uint32_t t = next(consumer_.tail);
  if (consumer_.tail == consumer_.head_cache) {
    if (replicator_) replicator_->pull();
    if (!reload_head()) return -EFAULT;
    if (consumer_.tail == consumer_.head_cache) {
      // An idle consumer is latency-bound: ask for the next slot's line now so
      // that, when head moves, it travels with head's instead of after it. A
      // consumer that just caught up with a streaming producer is not, and a
      // prefetch would pull the line from under the producer mid-write.
      if (++consumer_.empty_polls >= kIdlePolls) __builtin_prefetch(slot(t));
      return -EAGAIN;
    }
  }
  consumer_.empty_polls = 0;
  std::memcpy(signal, slot(t), size);
  field<std::uint64_t>(offsetof(SignalQueueHeader, num_received))
      .store(++consumer_.received, std::memory_order_relaxed);
  tail_ref().store(t, std::memory_order_release);  // hands the slot back
  consumer_.tail = t;
  if (replicator_) replicate_consumed();
  return 0;
}

inline bool SignalQueue::reload_tail() noexcept {
  const std::uint32_t t = tail_ref().load(std::memory_order_acquire);
  if (t >= max_slots_) return false;
  producer_.tail_cache = t;
  return true;
}

inline bool SignalQueue::reload_head() noexcept {
  const std::uint32_t h = head_ref().load(std::memory_order_acquire);
  if (h >= max_slots_) return false;
  consumer_.head_cache = h;
  return true;
}

}  // namespace visorlab::channel
