#include "bench/netns_pair.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "bench/subprocess.hpp"

namespace visorlab::bench {
namespace {

constexpr const char* kRunDir = "/run/netns/";
constexpr std::chrono::seconds kIpTimeout{10};

void ip(const std::vector<std::string>& args) {
  static const std::optional<std::string> path = find_program("ip");
  if (!path) throw std::runtime_error("iproute2 `ip` not found");
  std::vector<std::string> argv{*path};
  argv.insert(argv.end(), args.begin(), args.end());
  const CommandResult r = run_command(argv, kIpTimeout);
  if (r.exit_code != 0)
    throw std::runtime_error("`" + command_line(argv) + "` failed (" +
                             (r.timed_out ? std::string("timed out") : "exit " + std::to_string(r.exit_code)) +
                             "): " + r.err + r.out);
}

int open_namespace(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + path);
  return fd;
}

void enter(int fd, const char* what) {
  if (::setns(fd, CLONE_NEWNET) != 0) throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

std::string NetnsPair::unavailable_reason() {
  if (::geteuid() != 0) return "not running as root";
  if (!find_program("ip")) return "iproute2 `ip` not found";
  return {};
}

// Names are vlb<pid>a / vlb<pid>b; one whose pid is gone is a leftover of a
// bench killed without unwinding.
void NetnsPair::remove_stale() {
  DIR* dir = ::opendir(kRunDir);
  if (!dir) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name.size() < 5 || name.rfind("vlb", 0) != 0 || (name.back() != 'a' && name.back() != 'b')) continue;
    const std::string digits = name.substr(3, name.size() - 4);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(name);
  }
  ::closedir(dir);
  for (const auto& name : stale) {
    const std::string path = kRunDir + name;
    ::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
  }
}

NetnsPair::NetnsPair() {
  remove_stale();
  const std::string prefix = "vlb" + std::to_string(::getpid());
  name_a_ = prefix + "a";
  name_b_ = prefix + "b";
  path_a_ = kRunDir + name_a_;
  path_b_ = kRunDir + name_b_;
  cleanup_.emplace(&NetnsPair::remove_namespaces, this);  // before anything exists: nothing can leak
  try {
    ip({"netns", "add", name_a_});
    ip({"netns", "add", name_b_});
    ip({"-n", name_a_, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", name_b_});
    ip({"-n", name_a_, "addr", "add", address_a_ + "/24", "dev", "a0"});
    ip({"-n", name_b_, "addr", "add", address_b_ + "/24", "dev", "b0"});
    for (const auto& [ns, dev] : {std::pair{name_a_, "a0"}, std::pair{name_b_, "b0"}}) {
      ip({"-n", ns, "link", "set", "lo", "up"});
      ip({"-n", ns, "link", "set", dev, "up"});
    }
    fd_a_ = open_namespace(path_a_);
    fd_b_ = open_namespace(path_b_);
  } catch (...) {
    if (fd_a_ >= 0) ::close(fd_a_);
    if (fd_b_ >= 0) ::close(fd_b_);
    throw;  // ~cleanup_ (a constructed member) deletes what was made
  }
}

NetnsPair::~NetnsPair() {
  if (fd_a_ >= 0) ::close(fd_a_);
  if (fd_b_ >= 0) ::close(fd_b_);
  // ~cleanup_ then removes the namespaces.
}

void NetnsPair::remove_namespaces(void* self) noexcept {
  auto* p = static_cast<NetnsPair*>(self);
  for (const std::string* path : {&p->path_a_, &p->path_b_}) {
    ::umount2(path->c_str(), MNT_DETACH);  // fails harmlessly if it was never made
    ::unlink(path->c_str());
  }
}

std::function<void()> NetnsPair::enter_b() const {
  return [fd = fd_b_] { enter(fd, "setns into the bench's namespace b"); };
}

NetnsPair::InSideA::InSideA(const NetnsPair& pair) {
  original_ = open_namespace("/proc/thread-self/ns/net");
  try {
    enter(pair.fd_a_, "setns into the bench's namespace a");
  } catch (...) {
    ::close(original_);
    throw;
  }
}

NetnsPair::InSideA::~InSideA() {
  // Staying in a would put the next loopback round in the wrong place.
  if (::setns(original_, CLONE_NEWNET) != 0) fail("setns back to the original network namespace failed");
  ::close(original_);
}

}  // namespace visorlab::bench
