// The one error a topology file can produce: where (file, line, column,
// field path) and what. Parse and validation errors share it so the CLI can
// print any of them the same way and exit 2.
#pragma once

#include <stdexcept>
#include <string>

namespace visorlab::topology {

class Error : public std::runtime_error {
 public:
  // line and column are 1-based; what() is "FILE:LINE:COLUMN: FIELD: message".
  // Line 0 means no position is known (the file cannot be read, or the model
  // was built in code): what() is then "FILE: FIELD: message", or
  // "FILE: message" without a field.
  Error(std::string file, int line, int column, std::string field, std::string message);

  const std::string& file() const noexcept { return file_; }
  int line() const noexcept { return line_; }
  int column() const noexcept { return column_; }
  // A path into the document, like `guests[0].devices[1].switch`;
  // "(document)" for the file as a whole (YAML syntax, empty file).
  const std::string& field() const noexcept { return field_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string field_;
  std::string message_;
};

}  // namespace visorlab::topology
