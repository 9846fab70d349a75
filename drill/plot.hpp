// A drill as one self-contained SVG a person can read without the JSON: disk
// IOPS and p99 latency over time, fault windows shaded and labelled, each
// recovery's phases ticked (detect, pause, restart, resume), violations
// marked, and the drill's name and result in the title.
#pragma once

#include <string>

#include "drill/checker.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

// `history`: its name and seed, faults, recoveries and violations (its
// events are not needed: IOPS and p99 come from result.timeline).
std::string render_svg(const History& history, const CheckResult& result);

}  // namespace visorlab::drill
