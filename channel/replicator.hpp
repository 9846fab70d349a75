// The seam between a channel and a remote copy of its bytes. Shared memory
// needs none (both ends map the same pages). A TCP-backed channel ships what
// the local side wrote to the peer's copy; an RDMA backing would turn wrote()
// into one-sided RDMA WRITEs and publish() into the index write plus doorbell.
//
// Ordering contract: every range passed to wrote() reaches the peer's copy no
// later than the next publish(), and publish() makes the index visible on the
// peer only after those bytes (a signal boundary).
#pragma once

#include <cstdint>

namespace visorlab::channel {

class Replicator {
 public:
  virtual ~Replicator() = default;

  // Bytes [offset, offset+length) of the channel changed locally.
  virtual void wrote(std::uint64_t offset, std::uint64_t length) noexcept = 0;

  // The 4-byte index (head or tail) at `index_offset` moved, beside its 8-byte
  // counter at `counter_offset` (num_sent or num_received): ship what is
  // pending, then the counter, then the index.
  virtual void publish(std::uint64_t counter_offset, std::uint64_t index_offset) noexcept = 0;

  // The local side found a queue empty (or full) and is waiting on the peer:
  // take in whatever has arrived now, on this thread, instead of waiting for a
  // background thread to be scheduled (an RDMA backing polls its completion
  // queue here).
  virtual void pull() noexcept {}
};

}  // namespace visorlab::channel
