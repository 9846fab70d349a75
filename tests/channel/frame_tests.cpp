// Wire frames of TCP-backed channels: every frame round-trips, a stream split
// anywhere decodes the same, and each malformed input is a DecodeError naming
// the problem — never a crash, a read past the input or a peer-sized buffer.
#define BOOST_TEST_MODULE channel_frame
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "channel/tcp/frame.hpp"

namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;

namespace {

using Bytes = std::vector<std::byte>;

// Builds frames byte by byte from the wire format's numbers, not through the
// encoder under test.
class Wire {
 public:
  template <typename T>
  Wire& put(T value) {
    for (std::size_t i = 0; i < sizeof(T); ++i)
      bytes_.push_back(static_cast<std::byte>(static_cast<std::uint64_t>(value) >> (8 * i)));
    return *this;
  }
  Wire& u8(std::uint8_t v) { return put(v); }
  Wire& u16(std::uint16_t v) { return put(v); }
  Wire& u32(std::uint32_t v) { return put(v); }
  Wire& u64(std::uint64_t v) { return put(v); }
  Wire& text(const std::string& s) {
    for (char c : s) bytes_.push_back(static_cast<std::byte>(c));
    return *this;
  }
  Wire& zeros(std::size_t n) {
    bytes_.insert(bytes_.end(), n, std::byte{0});
    return *this;
  }
  const Bytes& bytes() const { return bytes_; }
  std::size_t size() const { return bytes_.size(); }

 private:
  Bytes bytes_;
};

// A whole frame: header {kind, op, reserved, length} then the payload.
Bytes frame(std::uint8_t kind, std::uint8_t op, const Wire& payload, std::uint16_t reserved = 0) {
  Wire w;
  w.u8(kind).u8(op).u16(reserved).u32(static_cast<std::uint32_t>(payload.size()));
  Bytes out = w.bytes();
  out.insert(out.end(), payload.bytes().begin(), payload.bytes().end());
  return out;
}

Bytes header_only(std::uint8_t kind, std::uint8_t op, std::uint32_t length, std::uint16_t reserved = 0) {
  return Wire().u8(kind).u8(op).u16(reserved).u32(length).bytes();
}

Wire init_payload(std::uint8_t side, std::uint8_t flags, const std::string& name, std::uint32_t magic = tcp::kMagic) {
  Wire w;
  w.u32(magic).u16(1).u16(1).u8(side).u8(flags).u16(static_cast<std::uint16_t>(name.size())).text(name).u64(42);
  return w;
}

Wire index_payload() { return Wire().u64(1).u64(2).u64(3).u32(4); }

// status, type, size, ch_space_offset, count, then 16 bytes per queue.
Wire caps_payload(std::uint32_t count) {
  Wire w;
  w.u32(0).zeros(16).u64(16384).u64(128).u32(count);
  for (std::uint32_t i = 0; i < count; ++i) w.u32(64).u32(16).u64(256);
  return w;
}

Bytes encoded(const tcp::Frame& f) {
  Bytes out;
  tcp::encode(f, out);
  return out;
}

// Decodes exactly one frame from `input` and hands it to `check` while a
// Write's bytes are still valid.
template <typename F, typename Check>
void decode_one(const Bytes& input, Check check) {
  tcp::Decoder d;
  d.feed(input);
  auto f = d.next();
  BOOST_REQUIRE(f.has_value());
  BOOST_REQUIRE(std::holds_alternative<F>(*f));
  check(std::get<F>(*f));
  BOOST_TEST(d.buffered() == 0u);
  BOOST_TEST(!d.next().has_value());
}

// The DecodeError's message for `input`, or a note that there was none.
std::string error_of(const Bytes& input) {
  tcp::Decoder d;
  d.feed(input);
  try {
    auto f = d.next();
    return f ? "(decoded a frame)" : "(needs more bytes)";
  } catch (const tcp::DecodeError& e) {
    return e.what();
  }
}

void expect_error(const Bytes& input, const std::string& mention) {
  const std::string msg = error_of(input);
  BOOST_TEST(msg.find(mention) != std::string::npos, "error '" << msg << "' should mention '" << mention << "'");
}

const ch::Guid kType = ch::Guid::make(0x11112222, 0x3333, 0x4444, {5, 5, 6, 6, 7, 7, 8, 8});
const std::string kWriteBytes = "bytes the guest wrote";

// One of every frame alternative, with non-default fields.
std::vector<Bytes> sample_frames() {
  static const Bytes payload(reinterpret_cast<const std::byte*>(kWriteBytes.data()),
                             reinterpret_cast<const std::byte*>(kWriteBytes.data()) + kWriteBytes.size());
  tcp::Capabilities caps;
  caps.type = kType;
  caps.size = 16384;
  caps.ch_space_offset = 128;
  caps.queues = {{64, 16, 256}, {64, 32, 1280}};
  tcp::Capabilities resp = caps;
  resp.response = true;
  resp.status = 7;
  return {
      encoded(tcp::Init{false, 1, 0, tcp::Side::service, true, false, "g0/vhba0"}),
      encoded(tcp::Init{true, 1, 3, tcp::Side::guest, true, true, ""}),
      encoded(caps),
      encoded(resp),
      encoded(tcp::Capabilities{}),
      encoded(tcp::Write{false, 12000, payload}),
      encoded(tcp::Write{true, 0, {}}),
      encoded(tcp::Index{192, 41, 188, 9}),
      encoded(tcp::ImageDone{16384}),
      encoded(tcp::Heartbeat{}),
      encoded(tcp::Ack{0x0102030405060708}),
      encoded(tcp::Resume{0xFEEDFACECAFEBEEF, 1u << 20}),
      encoded(tcp::TransportEvent{tcp::EventCode::partner_failed, "killed"}),
      encoded(tcp::TransportEvent{tcp::EventCode::deregistered, ""}),
      encoded(tcp::TransportEvent{tcp::EventCode::migrated, "moved to host b"}),
  };
}

Bytes concat(const std::vector<Bytes>& parts) {
  Bytes all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

// Takes every complete frame out of `d`, each re-encoded (encoding is
// canonical, so the re-encoding equals the bytes that were sent).
void drain(tcp::Decoder& d, std::vector<Bytes>& out) {
  while (auto f = d.next()) out.push_back(encoded(*f));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(round_trip)

BOOST_AUTO_TEST_CASE(init_and_init_complete_keep_every_field) {
  decode_one<tcp::Init>(encoded(tcp::Init{false, 1, 2, tcp::Side::service, true, false, "g0/vhba0"}),
                        [](const tcp::Init& f) {
                          BOOST_TEST(!f.complete);
                          BOOST_TEST(f.major == 1);
                          BOOST_TEST(f.minor == 2);
                          BOOST_TEST((f.side == tcp::Side::service));
                          BOOST_TEST(f.has_image);
                          BOOST_TEST(!f.fresh);
                          BOOST_TEST(f.name == "g0/vhba0");
                        });
  decode_one<tcp::Init>(encoded(tcp::Init{true, 1, 0, tcp::Side::guest, false, true, std::string(255, 'n')}),
                        [](const tcp::Init& f) {
                          BOOST_TEST(f.complete);
                          BOOST_TEST((f.side == tcp::Side::guest));
                          BOOST_TEST(!f.has_image);
                          BOOST_TEST(f.fresh);
                          BOOST_TEST(f.name == std::string(255, 'n'));
                        });
}

// The process a 1.1 peer names round-trips; a 1.0 peer's INIT (no process
// field) decodes as process 0 and encodes back byte for byte (the frame
// fuzzer's round trip found it did not); naming process 0 is malformed.
BOOST_AUTO_TEST_CASE(init_names_its_process_or_leaves_the_field_out) {
  tcp::Init with{false, 1, 1, tcp::Side::guest, false, false, "c"};
  with.process = 0x1122334455667788ull;
  decode_one<tcp::Init>(encoded(with), [](const tcp::Init& f) { BOOST_TEST(f.process == 0x1122334455667788ull); });
  const Bytes without = encoded(tcp::Init{false, 1, 0, tcp::Side::guest, false, false, "c"});
  BOOST_TEST(without.size() + 8 == encoded(with).size());
  decode_one<tcp::Init>(without, [&](const tcp::Init& f) {
    BOOST_TEST(f.process == 0u);
    BOOST_TEST((encoded(f) == without));
  });
  Bytes zero = encoded(with);
  std::fill(zero.end() - 8, zero.end(), std::byte{0});
  expect_error(zero, "process 0");
}

BOOST_AUTO_TEST_CASE(capabilities_keep_type_size_and_queues) {
  tcp::Capabilities caps;
  caps.response = true;
  caps.status = 3;
  caps.type = kType;
  caps.size = 1 << 20;
  caps.ch_space_offset = 128;
  for (std::uint32_t i = 0; i < tcp::kMaxQueues; ++i) caps.queues.push_back({64 + i, 16 + i, 256 + i * 1024});
  decode_one<tcp::Capabilities>(encoded(caps), [&](const tcp::Capabilities& f) {
    BOOST_TEST(f.response);
    BOOST_TEST(f.status == 3u);
    BOOST_TEST((f.type == kType));
    BOOST_TEST(f.size == caps.size);
    BOOST_TEST(f.ch_space_offset == 128u);
    BOOST_TEST((f.queues == caps.queues));
  });
  decode_one<tcp::Capabilities>(encoded(tcp::Capabilities{}), [](const tcp::Capabilities& f) {
    BOOST_TEST(!f.response);
    BOOST_TEST(f.type.is_null());
    BOOST_TEST(f.size == 0u);
    BOOST_TEST(f.queues.empty());
  });
}

BOOST_AUTO_TEST_CASE(write_and_image_keep_offset_and_bytes) {
  const Bytes payload(reinterpret_cast<const std::byte*>(kWriteBytes.data()),
                      reinterpret_cast<const std::byte*>(kWriteBytes.data()) + kWriteBytes.size());
  for (bool image : {false, true}) {
    decode_one<tcp::Write>(encoded(tcp::Write{image, 0x123456789A, payload}), [&](const tcp::Write& f) {
      BOOST_TEST(f.image == image);
      BOOST_TEST(f.offset == 0x123456789Au);
      BOOST_TEST(std::string(reinterpret_cast<const char*>(f.bytes.data()), f.bytes.size()) == kWriteBytes);
    });
  }
  // encode_write makes the same bytes as encode(Write{...}).
  Bytes direct;
  tcp::encode_write(42, payload.data(), payload.size(), direct);
  BOOST_TEST((direct == encoded(tcp::Write{false, 42, payload})));
  decode_one<tcp::Write>(encoded(tcp::Write{false, 7, {}}), [](const tcp::Write& f) {
    BOOST_TEST(f.offset == 7u);
    BOOST_TEST(f.bytes.empty());
  });
}

BOOST_AUTO_TEST_CASE(index_image_done_heartbeat_and_events) {
  decode_one<tcp::Index>(encoded(tcp::Index{192, 0xFFFFFFFFFFFF, 188, 0xFFFFFFFF}), [](const tcp::Index& f) {
    BOOST_TEST(f.counter_offset == 192u);
    BOOST_TEST(f.counter == 0xFFFFFFFFFFFFu);
    BOOST_TEST(f.index_offset == 188u);
    BOOST_TEST(f.index == 0xFFFFFFFFu);
  });
  decode_one<tcp::ImageDone>(encoded(tcp::ImageDone{16384}), [](const tcp::ImageDone& f) { BOOST_TEST(f.size == 16384u); });
  decode_one<tcp::Heartbeat>(encoded(tcp::Heartbeat{}), [](const tcp::Heartbeat&) {});
  decode_one<tcp::Ack>(encoded(tcp::Ack{0xFFFFFFFFFFFFFFFF}), [](const tcp::Ack& f) { BOOST_TEST(f.applied == ~0ull); });
  decode_one<tcp::Resume>(encoded(tcp::Resume{42, 1u << 20}), [](const tcp::Resume& f) {
    BOOST_TEST(f.session == 42u);
    BOOST_TEST(f.applied == (1u << 20));
  });
  for (auto code : {tcp::EventCode::partner_failed, tcp::EventCode::deregistered, tcp::EventCode::migrated}) {
    decode_one<tcp::TransportEvent>(encoded(tcp::TransportEvent{code, "why it happened"}), [&](const tcp::TransportEvent& f) {
      BOOST_TEST((f.code == code));
      BOOST_TEST(f.reason == "why it happened");
    });
  }
}

// The encoder clamps what the decoder would refuse, so it never produces an
// undecodable INIT or transport event.
BOOST_AUTO_TEST_CASE(encoder_clamps_long_names_and_reasons) {
  decode_one<tcp::Init>(encoded(tcp::Init{false, 1, 0, tcp::Side::guest, false, false, std::string(300, 'x')}),
                        [](const tcp::Init& f) { BOOST_TEST(f.name.size() == tcp::kMaxName); });
  decode_one<tcp::TransportEvent>(encoded(tcp::TransportEvent{tcp::EventCode::partner_failed, std::string(5000, 'r')}),
                                  [](const tcp::TransportEvent& f) { BOOST_TEST(f.reason.size() == tcp::kMaxReason); });
}

BOOST_AUTO_TEST_CASE(prepare_and_commit_decode_like_feed) {
  const Bytes stream = concat(sample_frames());
  tcp::Decoder d;
  std::vector<Bytes> got;
  for (std::size_t at = 0; at < stream.size();) {
    auto room = d.prepare(7);
    BOOST_REQUIRE(room.size() == 7u);
    const std::size_t n = std::min<std::size_t>(7, stream.size() - at);
    std::memcpy(room.data(), stream.data() + at, n);
    d.commit(n);
    at += n;
    drain(d, got);
  }
  BOOST_TEST((got == sample_frames()));
  BOOST_TEST(d.buffered() == 0u);
}

// Feeding nothing — also into a decoder that has no buffer yet — changes
// nothing (no memcpy through a null pointer either: run under UBSan).
BOOST_AUTO_TEST_CASE(feeding_nothing_is_a_no_op) {
  tcp::Decoder d;
  d.feed({});
  BOOST_TEST(d.buffered() == 0u);
  BOOST_TEST(!d.next().has_value());
  const Bytes hb = encoded(tcp::Heartbeat{});
  d.feed(hb);
  d.feed({});
  BOOST_TEST(d.buffered() == hb.size());
  BOOST_TEST(d.next().has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stream_splits)

BOOST_AUTO_TEST_CASE(a_split_at_every_byte_boundary_decodes_the_same_frames) {
  const auto frames = sample_frames();
  const Bytes stream = concat(frames);
  for (std::size_t split = 0; split <= stream.size(); ++split) {
    tcp::Decoder d;
    std::vector<Bytes> got;
    d.feed(std::span(stream).first(split));
    drain(d, got);
    d.feed(std::span(stream).subspan(split));
    drain(d, got);
    BOOST_TEST_REQUIRE((got == frames), "split at " << split);
    BOOST_TEST(d.buffered() == 0u);
  }
}

BOOST_AUTO_TEST_CASE(byte_by_byte_decodes_the_same_frames) {
  const auto frames = sample_frames();
  const Bytes stream = concat(frames);
  tcp::Decoder d;
  std::vector<Bytes> got;
  for (std::size_t i = 0; i < stream.size(); ++i) {
    d.feed(std::span(stream).subspan(i, 1));
    drain(d, got);
  }
  BOOST_TEST((got == frames));
  BOOST_TEST(d.buffered() == 0u);
}

// Each prefix of each frame asks for more bytes: no throw, nothing consumed.
// The prefix sits in its own exactly-sized buffer, so a read past it shows up
// under AddressSanitizer.
BOOST_AUTO_TEST_CASE(a_frame_cut_midway_needs_more_bytes) {
  for (const auto& f : sample_frames()) {
    for (std::size_t cut = 0; cut < f.size(); ++cut) {
      const Bytes prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(cut));
      tcp::Decoder d;
      d.feed(prefix);
      std::optional<tcp::Frame> got;
      BOOST_REQUIRE_NO_THROW(got = d.next());
      BOOST_TEST_REQUIRE(!got.has_value(), "a frame of " << f.size() << " bytes decoded from " << cut);
      BOOST_TEST(d.buffered() == cut);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(malformed)

BOOST_AUTO_TEST_CASE(unknown_kind) {
  expect_error(header_only(0x42, 0x01, 0), "unknown frame kind 66");
  expect_error(header_only(0x00, 0x00, 0), "unknown frame kind 0");
}

BOOST_AUTO_TEST_CASE(unknown_op_per_kind) {
  expect_error(frame(0xC0, 0x03, init_payload(1, 0, "c")), "unknown init op 3");
  expect_error(frame(0x80, 0x55, Wire()), "unknown command op 85");
  expect_error(frame(0x80, 0x02, Wire()), "unknown command op 2");
  expect_error(frame(0xFF, 0x03, Wire().text("why")), "unknown transport event 3");
}

BOOST_AUTO_TEST_CASE(reserved_bits_set) {
  expect_error(frame(0x80, 0x14, Wire(), 0x0100), "reserved bits set");
  expect_error(frame(0x80, 0x14, Wire(), 0x0001), "reserved bits set");
}

// A length past kMaxPayload is refused from the header alone: the decoder
// neither waits for nor makes room for the claimed payload.
BOOST_AUTO_TEST_CASE(length_above_max_payload) {
  for (std::uint32_t length : {tcp::kMaxPayload + 1, 0xFFFFFFFFu}) {
    tcp::Decoder d;
    d.feed(header_only(0x80, 0x10, length));
    BOOST_TEST(d.buffered() == tcp::kHeaderSize);
    try {
      d.next();
      BOOST_FAIL("length " << length << " accepted");
    } catch (const tcp::DecodeError& e) {
      BOOST_TEST(std::string(e.what()).find("frame length " + std::to_string(length) + " exceeds") != std::string::npos,
                 e.what());
    }
    BOOST_TEST(d.buffered() <= tcp::kHeaderSize);
  }
  // Exactly kMaxPayload is legal: it waits for the payload.
  tcp::Decoder d;
  d.feed(header_only(0x80, 0x10, tcp::kMaxPayload));
  BOOST_TEST(!d.next().has_value());
  BOOST_TEST(d.buffered() == tcp::kHeaderSize);
}

// Each fixed-size payload cut at every length names the field it ends in.
BOOST_AUTO_TEST_CASE(payload_too_short_names_the_field) {
  struct Field {
    std::size_t end;
    const char* name;
  };
  auto check_cuts = [](std::uint8_t kind, std::uint8_t op, const Wire& full, std::vector<Field> fields) {
    for (std::size_t length = 0; length < full.size(); ++length) {
      Wire cut;
      for (std::size_t i = 0; i < length; ++i) cut.u8(static_cast<std::uint8_t>(full.bytes()[i]));
      std::size_t f = 0;
      while (fields[f].end <= length) ++f;
      BOOST_TEST_CONTEXT("op " << int(op) << " payload of " << length << " bytes") {
        expect_error(frame(kind, op, cut), std::string("payload ends inside ") + fields[f].name);
      }
    }
  };
  check_cuts(0x80, 0x11, index_payload(),
             {{8, "counter offset"}, {16, "counter"}, {24, "index offset"}, {28, "index"}});
  check_cuts(0x80, 0x13, Wire().u64(16384), {{8, "size"}});
  check_cuts(0x80, 0x15, Wire().u64(16384), {{8, "applied"}});
  check_cuts(0x80, 0x16, Wire().u64(7).u64(16384), {{8, "session"}, {16, "applied"}});
  check_cuts(0x80, 0x10, Wire().u64(64), {{8, "offset"}});
  check_cuts(0x80, 0x12, Wire().u64(64), {{8, "offset"}});
  const std::vector<Field> caps = {{4, "status"},           {20, "type"},         {28, "size"},
                                   {36, "ch_space_offset"}, {40, "queue count"},  {44, "signal_size"},
                                   {48, "max_slots"},       {56, "sig_base_offset"}};
  check_cuts(0x80, 0x01, caps_payload(1), caps);
  check_cuts(0x80, 0x81, caps_payload(1), caps);
  // Init: the name length promises more bytes than the payload has. (Cut
  // right after the name it is a 1.0 INIT, which names no process.)
  const Wire init = init_payload(1, 0, "vhba");
  for (std::size_t length = 0; length < init.size(); ++length) {
    if (length == 16) continue;
    Wire cut;
    for (std::size_t i = 0; i < length; ++i) cut.u8(static_cast<std::uint8_t>(init.bytes()[i]));
    const char* field = length < 4 ? "magic" : length < 6 ? "major" : length < 8 ? "minor" : length < 9 ? "side"
                        : length < 10 ? "flags" : length < 12 ? "name length" : length < 16 ? "name" : "process";
    BOOST_TEST_CONTEXT("init payload of " << length << " bytes") {
      expect_error(frame(0xC0, 0x01, cut), std::string("payload ends inside ") + field);
    }
  }
}

BOOST_AUTO_TEST_CASE(init_from_a_1_0_peer_names_no_process) {
  Wire w;
  w.u32(tcp::kMagic).u16(1).u16(0).u8(1).u8(0).u16(4).text("vhba");
  tcp::Decoder d;
  d.feed(frame(0xC0, 0x01, w));
  const auto f = d.next();
  BOOST_REQUIRE(f.has_value());
  const auto* init = std::get_if<tcp::Init>(&*f);
  BOOST_REQUIRE(init);
  BOOST_TEST(init->name == "vhba");
  BOOST_TEST(init->process == 0u);
}

BOOST_AUTO_TEST_CASE(trailing_bytes) {
  expect_error(frame(0x80, 0x11, index_payload().u8(0)), "index: 1 trailing bytes");
  expect_error(frame(0x80, 0x13, Wire().u64(1).u32(0)), "image done: 4 trailing bytes");
  expect_error(frame(0x80, 0x14, Wire().u8(0)), "heartbeat: 1 trailing bytes");
  expect_error(frame(0x80, 0x15, Wire().u64(1).u8(0)), "ack: 1 trailing bytes");
  expect_error(frame(0x80, 0x16, Wire().u64(1).u64(2).u8(0)), "resume: 1 trailing bytes");
  expect_error(frame(0x80, 0x01, caps_payload(2).u8(0).u8(0)), "capabilities: 2 trailing bytes");
  expect_error(frame(0xC0, 0x02, init_payload(0, 0, "c").u8(0)), "init: 1 trailing bytes");
}

BOOST_AUTO_TEST_CASE(init_fields_out_of_range) {
  expect_error(frame(0xC0, 0x01, init_payload(1, 0, "c", 0x12345678)), "init: bad magic");
  expect_error(frame(0xC0, 0x01, init_payload(2, 0, "c")), "init: side 2");
  expect_error(frame(0xC0, 0x01, init_payload(0xFF, 0, "c")), "init: side 255");
  expect_error(frame(0xC0, 0x01, init_payload(1, 4, "c")), "init: unknown flags");
  expect_error(frame(0xC0, 0x02, init_payload(1, 0x80, "c")), "init: unknown flags");
  // A name longer than 255 is refused on its length, whatever follows.
  const std::string long_name(256, 'n');
  expect_error(frame(0xC0, 0x01, init_payload(1, 0, long_name)), "init: name length 256");
  Wire huge;
  huge.u32(tcp::kMagic).u16(1).u16(0).u8(1).u8(0).u16(0xFFFF);
  expect_error(frame(0xC0, 0x01, huge), "init: name length 65535");
}

BOOST_AUTO_TEST_CASE(too_many_queues) {
  // Refused on the count, before any queue is read (the payload has none).
  Wire w;
  w.u32(0).zeros(16).u64(16384).u64(128).u32(tcp::kMaxQueues + 1);
  expect_error(frame(0x80, 0x01, w), "capabilities: " + std::to_string(tcp::kMaxQueues + 1) + " queues");
  Wire all;
  all.u32(0).zeros(16).u64(16384).u64(128).u32(0xFFFFFFFF);
  expect_error(frame(0x80, 0x81, all), "capabilities: 4294967295 queues");
  // kMaxQueues itself is fine.
  decode_one<tcp::Capabilities>(frame(0x80, 0x01, caps_payload(tcp::kMaxQueues)), [](const tcp::Capabilities& f) {
    BOOST_TEST(f.queues.size() == tcp::kMaxQueues);
  });
}

BOOST_AUTO_TEST_CASE(transport_event_reason_too_long) {
  expect_error(frame(0xFF, 0x01, Wire().text(std::string(tcp::kMaxReason + 1, 'r'))), "transport event reason too long");
  decode_one<tcp::TransportEvent>(frame(0xFF, 0x02, Wire().text(std::string(tcp::kMaxReason, 'r'))),
                                  [](const tcp::TransportEvent& f) { BOOST_TEST(f.reason.size() == tcp::kMaxReason); });
}

BOOST_AUTO_TEST_SUITE_END()
