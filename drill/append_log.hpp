// An append-only log of trivially copyable records for one writer thread:
// fixed chunks, never moved, so an append is a bounds check and a store — no
// lock, no allocation until a chunk fills, and no stall copying a grown vector
// in the middle of a drill.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

namespace visorlab::drill {

template <class T>
class AppendLog {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  // Records are allocated (and touched) a chunk of `chunk` at a time, the
  // first with the first record: a log nobody writes to (a guest whose
  // workload never starts) costs nothing, and 250 of them do not fill RAM.
  explicit AppendLog(std::size_t chunk = 1 << 14) : chunk_(std::max<std::size_t>(chunk, 64)), used_(chunk_) {}

  void push(const T& record) {
    if (used_ == chunk_) [[unlikely]]
      grow();
    current_[used_++] = record;
  }

  std::size_t size() const noexcept { return chunks_.empty() ? 0 : full_ * chunk_ + used_; }

  // Appends every record, in order, to `out`.
  void copy_to(std::vector<T>& out) const {
    out.reserve(out.size() + size());
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      const std::size_t n = c + 1 == chunks_.size() ? used_ : chunk_;
      out.insert(out.end(), chunks_[c].get(), chunks_[c].get() + n);
    }
  }

 private:
  void grow() {
    if (!chunks_.empty()) ++full_;
    chunks_.push_back(std::make_unique<T[]>(chunk_));  // value-initialised: pages touched now, not on append
    current_ = chunks_.back().get();
    used_ = 0;
  }

  std::size_t chunk_;
  std::vector<std::unique_ptr<T[]>> chunks_;
  T* current_ = nullptr;
  std::size_t used_;  // in the current chunk; chunk_ (full) before the first
  std::size_t full_ = 0;
};

}  // namespace visorlab::drill
