#include "topology/units.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace visorlab::topology {

namespace {

// A decimal number as integer / 10^fraction_digits, kept exact.
struct Decimal {
  unsigned __int128 digits = 0;
  int fraction_digits = 0;
  std::size_t length = 0;  // characters consumed
};

// Reads "123" or "12.5" at the start of text; at most 19 significant digits,
// which keeps digits × any unit below 2^128.
bool read_decimal(std::string_view text, Decimal& out) {
  std::size_t i = 0;
  int count = 0;
  bool fraction = false, any = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '.' && !fraction && any) {
      fraction = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    any = true;
    if (++count > 19) return false;
    out.digits = out.digits * 10 + static_cast<unsigned>(c - '0');
    if (fraction) ++out.fraction_digits;
  }
  if (!any || text[i - 1] == '.') return false;  // "", ".5" or "5."
  out.length = i;
  return true;
}

unsigned __int128 power_of_ten(int n) {
  unsigned __int128 p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

// value × unit, which must come to a whole number that fits in 64 bits.
std::uint64_t scale(const Decimal& value, std::uint64_t unit, std::string_view text,
                    const char* what_unit) {
  const unsigned __int128 total = value.digits * unit;
  const unsigned __int128 divisor = power_of_ten(value.fraction_digits);
  if (total % divisor != 0)
    throw std::invalid_argument("'" + std::string(text) + "' is not a whole number of " + what_unit);
  const unsigned __int128 result = total / divisor;
  if (result > std::numeric_limits<std::uint64_t>::max())
    throw std::invalid_argument("'" + std::string(text) + "' is too large");
  return static_cast<std::uint64_t>(result);
}

template <std::size_t N>
const std::pair<std::string_view, std::uint64_t>* find_unit(
    const std::array<std::pair<std::string_view, std::uint64_t>, N>& units, std::string_view name) {
  for (const auto& u : units)
    if (u.first == name) return &u;
  return nullptr;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr std::uint64_t kKi = 1024;
constexpr std::array<std::pair<std::string_view, std::uint64_t>, 10> kSizeUnits{{
    {"B", 1},
    {"KiB", kKi},
    {"MiB", kKi * kKi},
    {"GiB", kKi * kKi * kKi},
    {"TiB", kKi * kKi * kKi * kKi},
    {"KB", 1000},
    {"MB", 1000'000},
    {"GB", 1000'000'000},
    {"TB", 1000'000'000'000},
    {"kB", 1000},
}};

constexpr std::array<std::pair<std::string_view, std::uint64_t>, 6> kDurationUnits{{
    {"us", 1},
    {"\xC2\xB5s", 1},  // µs
    {"ms", 1000},
    {"s", 1000'000},
    {"m", 60'000'000},
    {"h", 3600'000'000},
}};

}  // namespace

std::uint64_t parse_size(std::string_view text) {
  const std::string_view s = trim(text);
  Decimal d;
  if (!read_decimal(s, d))
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a size; use bytes or a unit, like 4KiB, 64MiB, 1GiB, 10MB");
  const std::string_view unit_name = trim(s.substr(d.length));
  std::uint64_t unit = 1;
  if (!unit_name.empty()) {
    const auto* u = find_unit(kSizeUnits, unit_name);
    if (!u)
      throw std::invalid_argument("'" + std::string(text) + "' has unknown size unit '" +
                                  std::string(unit_name) +
                                  "'; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
    unit = u->second;
  }
  return scale(d, unit, text, "bytes");
}

std::chrono::microseconds parse_duration(std::string_view text) {
  const std::string_view s = trim(text);
  Decimal d;
  if (!read_decimal(s, d))
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a duration; use a number and a unit, like 500us, 50ms, "
                                "7.5s, 1m");
  const std::string_view unit_name = trim(s.substr(d.length));
  if (unit_name.empty()) {
    if (d.digits == 0) return std::chrono::microseconds{0};
    throw std::invalid_argument("'" + std::string(text) +
                                "' needs a unit: us, ms, s, m or h (like 50ms or 2s)");
  }
  const auto* u = find_unit(kDurationUnits, unit_name);
  if (!u)
    throw std::invalid_argument("'" + std::string(text) + "' has unknown duration unit '" +
                                std::string(unit_name) + "'; use us, ms, s, m or h");
  const std::uint64_t us = scale(d, u->second, text, "microseconds");
  if (us > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw std::invalid_argument("'" + std::string(text) + "' is too long");
  return std::chrono::microseconds{static_cast<std::int64_t>(us)};
}

double parse_rate(std::string_view text) {
  const std::string_view s = trim(text);
  Decimal d;
  const auto slash = s.find('/');
  if (slash == std::string_view::npos || !read_decimal(s, d) || trim(s.substr(0, slash)).size() != d.length)
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a rate; use events per unit of time, like 1000/s");
  const std::string_view per = trim(s.substr(slash + 1));
  double seconds = 0;
  if (per == "s")
    seconds = 1;
  else if (per == "ms")
    seconds = 0.001;
  else if (per == "m" || per == "min")
    seconds = 60;
  else
    throw std::invalid_argument("'" + std::string(text) + "' has unknown rate unit '/" +
                                std::string(per) + "'; use /s, /ms or /m");
  const double value =
      static_cast<double>(d.digits) / static_cast<double>(power_of_ten(d.fraction_digits));
  return value / seconds;
}

std::chrono::microseconds parse_milliseconds(std::string_view text) {
  const std::string_view s = trim(text);
  Decimal d;
  if (!read_decimal(s, d) || d.length != s.size())
    throw std::invalid_argument("'" + std::string(text) +
                                "' is not a number of milliseconds, like 100 or 2.5");
  const std::uint64_t us = scale(d, 1000, text, "microseconds");
  if (us > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw std::invalid_argument("'" + std::string(text) + "' is too long");
  return std::chrono::microseconds{static_cast<std::int64_t>(us)};
}

}  // namespace visorlab::topology

