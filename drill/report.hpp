// The drill report: DESIGN.md's "Report" JSON contract, filled from a history
// and its check, and a text summary of the same for a terminal.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "drill/checker.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

// {"visorlab_report":1, "name", "seed", "result", "duration_s", "io", "faults",
//  "violations", "expect"} — exactly the contract's fields, in its order.
nlohmann::ordered_json report_json(const History& history, const CheckResult& result);

// Faults with their phases in ms, I/O totals, violations, failures and the result.
std::string report_text(const History& history, const CheckResult& result);

}  // namespace visorlab::drill
