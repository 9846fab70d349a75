// Sizes, durations and rates as topology files write them: exact values, and
// every malformed one refused with a message.
#include <boost/test/unit_test.hpp>

#include <stdexcept>
#include <string>

#include "topology/units.hpp"

namespace topo = visorlab::topology;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(units)

BOOST_AUTO_TEST_CASE(sizes) {
  const struct {
    const char* text;
    std::uint64_t bytes;
  } table[] = {
      {"0", 0},
      {"512", 512},
      {"1500", 1500},
      {"4KiB", 4096},
      {"16MiB", 16ull << 20},
      {"64MiB", 64ull << 20},
      {"1GiB", 1ull << 30},
      {"2TiB", 2ull << 40},
      {"1.5KiB", 1536},
      {"0.5MiB", 512 * 1024},
      {"10MB", 10'000'000},
      {"4KB", 4000},
      {"1GB", 1'000'000'000},
      {"512B", 512},
      {"64 MiB", 64ull << 20},
  };
  for (const auto& row : table) {
    BOOST_TEST_CONTEXT(row.text) { BOOST_TEST(topo::parse_size(row.text) == row.bytes); }
  }
}

BOOST_AUTO_TEST_CASE(bad_sizes) {
  for (const char* text : {"", "MiB", "-1", "16mib", "16 MiBs", "1.3B", "0.1KiB", "5.", ".5KiB",
                           "1.2.3KiB", "16MB?", "99999999999999999999", "20000000TiB"}) {
    BOOST_TEST_CONTEXT("'" << text << "'") {
      BOOST_CHECK_THROW(topo::parse_size(text), std::invalid_argument);
    }
  }
  try {
    topo::parse_size("16Mb");
    BOOST_FAIL("16Mb parsed");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()) == "'16Mb' has unknown size unit 'Mb'; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
  }
}

BOOST_AUTO_TEST_CASE(durations) {
  const struct {
    const char* text;
    std::chrono::microseconds value;
  } table[] = {
      {"2s", 2s},     {"7.5s", 7500ms}, {"50ms", 50ms},     {"300ms", 300ms}, {"1m", 1min},
      {"500us", 500us}, {"0", 0us},     {"0s", 0us},        {"1h", 1h},       {"0.5ms", 500us},
      {"1.25s", 1250ms}, {"10 s", 10s}, {"3\xC2\xB5s", 3us},
  };
  for (const auto& row : table) {
    BOOST_TEST_CONTEXT(row.text) { BOOST_TEST(topo::parse_duration(row.text).count() == row.value.count()); }
  }
}

BOOST_AUTO_TEST_CASE(bad_durations) {
  for (const char* text : {"", "5", "2", "s", "-1s", "2sec", "1.5us", "0.0001ms", "2 m s", "1d"}) {
    BOOST_TEST_CONTEXT("'" << text << "'") {
      BOOST_CHECK_THROW(topo::parse_duration(text), std::invalid_argument);
    }
  }
  try {
    topo::parse_duration("5");
    BOOST_FAIL("5 parsed");
  } catch (const std::invalid_argument& e) {
    BOOST_TEST(std::string(e.what()) == "'5' needs a unit: us, ms, s, m or h (like 50ms or 2s)");
  }
}

BOOST_AUTO_TEST_CASE(rates) {
  BOOST_TEST(topo::parse_rate("1000/s") == 1000.0);
  BOOST_TEST(topo::parse_rate("200/s") == 200.0);
  BOOST_TEST(topo::parse_rate("0.5/s") == 0.5);
  BOOST_TEST(topo::parse_rate("2/ms") == 2000.0);
  BOOST_TEST(topo::parse_rate("120/m") == 2.0);
  BOOST_TEST(topo::parse_rate("0/s") == 0.0);
  for (const char* text : {"", "1000", "fast", "/s", "-5/s", "1000/h", "10/", "1e3/s", "1 000/s"}) {
    BOOST_TEST_CONTEXT("'" << text << "'") { BOOST_CHECK_THROW(topo::parse_rate(text), std::invalid_argument); }
  }
}

BOOST_AUTO_TEST_CASE(milliseconds) {
  BOOST_TEST(topo::parse_milliseconds("100").count() == 100'000);
  BOOST_TEST(topo::parse_milliseconds("2.5").count() == 2'500);
  BOOST_CHECK_THROW(topo::parse_milliseconds("100ms"), std::invalid_argument);
  BOOST_CHECK_THROW(topo::parse_milliseconds("-1"), std::invalid_argument);
  BOOST_CHECK_THROW(topo::parse_milliseconds("0.0001"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
