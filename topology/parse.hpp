// Topology file → model. Parsing refuses anything that is not the version 1
// shape — YAML syntax, unknown or repeated keys (typo protection), wrong
// types, unparsable sizes, durations and rates — and expands guests and
// devices. Whether names refer to anything and values make sense is
// validate's job (see load.hpp for both at once).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "topology/error.hpp"
#include "topology/model.hpp"

namespace visorlab::topology {

// Errors name the path as given.
Topology parse_file(const std::filesystem::path& file);

// `file_label` names the text in errors and in Topology::source.file; a file
// without a `name:` is named after the label's stem.
Topology parse_string(std::string_view text, std::string file_label);

}  // namespace visorlab::topology
