#include "topology/source_map.hpp"

namespace visorlab::topology {

Position SourceMap::at(std::string_view field) const {
  while (!field.empty()) {
    if (auto it = positions.find(field); it != positions.end()) return it->second;
    // Strip the last component: ".name" or "[3]".
    const auto cut = field.find_last_of(".[");
    if (cut == std::string_view::npos) break;
    field = field.substr(0, cut);
  }
  if (auto it = positions.find(std::string_view{}); it != positions.end()) return it->second;
  return {};
}

Error SourceMap::error(std::string_view field, std::string message) const {
  const Position p = at(field);
  return Error(file, p.line, p.column, std::string(field), std::move(message));
}

}  // namespace visorlab::topology
