#include "tests/support/leftovers.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace visorlab::test {
namespace {

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

}  // namespace

std::vector<std::string> split_nul(const std::string& text) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : text) {
    if (c == '\0') {
      parts.push_back(part);
      part.clear();
    } else {
      part += c;
    }
  }
  if (!part.empty()) parts.push_back(part);
  return parts;
}

std::map<pid_t, std::string> visorlab_processes(const ProcessFilter& ours) {
  std::map<pid_t, std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](unsigned char c) { return std::isdigit(c); }))
      continue;
    const auto argv = split_nul(read_all(e.path() / "cmdline"));
    if (argv.empty() || fs::path(argv[0]).filename() != "visorlab") continue;
    if (!ours(argv, split_nul(read_all(e.path() / "environ")))) continue;
    std::string line;
    for (const auto& a : argv) line += (line.empty() ? "" : " ") + a;
    found[static_cast<pid_t>(std::stol(name))] = line;
  }
  return found;
}

std::vector<std::string> shm_of_orchestrator(pid_t pid) {
  std::vector<std::string> found;
  if (pid <= 0) return found;
  const std::string tag = "o" + std::to_string(pid) + ".";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("visorlab-", 0) != 0) continue;
    for (auto at = name.find(tag); at != std::string::npos; at = name.find(tag, at + 1))
      if (name[at - 1] == '-' || name[at - 1] == '_') {
        found.push_back(name);
        break;
      }
  }
  return found;
}

}  // namespace visorlab::test
