// Where each field of a parsed topology came from. The model stays plain
// C++; validation looks positions up here by field path so that an error
// found after parsing (an unknown switch, a duplicate guest) still names
// file:line:column.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "topology/error.hpp"

namespace visorlab::topology {

struct Position {
  int line = 0;    // 1-based; 0 when unknown (a model built in code)
  int column = 0;  // 1-based
};

struct SourceMap {
  std::string file;  // the label used in messages: a path, or "(built-in default)"
  std::map<std::string, Position, std::less<>> positions;  // field path → position

  // The position of `field`, or of its nearest recorded parent: a missing key
  // is reported where its mapping starts.
  Position at(std::string_view field) const;

  // An Error at `field` (so every caller formats the same way).
  Error error(std::string_view field, std::string message) const;
};

}  // namespace visorlab::topology
