#include "channel/signal_queue.hpp"

#include <algorithm>

namespace visorlab::channel {

SignalQueue::SignalQueue(std::byte* base, std::uint64_t header_offset, const SignalQueueHeader& header,
                         PauseGuard* guard, int index)
    : header_(base + header_offset),
      slots_(base + header_offset + header.sig_base_offset),
      header_offset_(header_offset),
      signal_size_(header.signal_size),
      max_slots_(header.max_slots),
      guard_(guard),
      index_(index),
      producer_{header.head, header.tail, header.num_sent},
      consumer_{header.tail, header.head, header.num_received, 0} {}

int SignalQueue::overflow() noexcept {
  field<std::uint64_t>(offsetof(SignalQueueHeader, num_overflows)).fetch_add(1, std::memory_order_relaxed);
  return -EIO;
}

void SignalQueue::replicate_produced(std::uint32_t first, std::size_t count) noexcept {
  // The slots may wrap: at most two contiguous runs.
  const std::uint64_t slots_at = static_cast<std::uint64_t>(slots_ - header_) + header_offset_;
  const std::size_t run = std::min<std::size_t>(count, max_slots_ - first);
  replicator_->wrote(slots_at + std::uint64_t{first} * signal_size_, std::uint64_t{run} * signal_size_);
  if (run < count) replicator_->wrote(slots_at, std::uint64_t{count - run} * signal_size_);
  replicator_->publish(header_offset_ + offsetof(SignalQueueHeader, num_sent),
                       header_offset_ + offsetof(SignalQueueHeader, head));
}

std::size_t SignalQueue::insert_batch(const void* signals, std::size_t count, int* status) noexcept {
  int result = 0;
  std::size_t done = 0;
  if (guard_->revoked()) {
    result = refused("insert");
  } else {
    auto free_slots = [&] {
      return (producer_.tail_cache + max_slots_ - producer_.head - 1) % max_slots_;
    };
    std::size_t room = free_slots();
    if (room < count) {
      if (replicator_) replicator_->pull();
      if (!reload_tail()) {
        result = -EFAULT;
        room = 0;
      } else {
        room = free_slots();
      }
    }
    done = std::min(count, room);
    const auto* src = static_cast<const std::byte*>(signals);
    const std::uint32_t first = next(producer_.head);
    std::uint32_t h = producer_.head;
    for (std::size_t i = 0; i < done; ++i) {
      h = next(h);
      copy(slot(h), src + i * signal_size_);
    }
    if (done > 0) {
      producer_.sent += done;
      field<std::uint64_t>(offsetof(SignalQueueHeader, num_sent)).store(producer_.sent, std::memory_order_relaxed);
      head_ref().store(h, std::memory_order_release);
      producer_.head = h;
      if (replicator_) replicate_produced(first, done);
      if (bell_) bell_->ring();
    }
    if (done < count && result == 0) result = overflow();
  }
  if (status) *status = result;
  return done;
}

std::size_t SignalQueue::remove_batch(void* out, std::size_t count, int* status) noexcept {
  int result = 0;
  std::size_t done = 0;
  if (guard_->revoked()) {
    result = refused("remove");
  } else {
    auto ready = [&] { return (consumer_.head_cache + max_slots_ - consumer_.tail) % max_slots_; };
    std::size_t available = ready();
    if (available < count) {
      if (replicator_) replicator_->pull();
      if (!reload_head()) {
        result = -EFAULT;
        available = 0;
      } else {
        available = ready();
      }
    }
    done = std::min(count, available);
    auto* dst = static_cast<std::byte*>(out);
    std::uint32_t t = consumer_.tail;
    for (std::size_t i = 0; i < done; ++i) {
      t = next(t);
      copy(dst + i * signal_size_, slot(t));
    }
    if (done > 0) {
      consumer_.received += done;
      field<std::uint64_t>(offsetof(SignalQueueHeader, num_received))
          .store(consumer_.received, std::memory_order_relaxed);
      tail_ref().store(t, std::memory_order_release);
      consumer_.tail = t;
      if (replicator_) replicate_consumed();
    }
    if (done < count && result == 0) result = -EAGAIN;
  }
  if (status) *status = result;
  return done;
}

int SignalQueue::peek(std::uint32_t i, void* signal) const noexcept {
  if (guard_->revoked()) return refused("peek");
  const std::uint32_t h = head_ref().load(std::memory_order_acquire);
  const std::uint32_t t = tail_ref().load(std::memory_order_acquire);
  if (h >= max_slots_ || t >= max_slots_) return -EFAULT;
  if (i >= (h + max_slots_ - t) % max_slots_) return -EAGAIN;
  std::memcpy(signal, slot((t + 1 + i) % max_slots_), signal_size_);
  return 0;
}

std::uint32_t SignalQueue::pending() const noexcept {
  if (guard_->revoked()) {
    refused("pending");
    return 0;
  }
  const std::uint32_t h = head_ref().load(std::memory_order_acquire);
  const std::uint32_t t = tail_ref().load(std::memory_order_acquire);
  if (h >= max_slots_ || t >= max_slots_) return 0;
  return (h + max_slots_ - t) % max_slots_;
}

}  // namespace visorlab::channel
