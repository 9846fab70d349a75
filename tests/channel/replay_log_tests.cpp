// The replay log of a TCP-backed channel end, on its own: what it keeps of the
// outgoing stream, what it drops once acknowledged, how it folds into byte
// ranges beyond its limit, and what a resume re-sends from the peer's applied
// position (or why it cannot). The kept bytes are decoded with the wire
// decoder, so every frame checked is one the peer would see.
#define BOOST_TEST_MODULE channel_replay_log
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "channel/tcp/frame.hpp"
#include "channel/tcp/replay_log.hpp"

namespace tcp = visorlab::channel::tcp;

namespace {

using Bytes = std::vector<std::byte>;
using Ranges = std::map<std::uint64_t, std::uint64_t>;

// A decoded frame, copied out of the decoder (a Write's bytes point into it).
struct Seen {
  std::string kind;
  std::uint64_t offset = 0;  // write: where; index: index_offset
  Bytes bytes;               // write
  std::uint64_t value = 0;   // index: the index; ack: applied
};

std::vector<Seen> frames_of(std::span<const std::byte> stream) {
  tcp::Decoder d;
  d.feed(stream);
  std::vector<Seen> out;
  while (auto f = d.next()) {
    if (const auto* w = std::get_if<tcp::Write>(&*f)) {
      out.push_back({"write", w->offset, Bytes(w->bytes.begin(), w->bytes.end()), 0});
    } else if (const auto* ix = std::get_if<tcp::Index>(&*f)) {
      out.push_back({"index", ix->index_offset, {}, ix->index});
    } else if (const auto* ack = std::get_if<tcp::Ack>(&*f)) {
      out.push_back({"ack", 0, {}, ack->applied});
    } else if (std::holds_alternative<tcp::Heartbeat>(*f)) {
      out.push_back({"heartbeat", 0, {}, 0});
    } else {
      out.push_back({"other", 0, {}, 0});
    }
  }
  BOOST_TEST(d.buffered() == 0u);  // the stream holds whole frames only
  return out;
}

std::vector<std::string> kinds(const std::vector<Seen>& seen) {
  std::vector<std::string> out;
  for (const auto& f : seen) out.push_back(f.kind);
  return out;
}
using Kinds = std::vector<std::string>;

Bytes pattern(std::size_t n, std::uint8_t seed) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(seed + i * 7);
  return b;
}

std::size_t encoded_size(const tcp::Frame& f) {
  Bytes out;
  tcp::encode(f, out);
  return out.size();
}

tcp::Index index(std::uint32_t value) { return tcp::Index{64, value, 72, value}; }

constexpr std::size_t kWriteOverhead = tcp::kHeaderSize + 8;  // header and offset

}  // namespace

BOOST_AUTO_TEST_CASE(frames_are_kept_in_order_numbered_by_byte_from_the_session_start) {
  tcp::ReplayLog log(4096, 1 << 20);
  const Bytes data = pattern(10, 1);
  log.append(index(3));
  log.write(100, data.data(), data.size());
  log.append(tcp::Heartbeat{});

  const std::size_t total = encoded_size(index(3)) + kWriteOverhead + 10 + tcp::kHeaderSize;
  BOOST_TEST(log.kept_bytes() == total);
  BOOST_TEST(log.kept_from() == 0u);
  BOOST_TEST(log.sent() == 0u);
  BOOST_TEST(log.end() == total);
  BOOST_TEST(log.unsent_bytes() == total);
  BOOST_TEST(!log.folded());

  const auto seen = frames_of(log.unsent());
  BOOST_TEST_REQUIRE((kinds(seen) == Kinds{"index", "write", "heartbeat"}));
  BOOST_TEST(seen[0].value == 3u);
  BOOST_TEST(seen[1].offset == 100u);
  BOOST_TEST((seen[1].bytes == data));

  // Sending moves the unsent part on; the kept bytes stay until acknowledged.
  log.mark_sent(encoded_size(index(3)));
  BOOST_TEST(log.sent() == encoded_size(index(3)));
  BOOST_TEST(log.kept_bytes() == total);
  BOOST_TEST((kinds(frames_of(log.unsent())) == Kinds{"write", "heartbeat"}));

  log.restart();  // a new session: nothing kept, numbered from 0 again
  BOOST_TEST(log.kept_bytes() == 0u);
  BOOST_TEST(log.end() == 0u);
  BOOST_TEST(log.sent() == 0u);
  BOOST_TEST(log.unsent().empty());
}

BOOST_AUTO_TEST_CASE(a_large_write_goes_in_chunks_below_the_payload_limit) {
  const std::size_t n = 2 * tcp::kWriteChunk + 1000;
  tcp::ReplayLog log(4 * tcp::kWriteChunk, std::size_t{64} << 20);
  const Bytes data = pattern(n, 9);
  log.write(16, data.data(), data.size());
  const auto seen = frames_of(log.unsent());
  BOOST_TEST_REQUIRE(seen.size() == 3u);
  std::uint64_t at = 16;
  Bytes joined;
  for (const auto& f : seen) {
    BOOST_TEST(f.kind == "write");
    BOOST_TEST(f.offset == at);
    BOOST_TEST(f.bytes.size() <= tcp::kMaxPayload - 8);
    at += f.bytes.size();
    joined.insert(joined.end(), f.bytes.begin(), f.bytes.end());
  }
  BOOST_TEST((joined == data));
}

BOOST_AUTO_TEST_CASE(trim_drops_only_what_was_both_sent_and_acknowledged) {
  tcp::ReplayLog log(1 << 20, std::size_t{64} << 20);
  const Bytes data = pattern(64 * 1024, 3);
  for (std::uint64_t i = 0; i < 3; ++i) log.write(i * data.size(), data.data(), data.size());
  const std::uint64_t frame = kWriteOverhead + data.size();
  BOOST_TEST_REQUIRE(log.end() == 3 * frame);

  // A small acknowledgement is not worth moving the rest for.
  log.mark_sent(log.unsent_bytes());
  log.trim(100);
  BOOST_TEST(log.kept_from() == 0u);
  BOOST_TEST(log.kept_bytes() == 3 * frame);

  // Acknowledged beyond what was sent (a fresh link that has sent two frames):
  // only what was sent goes.
  log.restart();
  for (std::uint64_t i = 0; i < 3; ++i) log.write(i * data.size(), data.data(), data.size());
  log.mark_sent(2 * frame);
  log.trim(log.end());
  BOOST_TEST(log.kept_from() == 2 * frame);
  BOOST_TEST(log.kept_bytes() == frame);
  BOOST_TEST(log.sent() == 2 * frame);
  const auto rest = frames_of(log.unsent());
  BOOST_TEST_REQUIRE(rest.size() == 1u);
  BOOST_TEST(rest[0].offset == 2 * data.size());  // the third write, whole

  // All sent and acknowledged: nothing kept, the numbering goes on.
  log.mark_sent(frame);
  log.trim(3 * frame);
  BOOST_TEST(log.kept_bytes() == 0u);
  BOOST_TEST(log.kept_from() == 3 * frame);
  BOOST_TEST(log.end() == 3 * frame);

  // Trimming never goes backwards.
  log.trim(frame);
  BOOST_TEST(log.kept_from() == 3 * frame);
}

BOOST_AUTO_TEST_CASE(an_ack_goes_in_when_something_new_was_applied_or_when_due) {
  tcp::ReplayLog log(4096, 1 << 20);
  BOOST_TEST(!log.acknowledge(0, false));  // nothing applied, nothing to tell
  BOOST_TEST(log.kept_bytes() == 0u);

  BOOST_TEST(log.acknowledge(10, false));
  BOOST_TEST(log.told() == 10u);
  BOOST_TEST(!log.acknowledge(10, false));  // told already

  // Only when due: once kAckEvery more was applied.
  BOOST_TEST(!log.acknowledge(10 + tcp::ReplayLog::kAckEvery - 1, true));
  BOOST_TEST(log.told() == 10u);
  BOOST_TEST(log.acknowledge(10 + tcp::ReplayLog::kAckEvery, true));
  BOOST_TEST(log.told() == 10 + tcp::ReplayLog::kAckEvery);

  const auto seen = frames_of(log.unsent());
  BOOST_TEST_REQUIRE((kinds(seen) == Kinds{"ack", "ack"}));
  BOOST_TEST(seen[0].value == 10u);
  BOOST_TEST(seen[1].value == 10 + tcp::ReplayLog::kAckEvery);

  log.restart();
  BOOST_TEST(log.told() == 0u);
}

BOOST_AUTO_TEST_CASE(beyond_the_limit_the_kept_frames_fold_into_merged_byte_ranges) {
  const Bytes data = pattern(100, 5);
  tcp::ReplayLog log(4096, 200);
  log.write(100, data.data(), 50);  // [100, 150)
  BOOST_TEST(log.fold_beyond_limit() == 0u);  // within the limit: kept as frames
  BOOST_TEST(!log.folded());

  log.append(index(1));              // not a write: nothing to fold
  log.write(140, data.data(), 60);   // overlaps: [100, 200)
  log.write(300, data.data(), 10);   // apart: [300, 310)
  log.write(200, data.data(), 20);   // adjoins: [100, 220)
  log.write(4090, data.data(), 20);  // clipped to the channel: [4090, 4096)
  log.acknowledge(5, false);
  const std::uint64_t end = log.end();
  const std::size_t kept = log.kept_bytes();
  BOOST_TEST_REQUIRE(kept > 200u);

  BOOST_TEST(log.fold_beyond_limit() == kept);
  BOOST_TEST(log.folded());
  BOOST_TEST(log.kept_bytes() == 0u);
  BOOST_TEST(log.kept_from() == end);
  BOOST_TEST(log.sent() == end);
  BOOST_TEST((log.ranges() == Ranges{{100, 220}, {300, 310}, {4090, 4096}}));

  // Folded, a write only widens the ranges; no ACK goes in.
  log.write(305, data.data(), 100);  // [300, 405)
  log.write(50, data.data(), 50);    // adjoins the first: [50, 220)
  log.write(5000, data.data(), 10);  // outside the channel: nothing
  BOOST_TEST(!log.acknowledge(99, false));
  BOOST_TEST(log.kept_bytes() == 0u);
  BOOST_TEST((log.ranges() == Ranges{{50, 220}, {300, 405}, {4090, 4096}}));
  BOOST_TEST(log.fold_beyond_limit() == 0u);  // folded already

  // One write spanning several ranges merges them all.
  log.write(210, data.data(), 100);  // [210, 310) touches [50, 220) and [300, 405)
  BOOST_TEST((log.ranges() == Ranges{{50, 405}, {4090, 4096}}));
}

BOOST_AUTO_TEST_CASE(resume_re_sends_from_the_peers_applied_position) {
  tcp::ReplayLog log(4096, 1 << 20);
  const Bytes data = pattern(32, 2);
  log.write(0, data.data(), 8);
  const std::uint64_t first = log.end();
  log.write(8, data.data(), 8);
  log.append(index(4));
  log.mark_sent(log.unsent_bytes());  // all sent on the old link, none acknowledged

  const auto r = log.resume(first, 77, {});
  BOOST_TEST(r.error.empty());
  BOOST_TEST(!r.rebuilt);
  BOOST_TEST(log.told() == 77u);
  BOOST_TEST(log.sent() == first);
  const auto seen = frames_of(log.unsent());
  BOOST_TEST_REQUIRE((kinds(seen) == Kinds{"write", "index"}));
  BOOST_TEST(seen[0].offset == 8u);
  BOOST_TEST(seen[1].value == 4u);

  // The peer applied all of it: nothing to re-send, nothing kept.
  const auto all = log.resume(log.end(), 77, {});
  BOOST_TEST(all.error.empty());
  BOOST_TEST(log.unsent_bytes() == 0u);
  BOOST_TEST(log.kept_bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(resume_from_outside_what_is_kept_is_an_error_that_changes_nothing) {
  tcp::ReplayLog log(4096, 1 << 20);
  const Bytes data = pattern(16, 4);
  log.write(0, data.data(), 16);
  log.mark_sent(log.unsent_bytes());
  log.trim(log.end());  // acknowledged: dropped
  const std::uint64_t from = log.kept_from();
  BOOST_TEST_REQUIRE(from > 0u);
  log.write(16, data.data(), 16);
  const std::uint64_t end = log.end();

  // The peer claims less than it acknowledged: what it lacks is gone.
  const auto before = log.resume(from - 1, 3, {});
  BOOST_TEST(!before.error.empty());
  BOOST_TEST(before.error.find("applied " + std::to_string(from - 1) + " bytes") != std::string::npos);
  BOOST_TEST(before.error.find("keeps bytes " + std::to_string(from) + " to " + std::to_string(end)) !=
             std::string::npos);
  BOOST_TEST(log.kept_from() == from);
  BOOST_TEST(log.end() == end);
  BOOST_TEST(log.sent() == from);
  BOOST_TEST(log.told() == 3u);  // the RESUME that said so was sent all the same

  // More than was ever written: another stream.
  const auto beyond = log.resume(end + 1, 3, {});
  BOOST_TEST(!beyond.error.empty());
  BOOST_TEST(log.end() == end);
  BOOST_TEST(log.sent() == from);
}

BOOST_AUTO_TEST_CASE(a_folded_log_resumes_with_its_ranges_as_the_channel_has_them_now) {
  Bytes channel = pattern(4096, 6);
  tcp::ReplayLog log(channel.size(), 0);  // folds as soon as anything is kept
  log.write(8, channel.data() + 8, 4);
  BOOST_TEST(log.fold_beyond_limit() > 0u);
  log.write(20, channel.data() + 20, 4);
  BOOST_TEST_REQUIRE((log.ranges() == Ranges{{8, 12}, {20, 24}}));

  // Written again after the writes above were recorded: the resume carries
  // the bytes as they are now.
  for (std::size_t i = 8; i < 24; ++i) channel[i] = std::byte{0xAB};

  const auto r = log.resume(42, 9, channel);
  BOOST_TEST(r.error.empty());
  BOOST_TEST(r.rebuilt);
  BOOST_TEST(r.ranges == 2u);
  BOOST_TEST(!log.folded());
  BOOST_TEST(log.ranges().empty());
  BOOST_TEST(log.told() == 9u);
  BOOST_TEST(log.kept_from() == 42u);  // the stream goes on from what the peer applied
  BOOST_TEST(log.sent() == 42u);
  const auto seen = frames_of(log.unsent());
  BOOST_TEST_REQUIRE((kinds(seen) == Kinds{"write", "write"}));
  BOOST_TEST(seen[0].offset == 8u);
  BOOST_TEST((seen[0].bytes == Bytes(4, std::byte{0xAB})));
  BOOST_TEST(seen[1].offset == 20u);
  BOOST_TEST((seen[1].bytes == Bytes(4, std::byte{0xAB})));

  // Live again: frames are kept as frames.
  log.append(index(2));
  BOOST_TEST((kinds(frames_of(log.unsent())) == Kinds{"write", "write", "index"}));
}

BOOST_AUTO_TEST_CASE(a_folded_range_larger_than_a_chunk_is_re_sent_in_chunks) {
  Bytes channel = pattern(3 * tcp::kWriteChunk, 8);
  tcp::ReplayLog log(channel.size(), 0);
  log.write(0, channel.data(), channel.size());
  BOOST_TEST_REQUIRE(log.fold_beyond_limit() > 0u);
  const auto r = log.resume(0, 0, channel);
  BOOST_TEST(r.ranges == 1u);
  const auto seen = frames_of(log.unsent());
  BOOST_TEST_REQUIRE(seen.size() == 3u);
  for (std::size_t i = 0; i < seen.size(); ++i) {
    BOOST_TEST(seen[i].offset == i * tcp::kWriteChunk);
    BOOST_TEST(seen[i].bytes.size() == tcp::kWriteChunk);
  }
}
