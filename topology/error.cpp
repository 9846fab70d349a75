#include "topology/error.hpp"

#include <utility>

namespace visorlab::topology {

namespace {

std::string format(const std::string& file, int line, int column, const std::string& field,
                   const std::string& message) {
  if (line <= 0) return file + ": " + (field.empty() ? "" : field + ": ") + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + field + ": " +
         message;
}

}  // namespace

Error::Error(std::string file, int line, int column, std::string field, std::string message)
    : std::runtime_error(format(file, line, column, field, message)),
      file_(std::move(file)),
      line_(line),
      column_(column),
      field_(std::move(field)),
      message_(std::move(message)) {}

}  // namespace visorlab::topology
