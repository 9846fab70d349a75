#include "channel/channel.hpp"

#include <new>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <sstream>

namespace visorlab::channel {
namespace {

constexpr std::uint64_t kQueueHeaderSize = sizeof(SignalQueueHeader);

std::uint64_t align64(std::uint64_t n) { return (n + 63) & ~std::uint64_t{63}; }

std::string hex(std::uint64_t v) {
  std::ostringstream out;
  out << "0x" << std::hex << v;
  return out.str();
}

// a + b*c with overflow reported as "does not fit".
bool fits(std::uint64_t a, std::uint64_t b, std::uint64_t c, std::uint64_t limit) {
  std::uint64_t product = 0, end = 0;
  if (__builtin_mul_overflow(b, c, &product)) return false;
  if (__builtin_add_overflow(a, product, &end)) return false;
  return end <= limit;
}

SignalQueueHeader read_queue_header(std::span<const std::byte> bytes, std::uint64_t offset) {
  SignalQueueHeader q;
  std::memcpy(&q, bytes.data() + offset, sizeof q);
  return q;
}

void validate(std::span<const std::byte> bytes, const Expect& expect, ChannelHeader& h) {
  if (bytes.size() < sizeof(ChannelHeader))
    throw ChannelError(Check::mapping_size, 0,
                       std::to_string(bytes.size()) + " bytes, a channel header needs 128");
  std::memcpy(&h, bytes.data(), sizeof h);

  // The spec §1 check, in the kernel's order, each only when expected.
  if (!expect.type.is_null() && h.chtype != expect.type)
    throw ChannelError(Check::chtype, offsetof(ChannelHeader, chtype),
                       "expected " + expect.type.str() + ", found " + h.chtype.str());
  if (expect.min_bytes != 0 && h.size < expect.min_bytes)
    throw ChannelError(Check::min_bytes, offsetof(ChannelHeader, size),
                       "size " + std::to_string(h.size) + " < minimum " + std::to_string(expect.min_bytes));
  if (expect.version_id != 0 && h.version_id != expect.version_id)
    throw ChannelError(Check::version_id, offsetof(ChannelHeader, version_id),
                       "expected " + std::to_string(expect.version_id) + ", found " +
                           std::to_string(h.version_id));
  if (expect.signature != 0 && h.signature != expect.signature)
    throw ChannelError(Check::signature, offsetof(ChannelHeader, signature),
                       "expected " + hex(expect.signature) + ", found " + hex(h.signature));

  // Structure: everything we will ever touch lies inside min(size, mapping).
  if (h.size > bytes.size())
    throw ChannelError(Check::size, offsetof(ChannelHeader, size),
                       "size " + std::to_string(h.size) + " exceeds the " + std::to_string(bytes.size()) +
                           " bytes mapped");
  if (h.size < sizeof(ChannelHeader))
    throw ChannelError(Check::size, offsetof(ChannelHeader, size),
                       "size " + std::to_string(h.size) + " is smaller than the header");
  if (expect.queue_count == 0) return;
  if (h.ch_space_offset < sizeof(ChannelHeader) || h.ch_space_offset % 8 != 0)
    throw ChannelError(Check::ch_space_offset, offsetof(ChannelHeader, ch_space_offset),
                       "ch_space_offset " + std::to_string(h.ch_space_offset) +
                           " must be >= 128 and 8-byte aligned");
  if (!fits(h.ch_space_offset, expect.queue_count, kQueueHeaderSize, h.size))
    throw ChannelError(Check::queue_header_bounds, offsetof(ChannelHeader, ch_space_offset),
                       std::to_string(expect.queue_count) + " queue headers from " +
                           std::to_string(h.ch_space_offset) + " do not fit in size " + std::to_string(h.size));

  for (std::uint32_t i = 0; i < expect.queue_count; ++i) {
    const std::uint64_t at = h.ch_space_offset + i * kQueueHeaderSize;
    const SignalQueueHeader q = read_queue_header(bytes, at);
    const std::string which = "queue " + std::to_string(i) + ": ";
    if (q.signal_size == 0 || (expect.signal_size != 0 && q.signal_size != expect.signal_size))
      throw ChannelError(Check::signal_size, at + offsetof(SignalQueueHeader, signal_size),
                         which + "signal_size " + std::to_string(q.signal_size) +
                             (expect.signal_size ? ", expected " + std::to_string(expect.signal_size) : ""));
    if (q.max_slots < 2)
      throw ChannelError(Check::max_slots, at + offsetof(SignalQueueHeader, max_slots),
                         which + "max_slots " + std::to_string(q.max_slots) + " < 2");
    std::uint64_t slots_at = 0;
    if (__builtin_add_overflow(at, q.sig_base_offset, &slots_at) ||
        !fits(slots_at, q.max_slots, q.signal_size, h.size))
      throw ChannelError(Check::slots_bounds, at + offsetof(SignalQueueHeader, sig_base_offset),
                         which + std::to_string(q.max_slots) + " slots of " + std::to_string(q.signal_size) +
                             " bytes at sig_base_offset " + std::to_string(q.sig_base_offset) +
                             " do not fit in size " + std::to_string(h.size));
    if (q.head >= q.max_slots)
      throw ChannelError(Check::head, at + offsetof(SignalQueueHeader, head),
                         which + "head " + std::to_string(q.head) + " >= max_slots " + std::to_string(q.max_slots));
    if (q.tail >= q.max_slots)
      throw ChannelError(Check::tail, at + offsetof(SignalQueueHeader, tail),
                         which + "tail " + std::to_string(q.tail) + " >= max_slots " + std::to_string(q.max_slots));
  }
}

}  // namespace

std::uint64_t channel_size(const ChannelSpec& spec) {
  if (spec.ch_space_offset < sizeof(ChannelHeader) || spec.ch_space_offset % 8 != 0)
    throw ChannelError(Check::layout, spec.ch_space_offset, "ch_space_offset must be >= 128 and 8-byte aligned");
  const std::uint64_t headers_end = spec.ch_space_offset + spec.queues.size() * kQueueHeaderSize;
  if (spec.slots_offset != 0 && spec.slots_offset < headers_end)
    throw ChannelError(Check::layout, spec.slots_offset, "slots overlap the queue headers");
  std::uint64_t cursor = spec.slots_offset != 0 ? spec.slots_offset : align64(headers_end);
  for (const auto& q : spec.queues) {
    if (q.signal_size == 0 || q.max_slots < 2)
      throw ChannelError(Check::layout, cursor, "a queue needs signal_size > 0 and max_slots >= 2");
    cursor = align64(cursor + std::uint64_t{q.signal_size} * q.max_slots);
  }
  return std::max(cursor, spec.min_size);
}

Channel::Channel(Mapping mapping, std::uint64_t size)
    : mapping_(std::move(mapping)), size_(size), guard_(std::make_unique<PauseGuard>()) {}

void Channel::add_queues(std::uint32_t count) {
  const auto bytes = mapping_.bytes();
  const ChannelHeader h = header();
  if (bytes.size() >= size_with_doorbell(size_))
    bell_ = std::launder(reinterpret_cast<Doorbell*>(bytes.data() + doorbell_offset(size_)));
  queues_.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t at = h.ch_space_offset + i * kQueueHeaderSize;
    queues_.emplace_back(bytes.data(), at, read_queue_header(bytes, at), guard_.get(), static_cast<int>(i));
    queues_.back().set_doorbell(bell_);
  }
}

Channel Channel::format(Mapping mapping, const ChannelSpec& spec, bool zeroed) {
  const std::uint64_t size = channel_size(spec);
  auto bytes = mapping.bytes();
  if (size > bytes.size())
    throw ChannelError(Check::mapping_size, 0,
                       "channel needs " + std::to_string(size) + " bytes, mapping has " +
                           std::to_string(bytes.size()));
  if (!zeroed) std::memset(bytes.data(), 0, size);

  ChannelHeader h{};
  h.signature = kChannelSignature;
  h.header_size = sizeof(ChannelHeader);
  h.size = size;
  h.features = spec.features;
  h.chtype = spec.type;
  h.ch_space_offset = spec.ch_space_offset;
  h.version_id = spec.version_id;
  std::memcpy(bytes.data(), &h, sizeof h);

  std::uint64_t slots_at = spec.slots_offset != 0
                               ? spec.slots_offset
                               : align64(spec.ch_space_offset + spec.queues.size() * kQueueHeaderSize);
  for (std::size_t i = 0; i < spec.queues.size(); ++i) {
    const std::uint64_t at = spec.ch_space_offset + i * kQueueHeaderSize;
    SignalQueueHeader q{};
    q.signal_size = spec.queues[i].signal_size;
    q.max_slots = spec.queues[i].max_slots;
    q.max_signals = q.max_slots - 1;
    q.size = std::uint64_t{q.signal_size} * q.max_slots;
    q.sig_base_offset = slots_at - at;
    std::memcpy(bytes.data() + at, &q, sizeof q);
    slots_at = align64(slots_at + q.size);
  }

  Channel channel(std::move(mapping), size);
  channel.add_queues(static_cast<std::uint32_t>(spec.queues.size()));
  return channel;
}

Channel Channel::attach(Mapping mapping, const Expect& expect) {
  ChannelHeader h;
  validate(mapping.bytes(), expect, h);
  Channel channel(std::move(mapping), h.size);
  channel.add_queues(expect.queue_count);
  return channel;
}

int Channel::read(std::uint64_t offset, void* out, std::size_t length) const {
  if (guard_->revoked()) return guard_->violation("read", -1, offset);
  if (offset > size_ || length > size_ - offset) return -EIO;
  std::memcpy(out, mapping_.bytes().data() + offset, length);
  return 0;
}

int Channel::write(std::uint64_t offset, const void* data, std::size_t length) {
  if (guard_->revoked()) return guard_->violation("write", -1, offset);
  if (offset > size_ || length > size_ - offset) return -EIO;
  std::memcpy(mapping_.bytes().data() + offset, data, length);
  if (replicator_) replicator_->wrote(offset, length);
  return 0;
}

void Channel::set_replicator(Replicator* replicator) {
  replicator_ = replicator;
  for (auto& q : queues_) q.set_replicator(replicator);
}

ChannelHeader Channel::header() const {
  ChannelHeader h{};
  if (read(0, &h, sizeof h) != 0) h = ChannelHeader{};
  return h;
}

SignalQueueHeader Channel::queue_header(std::uint32_t q) const {
  SignalQueueHeader h{};
  if (read(queue(q).header_offset(), &h, sizeof h) != 0) h = SignalQueueHeader{};
  return h;
}

SignalQueue& Channel::queue(std::uint32_t q) {
  if (q >= queues_.size()) throw std::out_of_range("queue " + std::to_string(q) + " of " + std::to_string(queues_.size()));
  return queues_[q];
}

const SignalQueue& Channel::queue(std::uint32_t q) const {
  return const_cast<Channel*>(this)->queue(q);
}

void Channel::pause() {
  guard_->revoke();
  mapping_.protect(false);
}

void Channel::resume() {
  mapping_.protect(true);
  guard_->restore();
}

}  // namespace visorlab::channel
