#include "tests/support/netns.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/run.hpp"

namespace visorlab::test {
namespace {

// Every `ip` call is bounded; creating or deleting a namespace takes
// milliseconds, so this only matters if something is badly wedged.
constexpr std::chrono::seconds kIpTimeout{10};

// run() execs without a PATH search, so locate iproute2's `ip` once.
const std::string& ip_path() {
  static const std::string path = [] {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
      if (access(p, X_OK) == 0) return std::string(p);
    return std::string();
  }();
  return path;
}

RunResult ip_run(const std::vector<std::string>& args) {
  if (ip_path().empty()) throw std::runtime_error("iproute2 `ip` not found");
  std::vector<std::string> argv{ip_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, kIpTimeout);
}

// Runs `ip args...`; throws with the command line and its output on failure.
void ip(const std::vector<std::string>& args) {
  const RunResult r = ip_run(args);
  if (r.exit_code == 0) return;
  std::string cmd = "ip";
  for (const auto& a : args) cmd += " " + a;
  throw std::runtime_error("`" + cmd + "` failed (" +
                           (r.timed_out ? std::string("timed out") : "exit " + std::to_string(r.exit_code)) +
                           "): " + r.err + r.out);
}

// Best effort, for cleanup paths: never throws.
void delete_namespace(const std::string& name) noexcept {
  try {
    ip_run({"netns", "delete", name});
  } catch (...) {
  }
}

std::vector<std::string> list_namespaces() {
  std::vector<std::string> names;
  const RunResult r = ip_run({"netns", "list"});
  if (r.exit_code != 0) return names;
  // Lines look like "vl123i1h0 (id: 4)" or just "vl123i1h0".
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const auto end = line.find(' ');
    if (end != 0 && !line.empty()) names.push_back(line.substr(0, end));
  }
  return names;
}

// Parses "vl<pid>i<instance>..." (the names this helper makes).
bool parse_name(const std::string& name, long& pid, long& instance) {
  if (name.rfind("vl", 0) != 0) return false;
  std::size_t pos = 2;
  auto number = [&](long& out) {
    const std::size_t start = pos;
    while (pos < name.size() && name[pos] >= '0' && name[pos] <= '9' && pos - start < 9) ++pos;
    if (pos == start) return false;
    out = std::stol(name.substr(start, pos - start));
    return true;
  };
  if (!number(pid)) return false;
  if (pos >= name.size() || name[pos] != 'i') return false;
  ++pos;
  return number(instance);
}

bool process_alive(long pid) {
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

int exit_code_of(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

}  // namespace

TestHosts::TestHosts(int count) {
  if (count < 1 || count > 250) throw std::invalid_argument("TestHosts: count must be 1..250");
  cleanup_stale();

  static std::atomic<long> instances{0};
  const long instance = ++instances;
  const long pid = getpid();
  prefix_ = "vl" + std::to_string(pid) + "i" + std::to_string(instance);
  bridge_ns_ = prefix_ + "br";

  // A namespace with our own pid and instance can only be the leftover of a
  // dead process that had the same pid; cleanup_stale() spares it because the
  // pid is alive again (it is us), so remove it here or `netns add` fails.
  try {
    for (const auto& n : list_namespaces()) {
      long p = 0, k = 0;
      if (parse_name(n, p, k) && p == pid && k == instance) delete_namespace(n);
    }
  } catch (...) {
  }

  const unsigned subnet = static_cast<unsigned>(pid * 16 + instance) & 0xffffu;
  const std::string net = "10." + std::to_string(subnet >> 8) + "." + std::to_string(subnet & 0xffu) + ".";

  try {
    auto add_namespace = [this](const std::string& n) {
      ip({"netns", "add", n});
      created_.push_back(n);
    };
    add_namespace(bridge_ns_);
    ip({"-n", bridge_ns_, "link", "add", "br0", "type", "bridge"});
    ip({"-n", bridge_ns_, "link", "set", "br0", "up"});

    for (int i = 0; i < count; ++i) {
      const std::string host = prefix_ + "h" + std::to_string(i);
      const std::string port = "h" + std::to_string(i);
      const std::string addr = net + std::to_string(i + 1);
      add_namespace(host);
      names_.push_back(host);
      addresses_.push_back(addr);
      ip({"-n", host, "link", "set", "lo", "up"});
      // Created inside the bridge namespace with its peer placed straight into
      // the host namespace: the root namespace never sees either end.
      ip({"-n", bridge_ns_, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host});
      ip({"-n", bridge_ns_, "link", "set", port, "master", "br0", "up"});
      ip({"-n", host, "addr", "add", addr + "/24", "dev", "eth0"});
      ip({"-n", host, "link", "set", "eth0", "up"});
    }
  } catch (...) {
    teardown();  // the destructor will not run for a throwing constructor
    throw;
  }
}

TestHosts::~TestHosts() { teardown(); }

void TestHosts::teardown() noexcept {
  // Kill children first: a namespace lives on while a process is inside it.
  for (const pid_t c : children_) {
    int status = 0;
    // 0 means still running and unreaped, so the pid is certainly still ours.
    if (waitpid(c, &status, WNOHANG) == 0) {
      kill(c, SIGKILL);
      waitpid(c, &status, 0);
    }
  }
  children_.clear();
  // Deleting a namespace destroys its veth ends, which takes the peers along.
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) delete_namespace(*it);
  created_.clear();
}

int TestHosts::size() const { return static_cast<int>(names_.size()); }

void TestHosts::check_host(int host) const {
  if (host < 0 || host >= size()) throw std::out_of_range("TestHosts: no host " + std::to_string(host));
}

const std::string& TestHosts::name(int host) const {
  check_host(host);
  return names_[static_cast<std::size_t>(host)];
}

const std::string& TestHosts::address(int host) const {
  check_host(host);
  return addresses_[static_cast<std::size_t>(host)];
}

void TestHosts::link_down(int host) { ip({"-n", name(host), "link", "set", "eth0", "down"}); }

void TestHosts::link_up(int host) { ip({"-n", name(host), "link", "set", "eth0", "up"}); }

pid_t TestHosts::spawn(int host, std::function<int()> fn) {
  const std::string path = "/var/run/netns/" + name(host);
  // Opened here so a missing namespace is an exception, not a child exit code.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("TestHosts::spawn: cannot open " + path);

  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    close(fd);
    throw std::runtime_error("TestHosts::spawn: fork failed");
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // parent died before prctl took effect
    if (setns(fd, CLONE_NEWNET) != 0) _exit(125);
    close(fd);
    int rc = 126;
    try {
      rc = fn();
    } catch (...) {
    }
    _exit(rc);  // never return into the test framework's copy
  }
  close(fd);
  children_.push_back(child);
  return child;
}

int TestHosts::wait(pid_t child, std::chrono::milliseconds timeout) {
  auto forget = [&] { children_.erase(std::remove(children_.begin(), children_.end(), child), children_.end()); };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) {
      forget();
      return exit_code_of(status);
    }
    if (r < 0 && errno != EINTR) {  // not our child, or already reaped
      forget();
      return -1;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  forget();
  return -1;
}

int TestHosts::exec(int host, const std::string& shell_command, std::chrono::milliseconds timeout) {
  if (ip_path().empty()) throw std::runtime_error("iproute2 `ip` not found");
  return run({ip_path(), "netns", "exec", name(host), "/bin/sh", "-c", shell_command}, timeout).exit_code;
}

bool TestHosts::available() {
  static const bool ok = [] {
    if (geteuid() != 0 || ip_path().empty()) return false;
    try {
      // Listing works in many containers that still refuse `add` (it needs
      // mount and CAP_SYS_ADMIN), so probe with a real add/delete.
      const std::string probe = "vl" + std::to_string(getpid()) + "i0probe";
      if (ip_run({"netns", "add", probe}).exit_code != 0) return false;
      return ip_run({"netns", "delete", probe}).exit_code == 0;
    } catch (...) {
      return false;
    }
  }();
  return ok;
}

void TestHosts::cleanup_stale() {
  try {
    for (const auto& n : list_namespaces()) {
      long pid = 0, instance = 0;
      if (parse_name(n, pid, instance) && pid != getpid() && !process_alive(pid)) delete_namespace(n);
    }
  } catch (...) {
  }
}

}  // namespace visorlab::test
