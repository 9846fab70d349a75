#include "actors/service/service_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/io/middleman.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "actors/runtime/error.hpp"

namespace visorlab::service {
namespace {

// Reads "<port>\n" from the child, or fails at the deadline.
std::uint16_t read_port(int fd, std::chrono::milliseconds timeout, const std::string& who) {
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (text.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error(who + ": no port within " + std::to_string(timeout.count()) + " ms");
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
      throw std::runtime_error(who + ": poll: " + std::strerror(errno));
    char buf[32];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) throw std::runtime_error(who + ": exited before it served (see its log above)");
    if (n > 0) text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 16) throw std::runtime_error(who + ": garbage on the ready pipe");
  }
  const unsigned long port = std::stoul(text);
  if (port == 0 || port > 65535) throw std::runtime_error(who + ": bad port " + text);
  return static_cast<std::uint16_t>(port);
}

}  // namespace

ServiceProcess::~ServiceProcess() { stop(std::chrono::milliseconds(1000)); }

std::vector<std::string> ServiceProcess::argv() const {
  const ServiceOptions& s = options_.service;
  std::vector<std::string> a{options_.visorlab_bin, "service-partition", "--name", s.name, "--kind", std::string(topology::to_string(s.kind)),
                             "--ready-fd", "3"};
  if (s.input_rate > 0) a.insert(a.end(), {"--input-rate", std::to_string(s.input_rate)});
  return a;
}

actors::service_actor ServiceProcess::start() {
  if (alive()) throw std::runtime_error(options_.service.name + " is already running (pid " + std::to_string(pid_) + ")");
  const std::string who = "service partition " + options_.service.name;
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) throw std::runtime_error(who + ": pipe: " + std::strerror(errno));
  const auto args = argv();
  std::vector<char*> cargs;
  for (const auto& s : args) cargs.push_back(const_cast<char*>(s.c_str()));
  cargs.push_back(nullptr);
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) {
    close(pipefd[0]);
    close(pipefd[1]);
    throw std::runtime_error(who + ": fork: " + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(127);
    dup2(pipefd[1], 3);  // clears CLOEXEC on the copy
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  close(pipefd[1]);
  pid_ = pid;
  try {
    port_ = read_port(pipefd[0], options_.start_timeout, who);
    close(pipefd[0]);
  } catch (...) {
    close(pipefd[0]);
    kill9();
    throw;
  }
  auto handle = sys_.middleman().remote_actor<actors::service_actor>("127.0.0.1", port_);
  if (!handle) {
    kill9();
    throw std::runtime_error(who + ": cannot connect to its actor: " + message_of(handle.error()));
  }
  handle_ = *handle;
  return handle_;
}

void ServiceProcess::reap(bool block) {
  if (pid_ <= 0) return;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) pid_ = -1;
}

bool ServiceProcess::alive() {
  reap(false);
  return pid_ > 0;
}

bool ServiceProcess::kill9() {
  if (!alive()) return false;
  ::kill(pid_, SIGKILL);
  reap(true);
  return true;
}

bool ServiceProcess::terminate() {
  if (!alive()) return false;
  ::kill(pid_, SIGTERM);
  return true;
}

bool ServiceProcess::stop(std::chrono::milliseconds grace) {
  if (!terminate()) return false;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!alive()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return kill9();
}

}  // namespace visorlab::service
