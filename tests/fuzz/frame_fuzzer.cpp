// libFuzzer target for the TCP channel's frame decoder (channel/tcp/frame.hpp).
//
// Input: byte 0 picks how many chunk sizes follow (0..7), then those sizes
// (each 1..256), then the byte stream a peer sent. The stream is fed to a
// Decoder in chunks of those sizes, in turn, taking frames out after each
// chunk until the decoder needs more bytes or throws DecodeError. Every frame
// it decodes must re-encode to exactly the bytes it came from (encoding is
// canonical) and decode again to the same frame.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "channel/tcp/frame.hpp"

namespace tcp = visorlab::channel::tcp;
using Bytes = std::vector<std::byte>;

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "frame_fuzzer: %s\n", what);
  std::abort();
}

Bytes encoded(const tcp::Frame& f) {
  Bytes out;
  tcp::encode(f, out);
  return out;
}

// A frame the decoder produced from `wire`: re-encoded it is `wire` again, and
// that decodes to one frame which re-encodes the same.
void check_round_trip(const tcp::Frame& frame, std::span<const std::byte> wire) {
  const Bytes once = encoded(frame);
  check(once.size() == wire.size() && std::memcmp(once.data(), wire.data(), wire.size()) == 0,
        "re-encoded frame differs from the bytes it was decoded from");
  tcp::Decoder again;
  again.feed(once);
  std::optional<tcp::Frame> f;
  try {
    f = again.next();
  } catch (const tcp::DecodeError&) {
    check(false, "a re-encoded frame does not decode");
  }
  check(f.has_value(), "a re-encoded frame is incomplete");
  check(again.buffered() == 0, "a re-encoded frame left bytes behind");
  check(encoded(*f) == once, "decode(encode(frame)) re-encodes differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t sizes = std::min<std::size_t>(data[0] % 8, size - 1);
  const std::uint8_t* chunk_sizes = data + 1;
  const std::span<const std::byte> stream(reinterpret_cast<const std::byte*>(data + 1 + sizes), size - 1 - sizes);

  tcp::Decoder decoder;
  std::size_t fed = 0, consumed = 0;
  for (std::size_t turn = 0; fed < stream.size(); ++turn) {
    const std::size_t chunk = sizes == 0 ? stream.size() : std::size_t{chunk_sizes[turn % sizes]} + 1;
    const std::size_t n = std::min(chunk, stream.size() - fed);
    decoder.feed(stream.subspan(fed, n));
    fed += n;
    try {
      while (auto frame = decoder.next()) {
        const std::size_t end = fed - decoder.buffered();
        check(end > consumed && end - consumed >= tcp::kHeaderSize, "a frame shorter than its header");
        check(end - consumed <= tcp::kHeaderSize + tcp::kMaxPayload, "a frame longer than kMaxPayload");
        check_round_trip(*frame, stream.subspan(consumed, end - consumed));
        consumed = end;
      }
    } catch (const tcp::DecodeError&) {
      return 0;  // the link would be dropped here
    }
    check(decoder.buffered() == fed - consumed, "the decoder lost or invented bytes");
  }
  return 0;
}
