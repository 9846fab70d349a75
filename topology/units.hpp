// The unit-bearing scalars of a topology file: sizes ("64MiB", "4KiB",
// "1500"), durations ("7.5s", "50ms", "1m", "500us") and rates ("1000/s").
// Exact: a value that does not come to a whole byte or microsecond is
// refused, never rounded. Each throws std::invalid_argument whose what() is
// the message for the user; the parser adds file, line and field.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace visorlab::topology {

// Bytes. Binary units KiB MiB GiB TiB (×1024), decimal KB MB GB TB (×1000),
// B, or a plain number of bytes. A decimal fraction is allowed when the
// result is whole ("1.5KiB" = 1536).
std::uint64_t parse_size(std::string_view text);

// Units h, m, s, ms, us (or µs). Plain "0" is zero; any other number needs a
// unit, since "5" could mean seconds or milliseconds.
std::chrono::microseconds parse_duration(std::string_view text);

// Events per second: "<number>/s", also "/ms" and "/m". Plain numbers are
// refused for the same reason as durations.
double parse_rate(std::string_view text);

// A plain number of milliseconds ("100", "0.5"), for keys whose name carries
// the unit (max_recovery_ms).
std::chrono::microseconds parse_milliseconds(std::string_view text);

}  // namespace visorlab::topology
