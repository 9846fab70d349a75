// The built-in topology `visorlab drill` runs without a file: the example of
// DESIGN.md, also shipped as examples/default.yaml (a test keeps the two
// identical).
#pragma once

#include <string_view>

#include "topology/model.hpp"

namespace visorlab::topology {

// The YAML text, as a user could copy it into a file.
std::string_view default_topology_yaml();

// That text loaded (parsed and validated), labelled "(built-in default)".
Topology default_topology();

}  // namespace visorlab::topology
