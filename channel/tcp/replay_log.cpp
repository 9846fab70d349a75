#include "channel/tcp/replay_log.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>

namespace visorlab::channel::tcp {

void ReplayLog::restart() {
  bytes_.clear();
  kept_from_ = sent_ = 0;
  told_ = 0;
  folded_ = false;
  ranges_.clear();
}

void ReplayLog::append(const Frame& frame) { encode(frame, bytes_); }

void ReplayLog::write(std::uint64_t offset, const std::byte* bytes, std::uint64_t length) {
  if (folded_) {
    mark_range(offset, length);
    return;
  }
  for (std::uint64_t done = 0; done < length; done += kWriteChunk)
    encode_write(offset + done, bytes + done, std::min<std::uint64_t>(kWriteChunk, length - done), bytes_);
}

bool ReplayLog::acknowledge(std::uint64_t applied, bool only_if_due) {
  if (applied == told_ || (only_if_due && applied - told_ < kAckEvery)) return false;
  if (folded_) return false;  // a folded stream is rebuilt on resume, which tells the peer anew
  append(Ack{applied});
  told_ = applied;
  return true;
}

std::span<const std::byte> ReplayLog::unsent() const {
  return std::span<const std::byte>(bytes_).subspan(static_cast<std::size_t>(sent_ - kept_from_));
}

void ReplayLog::mark_sent(std::uint64_t n) { sent_ = std::min(sent_ + n, end()); }

void ReplayLog::trim(std::uint64_t peer_acked) {
  const std::uint64_t acked = std::min(peer_acked, sent_);
  if (acked <= kept_from_) return;
  const std::size_t n = static_cast<std::size_t>(acked - kept_from_);
  if (n == bytes_.size()) {
    bytes_.clear();
  } else if (n >= kTrimAt && n >= bytes_.size() / 2) {
    bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(n));
  } else {
    return;
  }
  kept_from_ = acked;
}

std::size_t ReplayLog::fold_beyond_limit() {
  if (folded_ || bytes_.size() <= limit_) return 0;
  const std::size_t n = bytes_.size();
  fold();
  return n;
}

// The kept WRITE frames become the ranges they wrote; every other frame (an
// index, an ACK, a heartbeat) is superseded by what resume() sends.
void ReplayLog::fold() {
  constexpr auto kCommand = static_cast<std::uint8_t>(Kind::command);
  constexpr std::uint8_t kWriteOp = 0x10;
  std::size_t at = 0;
  while (bytes_.size() - at >= kHeaderSize) {
    const std::byte* h = bytes_.data() + at;
    std::uint32_t length = 0;
    std::memcpy(&length, h + 4, 4);
    if (bytes_.size() - at - kHeaderSize < length) break;
    if (static_cast<std::uint8_t>(h[0]) == kCommand && static_cast<std::uint8_t>(h[1]) == kWriteOp && length >= 8) {
      std::uint64_t offset = 0;
      std::memcpy(&offset, h + kHeaderSize, 8);
      mark_range(offset, length - 8);
    }
    at += kHeaderSize + length;
  }
  kept_from_ += bytes_.size();
  sent_ = kept_from_;
  bytes_.clear();
  bytes_.shrink_to_fit();
  folded_ = true;
}

void ReplayLog::mark_range(std::uint64_t offset, std::uint64_t length) {
  if (offset >= size_ || length == 0) return;
  std::uint64_t begin = offset;
  std::uint64_t end = offset + std::min(length, size_ - offset);
  // Merge with every range it touches or adjoins.
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= begin) {
      begin = prev->first;
      end = std::max(end, prev->second);
      it = ranges_.erase(prev);
    }
  }
  while (it != ranges_.end() && it->first <= end) {
    end = std::max(end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(begin, end);
}

ReplayLog::Resumption ReplayLog::resume(std::uint64_t peer_applied, std::uint64_t told,
                                        std::span<const std::byte> channel) {
  told_ = told;
  if (folded_) {
    bytes_.clear();
    kept_from_ = sent_ = peer_applied;
    for (const auto& [begin, end] : ranges_)
      for (std::uint64_t at = begin; at < end; at += kWriteChunk)
        encode_write(at, channel.data() + at, std::min<std::uint64_t>(kWriteChunk, end - at), bytes_);
    const Resumption r{{}, true, ranges_.size()};
    ranges_.clear();
    folded_ = false;
    return r;
  }
  if (peer_applied < kept_from_ || peer_applied > end())
    return {"the peer applied " + std::to_string(peer_applied) + " bytes of this side's stream, which keeps bytes " +
                std::to_string(kept_from_) + " to " + std::to_string(end()),
            false, 0};
  sent_ = peer_applied;
  trim(peer_applied);
  return {};
}

}  // namespace visorlab::channel::tcp
