// A drill history as it travels from a guest's workload to the drill: in
// bounded chunks of typed records (actors::HistoryChunk, collect_atom).
#pragma once

#include <cstddef>
#include <cstdint>

#include "actors/runtime/workload_messages.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

// Events [first, first + max_events) of `history`, with the blocks their
// reads saw; every chunk carries the device names, texts and violations.
actors::HistoryChunk history_chunk(const History& history, std::uint64_t first, std::size_t max_events);

// Appends a chunk's records to `history` and takes its name, seed and
// violations (each chunk carries all of them). Whether the chunk is the one
// expected next (HistoryChunk::first) is the caller's to check. Throws
// std::invalid_argument for a chunk that refers outside itself (a device,
// text or block it does not carry).
void add_chunk(History& history, const actors::HistoryChunk& chunk);

}  // namespace visorlab::drill
