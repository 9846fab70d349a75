// A drill history on disk, kept in the run dir for post-mortem and for
// re-checking later: JSON lines, so it greps (`grep '"op_id":17,' history.jsonl`).
// The first line is a header (name, seed, end, devices); then one line per
// event, fault, recovery and violation, in time order, devices by name.
#pragma once

#include <filesystem>
#include <iosfwd>

#include "drill/history.hpp"

namespace visorlab::drill {

void write_history(const History& history, std::ostream& out);
// Throws std::runtime_error naming the line of anything it cannot read.
History read_history(std::istream& in);

void save_history(const History& history, const std::filesystem::path& file);
History load_history(const std::filesystem::path& file);

}  // namespace visorlab::drill
