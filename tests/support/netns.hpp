// Test helper: real "test hosts" for cross-host channel tests, built as Linux
// network namespaces inside this machine (the only non-loopback addresses
// network tests may use).
//
// Layout of one TestHosts instance with N hosts:
//
//   netns vl<pid>i<k>br : bridge "br0", ports "h0" .. "h<N-1>"
//   netns vl<pid>i<k>h<i>: "lo" (up) and "eth0" = 10.<a>.<b>.<i+1>/24,
//                          the peer of veth "h<i>" in the bridge namespace
//
// Every link is created directly inside a namespace, so nothing is ever added
// to the root namespace and deleting the namespaces removes everything.
// <pid> is the test process and <k> counts instances within it, so parallel
// test processes and several instances in one test never share a name.
// <a>.<b> is derived from the same two numbers; since each instance is isolated
// in its own namespaces it only keeps addresses distinct in logs.
//
// Cleanup: the destructor kills still-running children from spawn() and
// deletes the namespaces. If a test process dies without unwinding (signal,
// CTest timeout), the next constructor removes its leftovers: cleanup_stale()
// deletes every vl<pid>i... namespace whose <pid> is no longer alive.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace visorlab::test {

class TestHosts {
 public:
  // Creates `count` hosts (1..250). Throws std::runtime_error naming the
  // failing command and its output; whatever was created is removed first.
  explicit TestHosts(int count);
  // Kills spawned children still running, deletes every namespace. Best
  // effort, never throws.
  ~TestHosts();

  TestHosts(const TestHosts&) = delete;
  TestHosts& operator=(const TestHosts&) = delete;

  int size() const;
  const std::string& name(int host) const;     // netns name, e.g. "vl1234i1h0"
  const std::string& address(int host) const;  // e.g. "10.4.210.1"

  // Sets the host's "eth0" down / up, cutting it off from / reconnecting it to
  // the bridge. IPv4 restores the connected route when the link comes back.
  void link_down(int host);
  void link_up(int host);

  // Forks a child that enters the host's network namespace and returns fn()
  // as its exit code via _exit (125 if entering the namespace failed, 126 if
  // fn threw). The child gets PR_SET_PDEATHSIG(SIGKILL) so it never outlives
  // the test process. fn runs in a forked copy of the test: it must report
  // through its return value, not through BOOST_* assertions.
  pid_t spawn(int host, std::function<int()> fn);

  // Waits for a child from spawn() until `timeout`, then SIGKILLs and reaps
  // it. Returns its exit code, or -1 if it was killed or died from a signal.
  int wait(pid_t child, std::chrono::milliseconds timeout);

  // Runs `sh -c shell_command` inside the host's namespace (ip netns exec),
  // killed after `timeout`. Returns its exit code, -1 if killed/timed out.
  int exec(int host, const std::string& shell_command,
           std::chrono::milliseconds timeout = std::chrono::seconds(30));

  // True if running as root and a namespace can actually be added and
  // deleted (containers often allow `ip netns list` but not `add`). Cached.
  static bool available();

  // Deletes namespaces named vl<pid>i... whose <pid> is not a live process.
  static void cleanup_stale();

 private:
  void check_host(int host) const;
  void teardown() noexcept;

  std::string prefix_;          // "vl<pid>i<k>"
  std::string bridge_ns_;       // prefix_ + "br"
  std::vector<std::string> names_;
  std::vector<std::string> addresses_;
  std::vector<std::string> created_;  // namespaces to delete, in creation order
  std::vector<pid_t> children_;       // spawned, not yet reaped by wait()
};

}  // namespace visorlab::test
