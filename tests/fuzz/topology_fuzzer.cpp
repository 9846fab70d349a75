// libFuzzer target for the topology file (topology/load.hpp): YAML parsing,
// expansion and validation of any text. The only way to refuse is a
// topology::Error naming a position; anything else thrown, a crash, a hang or
// an allocation past libFuzzer's limit (an alias bomb) is a finding.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "topology/error.hpp"
#include "topology/load.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto t = visorlab::topology::load_string(text, "fuzz.yaml");
    if (t.hosts.empty()) {
      std::fprintf(stderr, "topology_fuzzer: a valid topology without hosts\n");
      std::abort();
    }
  } catch (const visorlab::topology::Error& e) {
    if (e.file() != "fuzz.yaml" || e.line() < 0 || e.column() < 0) {
      std::fprintf(stderr, "topology_fuzzer: an error without its place: %s\n", e.what());
      std::abort();
    }
  }
  return 0;
}
