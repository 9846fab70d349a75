// An append-only log of trivially copyable records for one writer thread:
// fixed chunks, never moved, so an append is a bounds check and a store — no
// lock, no allocation until a chunk fills, and no stall copying a grown vector
// in the middle of a drill.
//
// Records keep their index for life (0 for the first ever pushed), and a
// reader that has taken records away says so with drop_before: whole chunks
// below are freed (one is kept for reuse), so a log drained as it is written
// stays a few chunks long however long the drill runs.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace visorlab::drill {

template <class T>
class AppendLog {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Records are allocated (and touched) a chunk of `chunk` at a time, the
  // first with the first record: a log nobody writes to (a guest whose
  // workload never starts) costs nothing, and 250 of them do not fill RAM.
  explicit AppendLog(std::size_t chunk = 1 << 14) : chunk_(std::max<std::size_t>(chunk, 64)) {}

  void push(const T& record) {
    if (end_ == limit_) [[unlikely]]
      grow();
    current_[end_++ % chunk_] = record;
  }

  // The index of the first record kept, and one past the last pushed.
  std::uint64_t begin() const noexcept { return begin_; }
  std::uint64_t end() const noexcept { return end_; }
  std::size_t size() const noexcept { return static_cast<std::size_t>(end_ - begin_); }

  // Record `i`, begin() ≤ i < end().
  const T& operator[](std::uint64_t i) const {
    if (i < begin_ || i >= end_) throw std::out_of_range("append log: record " + std::to_string(i) + " is not kept");
    return chunks_[static_cast<std::size_t>(i / chunk_ - first_chunk_)][i % chunk_];
  }

  // Forgets records below `i` (clamped to end()).
  void drop_before(std::uint64_t i) {
    begin_ = std::max(begin_, std::min(i, end_));
    // A chunk goes once nothing in it is kept and it is not the one being filled.
    while (chunks_.size() > 1 && (first_chunk_ + 1) * chunk_ <= begin_) {
      if (!spare_) spare_ = std::move(chunks_.front());
      chunks_.pop_front();
      ++first_chunk_;
    }
  }

  // Calls f(record) for every record kept, in order.
  template <class F>
  void for_each(F f) const {
    for (std::uint64_t i = begin_; i < end_; ++i) f((*this)[i]);
  }

 private:
  void grow() {
    if (chunks_.empty()) first_chunk_ = end_ / chunk_;
    // value-initialised: pages touched now, not on append (a reused chunk already is)
    chunks_.push_back(spare_ ? std::move(spare_) : std::make_unique<T[]>(chunk_));
    current_ = chunks_.back().get();
    limit_ += chunk_;
  }

  std::size_t chunk_;
  std::deque<std::unique_ptr<T[]>> chunks_;
  std::unique_ptr<T[]> spare_;
  std::uint64_t first_chunk_ = 0;  // chunk number of chunks_.front()
  T* current_ = nullptr;
  std::uint64_t begin_ = 0, end_ = 0;
  std::uint64_t limit_ = 0;  // end_ may grow to this before the next chunk
};

}  // namespace visorlab::drill
