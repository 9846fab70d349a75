#include "cli/output_files.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace visorlab::cli {

void check_writable(const std::string& path, const char* what) {
  if (path.empty()) return;
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    throw std::invalid_argument(std::string(what) + " " + path + ": directory " + dir.string() + " does not exist");
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace visorlab::cli
