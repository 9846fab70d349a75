// What callers use: parse, then validate. A Topology returned from here is
// safe to start.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "topology/error.hpp"
#include "topology/model.hpp"

namespace visorlab::topology {

Topology load_file(const std::filesystem::path& file);
Topology load_string(std::string_view text, std::string file_label);

}  // namespace visorlab::topology
