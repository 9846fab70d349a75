// Test helpers for /metrics: the text exposition format parsed just enough
// to check series, and promtool run on a text through a pipe.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace visorlab::test {

// ---- the text exposition format, parsed just enough to check series ---------

using LabelMap = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  LabelMap labels;
  double value;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter|gauge|histogram|…
  std::map<std::string, std::string> helps;
  std::vector<Sample> samples;

  // The value of the series with exactly these labels; NaN (equal to
  // nothing) if there is none.
  double value(const std::string& name, const LabelMap& labels) const {
    for (const auto& s : samples)
      if (s.name == name && s.labels == labels) return s.value;
    return std::nan("");
  }
  // The sum over every series of `name` whose labels include `subset` (0 if none).
  double sum(const std::string& name, const LabelMap& subset = {}) const {
    double total = 0;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : subset) {
        const auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (match) total += s.value;
    }
    return total;
  }
  std::vector<const Sample*> series(const std::string& name) const {
    std::vector<const Sample*> out;
    for (const auto& s : samples)
      if (s.name == name) out.push_back(&s);
    return out;
  }
};

inline Sample parse_sample(const std::string& line) {
  Sample s;
  std::size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      std::string key;
      while (i < line.size() && line[i] != '=') key += line[i++];
      if (line.compare(i, 2, "=\"") != 0) throw std::runtime_error("bad label in: " + line);
      i += 2;
      std::string value;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\' && i + 1 < line.size()) {
          ++i;
          value += line[i] == 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
        ++i;
      }
      if (i >= line.size()) throw std::runtime_error("unterminated label value in: " + line);
      ++i;  // closing quote
      if (!s.labels.emplace(key, value).second) throw std::runtime_error("label twice in: " + line);
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) throw std::runtime_error("unterminated labels in: " + line);
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') throw std::runtime_error("no value in: " + line);
  const std::string rest = line.substr(i + 1);
  char* end = nullptr;
  s.value = std::strtod(rest.c_str(), &end);
  if (end == rest.c_str()) throw std::runtime_error("bad value in: " + line);
  return s;
}

inline Exposition parse(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      e.types[name] = type;
    } else if (line.rfind("# HELP ", 0) == 0) {
      const auto rest = line.substr(7);
      const auto sp = rest.find(' ');
      e.helps[rest.substr(0, sp)] = sp == std::string::npos ? "" : rest.substr(sp + 1);
    } else if (line[0] != '#') {
      e.samples.push_back(parse_sample(line));
    }
  }
  return e;
}

// ---- promtool, fed through a pipe ----------------------------------------------

inline std::optional<std::string> find_in_path(const std::string& program) {
  std::istringstream dirs(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && access((dir + "/" + program).c_str(), X_OK) == 0) return dir + "/" + program;
  return std::nullopt;
}

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs argv with `input` on its stdin (written by a thread, so a large input
// cannot deadlock against the tool's output); kills it after 60 s.
inline ToolResult run_with_stdin(const std::vector<std::string>& argv, const std::string& input) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  std::thread writer([fd = in[1], &input] {
    ::signal(SIGPIPE, SIG_IGN);  // the tool may exit before reading everything
    for (std::size_t done = 0; done < input.size();) {
      const ssize_t n = write(fd, input.data() + done, input.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    close(fd);
  });
  ToolResult r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) == 0) {
      kill(pid, SIGKILL);
      r.output += "\n[killed after 60 s]";
      break;
    }
    char buf[4096];
    const ssize_t n = read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.output.append(buf, static_cast<std::size_t>(n));
  }
  close(out[0]);
  writer.join();
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace visorlab::test
