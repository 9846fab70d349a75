#include "tests/support/scratch.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace visorlab::test {

namespace fs = std::filesystem;

Scratch::Scratch(const std::string& prefix) {
  static std::atomic<int> next{0};
  dir = fs::temp_directory_path() / (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(next++));
  fs::remove_all(dir);
  fs::create_directories(dir);
}

Scratch::~Scratch() {
  if (std::getenv("VISORLAB_KEEP_TEST_DIRS")) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

fs::path Scratch::file(const std::string& name, const std::string& text) const {
  const fs::path f = dir / name;
  write_text(f, text);
  return f;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace visorlab::test
