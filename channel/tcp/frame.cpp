#include "channel/tcp/frame.hpp"

#include <cstring>

namespace visorlab::channel::tcp {
namespace {

enum Op : std::uint8_t {
  op_init = 0x01, op_init_complete = 0x02,
  op_cap = 0x01, op_cap_resp = 0x81,
  op_write = 0x10, op_index = 0x11, op_image = 0x12, op_image_done = 0x13, op_heartbeat = 0x14, op_ack = 0x15,
  op_resume = 0x16,
};

// Little-endian writer into a growing buffer.
class Out {
 public:
  explicit Out(std::vector<std::byte>& out) : out_(out) {}
  template <typename T>
  void put(T value) {
    std::byte raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));  // host is little-endian (channel_header.hpp)
    out_.insert(out_.end(), raw, raw + sizeof(T));
  }
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + n);
  }
  // Starts a frame; finish() fills in its length.
  void begin(Kind kind, std::uint8_t op) {
    start_ = out_.size();
    put(static_cast<std::uint8_t>(kind));
    put(op);
    put(std::uint16_t{0});
    put(std::uint32_t{0});
  }
  void finish() {
    const auto length = static_cast<std::uint32_t>(out_.size() - start_ - kHeaderSize);
    std::memcpy(out_.data() + start_ + 4, &length, 4);
  }

 private:
  std::vector<std::byte>& out_;
  std::size_t start_ = 0;
};

// Bounds-checked little-endian reader over one payload.
class In {
 public:
  explicit In(std::span<const std::byte> bytes) : bytes_(bytes) {}
  template <typename T>
  T get(const char* field) {
    need(sizeof(T), field);
    T value;
    std::memcpy(&value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::span<const std::byte> take(std::size_t n, const char* field) {
    need(n, field);
    auto s = bytes_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const std::byte> rest() {
    auto s = bytes_.subspan(pos_);
    pos_ = bytes_.size();
    return s;
  }
  bool done() const { return pos_ == bytes_.size(); }
  void end(const char* frame) const {
    if (pos_ != bytes_.size())
      throw DecodeError(std::string(frame) + ": " + std::to_string(bytes_.size() - pos_) + " trailing bytes");
  }

 private:
  void need(std::size_t n, const char* field) const {
    if (bytes_.size() - pos_ < n) throw DecodeError(std::string("payload ends inside ") + field);
  }
  std::span<const std::byte> bytes_;
  std::size_t pos_ = 0;
};

std::string as_string(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

Frame parse(Kind kind, std::uint8_t op, std::span<const std::byte> payload) {
  In in(payload);
  switch (kind) {
    case Kind::init: {
      if (op != op_init && op != op_init_complete) throw DecodeError("unknown init op " + std::to_string(op));
      Init f;
      f.complete = op == op_init_complete;
      if (in.get<std::uint32_t>("magic") != kMagic) throw DecodeError("init: bad magic");
      f.major = in.get<std::uint16_t>("major");
      f.minor = in.get<std::uint16_t>("minor");
      const auto side = in.get<std::uint8_t>("side");
      if (side > 1) throw DecodeError("init: side " + std::to_string(side));
      f.side = static_cast<Side>(side);
      const auto flags = in.get<std::uint8_t>("flags");
      if (flags > 3) throw DecodeError("init: unknown flags");
      f.has_image = (flags & 1) != 0;
      f.fresh = (flags & 2) != 0;
      const auto name_len = in.get<std::uint16_t>("name length");
      if (name_len > kMaxName) throw DecodeError("init: name length " + std::to_string(name_len));
      f.name = as_string(in.take(name_len, "name"));
      if (!in.done()) {  // 1.0 peers name no process; one that names one names a real one
        f.process = in.get<std::uint64_t>("process");
        if (f.process == 0) throw DecodeError("init: process 0 (a peer that names none leaves the field out)");
      }
      in.end("init");
      return f;
    }
    case Kind::command:
      switch (op) {
        case op_cap:
        case op_cap_resp: {
          Capabilities f;
          f.response = op == op_cap_resp;
          f.status = in.get<std::uint32_t>("status");
          std::memcpy(f.type.bytes.data(), in.take(16, "type").data(), 16);
          f.size = in.get<std::uint64_t>("size");
          f.ch_space_offset = in.get<std::uint64_t>("ch_space_offset");
          const auto count = in.get<std::uint32_t>("queue count");
          if (count > kMaxQueues) throw DecodeError("capabilities: " + std::to_string(count) + " queues");
          for (std::uint32_t i = 0; i < count; ++i) {
            QueueGeometry q;
            q.signal_size = in.get<std::uint32_t>("signal_size");
            q.max_slots = in.get<std::uint32_t>("max_slots");
            q.sig_base_offset = in.get<std::uint64_t>("sig_base_offset");
            f.queues.push_back(q);
          }
          in.end("capabilities");
          return f;
        }
        case op_write:
        case op_image: {
          Write f;
          f.image = op == op_image;
          f.offset = in.get<std::uint64_t>("offset");
          f.bytes = in.rest();
          return f;
        }
        case op_index: {
          Index f;
          f.counter_offset = in.get<std::uint64_t>("counter offset");
          f.counter = in.get<std::uint64_t>("counter");
          f.index_offset = in.get<std::uint64_t>("index offset");
          f.index = in.get<std::uint32_t>("index");
          in.end("index");
          return f;
        }
        case op_image_done: {
          ImageDone f;
          f.size = in.get<std::uint64_t>("size");
          in.end("image done");
          return f;
        }
        case op_heartbeat:
          in.end("heartbeat");
          return Heartbeat{};
        case op_ack: {
          Ack f;
          f.applied = in.get<std::uint64_t>("applied");
          in.end("ack");
          return f;
        }
        case op_resume: {
          Resume f;
          f.session = in.get<std::uint64_t>("session");
          f.applied = in.get<std::uint64_t>("applied");
          in.end("resume");
          return f;
        }
        default:
          throw DecodeError("unknown command op " + std::to_string(op));
      }
    case Kind::transport_event: {
      if (op != 0x01 && op != 0x02 && op != 0x06) throw DecodeError("unknown transport event " + std::to_string(op));
      if (payload.size() > kMaxReason) throw DecodeError("transport event reason too long");
      return TransportEvent{static_cast<EventCode>(op), as_string(in.rest())};
    }
  }
  throw DecodeError("unknown frame kind");
}

}  // namespace

void encode(const Frame& frame, std::vector<std::byte>& out_bytes) {
  Out out(out_bytes);
  std::visit(
      [&](const auto& f) {
        using F = std::decay_t<decltype(f)>;
        if constexpr (std::is_same_v<F, Init>) {
          out.begin(Kind::init, f.complete ? op_init_complete : op_init);
          out.put(kMagic);
          out.put(f.major);
          out.put(f.minor);
          out.put(static_cast<std::uint8_t>(f.side));
          out.put(static_cast<std::uint8_t>((f.has_image ? 1 : 0) | (f.fresh ? 2 : 0)));
          const auto n = std::min(f.name.size(), kMaxName);
          out.put(static_cast<std::uint16_t>(n));
          out.bytes(f.name.data(), n);
          if (f.process != 0) out.put(f.process);  // none: as a 1.0 peer sends it
        } else if constexpr (std::is_same_v<F, Capabilities>) {
          out.begin(Kind::command, f.response ? op_cap_resp : op_cap);
          out.put(f.status);
          out.bytes(f.type.bytes.data(), 16);
          out.put(f.size);
          out.put(f.ch_space_offset);
          out.put(static_cast<std::uint32_t>(f.queues.size()));
          for (const auto& q : f.queues) {
            out.put(q.signal_size);
            out.put(q.max_slots);
            out.put(q.sig_base_offset);
          }
        } else if constexpr (std::is_same_v<F, Write>) {
          encode_write(f.offset, f.bytes.data(), f.bytes.size(), out_bytes, f.image);
          return;
        } else if constexpr (std::is_same_v<F, Index>) {
          out.begin(Kind::command, op_index);
          out.put(f.counter_offset);
          out.put(f.counter);
          out.put(f.index_offset);
          out.put(f.index);
        } else if constexpr (std::is_same_v<F, ImageDone>) {
          out.begin(Kind::command, op_image_done);
          out.put(f.size);
        } else if constexpr (std::is_same_v<F, Heartbeat>) {
          out.begin(Kind::command, op_heartbeat);
        } else if constexpr (std::is_same_v<F, Ack>) {
          out.begin(Kind::command, op_ack);
          out.put(f.applied);
        } else if constexpr (std::is_same_v<F, Resume>) {
          out.begin(Kind::command, op_resume);
          out.put(f.session);
          out.put(f.applied);
        } else {
          out.begin(Kind::transport_event, static_cast<std::uint8_t>(f.code));
          out.bytes(f.reason.data(), std::min(f.reason.size(), kMaxReason));
        }
        out.finish();
      },
      frame);
}

void encode_write(std::uint64_t offset, const std::byte* bytes, std::size_t length, std::vector<std::byte>& out_bytes,
                  bool image) {
  Out out(out_bytes);
  out.begin(Kind::command, image ? op_image : op_write);
  out.put(offset);
  out.bytes(bytes, length);
  out.finish();
}

std::span<std::byte> Decoder::prepare(std::size_t want) {
  compact();
  if (buffer_.size() < end_ + want) buffer_.resize(end_ + want);
  return {buffer_.data() + end_, want};
}

void Decoder::commit(std::size_t n) { end_ += n; }

void Decoder::feed(std::span<const std::byte> bytes) {
  if (bytes.empty()) return;  // memcpy with a null source is undefined even for 0 bytes
  auto room = prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

void Decoder::compact() {
  if (begin_ == 0) return;
  std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
}

std::optional<Frame> Decoder::next() {
  if (end_ - begin_ < kHeaderSize) return std::nullopt;
  const std::byte* h = buffer_.data() + begin_;
  const auto kind = static_cast<std::uint8_t>(h[0]);
  const auto op = static_cast<std::uint8_t>(h[1]);
  std::uint16_t reserved;
  std::uint32_t length;
  std::memcpy(&reserved, h + 2, 2);
  std::memcpy(&length, h + 4, 4);
  if (kind != 0x80 && kind != 0xC0 && kind != 0xFF) throw DecodeError("unknown frame kind " + std::to_string(kind));
  if (reserved != 0) throw DecodeError("reserved bits set");
  if (length > kMaxPayload)
    throw DecodeError("frame length " + std::to_string(length) + " exceeds " + std::to_string(kMaxPayload));
  if (end_ - begin_ < kHeaderSize + length) return std::nullopt;
  std::span<const std::byte> payload(h + kHeaderSize, length);
  begin_ += kHeaderSize + length;
  return parse(static_cast<Kind>(kind), op, payload);
}

}  // namespace visorlab::channel::tcp
