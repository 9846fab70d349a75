// Test helper: a scratch directory per test case, removed afterwards unless
// VISORLAB_KEEP_TEST_DIRS is set (to look at what a failing case left), and
// the whole-file reads and writes tests do in it.
#pragma once

#include <filesystem>
#include <string>

namespace visorlab::test {

struct Scratch {
  // <tmp>/<prefix>-<pid>-<n>, empty.
  explicit Scratch(const std::string& prefix = "visorlab-test");
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  // Writes `text` to dir/name and returns the path.
  std::filesystem::path file(const std::string& name, const std::string& text) const;

  std::filesystem::path dir;
};

// The whole file ("" if it cannot be read).
std::string read_text(const std::filesystem::path& file);
// Writes the whole file; throws std::runtime_error if it cannot.
void write_text(const std::filesystem::path& file, const std::string& text);

}  // namespace visorlab::test
