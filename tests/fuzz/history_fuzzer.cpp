// libFuzzer target for saved drill histories (`visorlab report HISTORY`,
// drill/history_file.hpp): any text read as a history, and a history that
// reads is judged, reported and plotted. The only way to refuse is a
// std::runtime_error naming the line; a crash, a hang or any other exception
// is a finding.
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "drill/checker.hpp"
#include "drill/history_file.hpp"
#include "drill/plot.hpp"
#include "drill/report.hpp"

using namespace visorlab::drill;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  History h;
  try {
    h = read_history(in);
  } catch (const std::runtime_error&) {
    return 0;
  }
  CheckOptions options;
  options.final_read = true;
  const CheckResult r = check(h, {}, options);
  (void)report_json(h, r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  (void)report_text(h, r);
  (void)render_svg(h, r);
  return 0;
}
