// The files a command writes its results to (--report, --plot): checked
// before any expensive work starts, written whole afterwards.
#pragma once

#include <string>

namespace visorlab::cli {

// std::invalid_argument naming `what` when `path`'s directory does not exist
// (an empty path: nothing to write, fine).
void check_writable(const std::string& path, const char* what);

// std::runtime_error when it cannot be written.
void write_file(const std::string& path, const std::string& text);

}  // namespace visorlab::cli
