#include "tests/orchestrator/daemon.hpp"

#include <algorithm>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/run.hpp"

namespace visorlab::test {
namespace {

std::string next_err_file() {
  static std::atomic<int> n{0};
  return "/tmp/visorlab-orch-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".err";
}

}  // namespace

Background::Background(const std::vector<std::string>& argv) : err_file_(next_err_file()) {
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  const int err_fd = ::open(err_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err_fd < 0) throw std::runtime_error("cannot create " + err_file_);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_fd);
  out_ = out_pipe[0];
}

Background::~Background() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
  if (out_ >= 0) ::close(out_);
  ::unlink(err_file_.c_str());
}

std::optional<std::string> Background::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char chunk[1024];
    const ssize_t n = ::read(out_, chunk, sizeof chunk);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

void Background::signal(int sig) const {
  if (!reaped_) ::kill(pid_, sig);
}

std::optional<int> Background::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reaped_) {
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
      reaped_ = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

std::string Background::err() const {
  std::ifstream in(err_file_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Orchestrator::Orchestrator(std::vector<std::string> extra)
    : process([&] {
        std::vector<std::string> argv{bin("visorlab"), "orchestrator", "--listen", "127.0.0.1:0"};
        if (std::find(extra.begin(), extra.end(), "--agent-port") == extra.end())
          argv.insert(argv.end(), {"--agent-port", "0"});
        argv.insert(argv.end(), extra.begin(), extra.end());
        return argv;
      }()) {
  // Log lines may come first (a re-adoption's).
  static const std::regex announce(R"(listening on 127\.0\.0\.1:(\d+) agents on 127\.0\.0\.1:(\d+))");
  std::smatch m;
  std::optional<std::string> line;
  for (int i = 0; i < 100; ++i) {
    line = process.read_line(std::chrono::seconds(20));
    if (!line) throw std::runtime_error("the orchestrator did not announce its port; stderr: " + process.err());
    if (std::regex_search(*line, m, announce)) break;
  }
  if (m.empty()) throw std::runtime_error("no announcement in 100 lines; last: " + *line);
  port = static_cast<std::uint16_t>(std::stoi(m[1]));
  agent_port = static_cast<std::uint16_t>(std::stoi(m[2]));
  address = "127.0.0.1:" + std::to_string(port);
  static const std::regex metrics(R"(metrics on 127\.0\.0\.1:(\d+))");
  if (std::regex_search(*line, m, metrics)) metrics_port = static_cast<std::uint16_t>(std::stoi(m[1]));
}

Orchestrator::~Orchestrator() {
  process.signal(SIGTERM);
  process.wait(std::chrono::seconds(10));
}

std::vector<std::string> listening_addresses(std::uint16_t port) {
  std::vector<std::string> out;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state != "0A") continue;  // TCP_LISTEN
      const auto colon = local.rfind(':');
      if (std::stoul(local.substr(colon + 1), nullptr, 16) != port) continue;
      const std::string hex = local.substr(0, colon);
      char text[INET6_ADDRSTRLEN] = {};
      if (hex.size() == 8) {
        in_addr a{};
        a.s_addr = static_cast<in_addr_t>(std::stoul(hex, nullptr, 16));  // /proc prints it in host order of the word
        ::inet_ntop(AF_INET, &a, text, sizeof text);
      } else {
        in6_addr a{};
        for (int w = 0; w < 4; ++w) {
          const std::uint32_t word = static_cast<std::uint32_t>(std::stoul(hex.substr(w * 8, 8), nullptr, 16));
          std::memcpy(&a.s6_addr[w * 4], &word, 4);
        }
        ::inet_ntop(AF_INET6, &a, text, sizeof text);
      }
      out.emplace_back(text);
    }
  }
  return out;
}

}  // namespace visorlab::test
