// A drill as one self-contained SVG a person can read without the JSON: disk
// IOPS and p99 latency over time, fault windows shaded and labelled, each
// recovery's phases ticked (detect, pause, restart, resume), violations
// marked, and the drill's name and result in the title.
#pragma once

#include <string>

#include "drill/checker.hpp"
#include "drill/history.hpp"

namespace visorlab::drill {

struct PlotOptions {
  Nanos bucket = 100'000'000;  // IOPS and p99 per 100 ms (widened for long drills)
};

std::string render_svg(const History& history, const CheckResult& result, const PlotOptions& options = {});

}  // namespace visorlab::drill
