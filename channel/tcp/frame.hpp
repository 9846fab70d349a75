// Wire frames of a TCP-backed channel, modelled on the VMC CRQ (spec §6):
// the first byte says init (0xC0), command/response (0x80) or transport event
// (0xFF). Every frame is an 8-byte header {kind, op, reserved u16, length u32}
// and `length` payload bytes, little-endian.
//
// Decoding trusts nothing: a length above kMaxPayload, an unknown kind or op,
// non-zero reserved bits, or a payload of the wrong shape is a DecodeError,
// and no buffer is ever sized by the peer beyond kMaxPayload.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "channel/guid.hpp"

namespace visorlab::channel::tcp {

inline constexpr std::uint16_t kMajorVersion = 1;
inline constexpr std::uint16_t kMinorVersion = 1;  // 1: INIT names the process
inline constexpr std::uint32_t kMagic = 0x43544C56;  // "VLTC"
inline constexpr std::uint32_t kMaxPayload = 1u << 20;
inline constexpr std::size_t kHeaderSize = 8;
// Images and large writes go in WRITE frames of at most this many bytes (below kMaxPayload).
inline constexpr std::size_t kWriteChunk = 256 * 1024;
inline constexpr std::size_t kMaxName = 255;
inline constexpr std::uint32_t kMaxQueues = 64;
inline constexpr std::size_t kMaxReason = 1024;

enum class Kind : std::uint8_t { command = 0x80, init = 0xC0, transport_event = 0xFF };

// Which end of a channel a side is: the guest's driver or the service partition.
enum class Side : std::uint8_t { guest = 0, service = 1 };

// Transport event codes (spec §6).
enum class EventCode : std::uint8_t { partner_failed = 0x01, deregistered = 0x02, migrated = 0x06 };

struct QueueGeometry {
  std::uint32_t signal_size;
  std::uint32_t max_slots;
  std::uint64_t sig_base_offset;
  friend bool operator==(const QueueGeometry&, const QueueGeometry&) = default;
};

// INIT (0xC0 0x01) and INIT_COMPLETE (0xC0 0x02).
struct Init {
  bool complete = false;
  std::uint16_t major = kMajorVersion;
  std::uint16_t minor = kMinorVersion;
  Side side = Side::guest;
  bool has_image = false;  // this side holds a live copy of the channel
  bool fresh = false;      // server: no peer has attached since it was formatted
  std::string name;        // the channel, so one listener can serve many
  // The sender's process (this_process()): links to one process share
  // liveness. 0: none named (a 1.0 peer; the field is left out on the wire).
  std::uint64_t process = 0;
};

// CAP (0x80 0x01) and CAP_RESP (0x80 0x81): what each side's channel looks like.
struct Capabilities {
  bool response = false;
  std::uint32_t status = 0;  // CAP_RESP: 0 accepted, else refused (reason follows as a transport event)
  Guid type{};
  std::uint64_t size = 0;
  std::uint64_t ch_space_offset = 0;
  std::vector<QueueGeometry> queues;
};

// WRITE (0x80 0x10): bytes the sender wrote at `offset` of its copy. Also used
// for IMAGE (0x80 0x12) chunks of a full image sent on re-attach.
struct Write {
  bool image = false;
  std::uint64_t offset = 0;
  std::span<const std::byte> bytes;  // points into the decoder's buffer
};

// INDEX (0x80 0x11): a signal boundary — counter value, then the index.
struct Index {
  std::uint64_t counter_offset = 0;
  std::uint64_t counter = 0;
  std::uint64_t index_offset = 0;
  std::uint32_t index = 0;
};

struct ImageDone {  // 0x80 0x13
  std::uint64_t size = 0;
};

struct Heartbeat {};  // 0x80 0x14

// ACK (0x80 0x15): how many bytes of the sender's stream the receiver has
// applied since the channel's image was established. The sender keeps what
// it sent until it is acknowledged, so a re-attach loses nothing.
struct Ack {
  std::uint64_t applied = 0;
};

// RESUME (0x80 0x16): establishment of a survivor's re-attach (and the end of
// a newcomer's image): the session the image belongs to and how many bytes of
// the peer's stream this side has applied. Each side then re-sends its stream
// from what the other applied, in order, then goes on.
struct Resume {
  std::uint64_t session = 0;
  std::uint64_t applied = 0;
};

struct TransportEvent {  // 0xFF <code>
  EventCode code = EventCode::partner_failed;
  std::string reason;
};

using Frame = std::variant<Init, Capabilities, Write, Index, ImageDone, Heartbeat, TransportEvent, Ack, Resume>;

struct DecodeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Appends the encoded frame to `out`.
void encode(const Frame& frame, std::vector<std::byte>& out);
// Appends a WRITE frame straight from memory, without building a Frame.
void encode_write(std::uint64_t offset, const std::byte* bytes, std::size_t length, std::vector<std::byte>& out,
                  bool image = false);

// Incremental decoder: feed bytes as they arrive, then take frames out.
class Decoder {
 public:
  // Where to put up to `want` more bytes (read() into it, then commit(n)).
  std::span<std::byte> prepare(std::size_t want = 64 * 1024);
  void commit(std::size_t n);
  // Copies bytes in (for tests and the fuzzer).
  void feed(std::span<const std::byte> bytes);

  // The next complete frame, nullopt if more bytes are needed; throws
  // DecodeError on malformed input. A Write's bytes stay valid until the next
  // call to next(), prepare() or feed().
  std::optional<Frame> next();

  std::size_t buffered() const { return end_ - begin_; }

 private:
  void compact();

  std::vector<std::byte> buffer_;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last received byte
};

}  // namespace visorlab::channel::tcp
