#include "topology/load.hpp"

#include <utility>

#include "topology/parse.hpp"
#include "topology/validate.hpp"

namespace visorlab::topology {

Topology load_file(const std::filesystem::path& file) {
  Topology t = parse_file(file);
  validate(t);
  return t;
}

Topology load_string(std::string_view text, std::string file_label) {
  Topology t = parse_string(text, std::move(file_label));
  validate(t);
  return t;
}

}  // namespace visorlab::topology
