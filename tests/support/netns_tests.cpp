// TestHosts: namespaces joined by a bridge really behave like separate hosts.
// Every socket operation and every wait for a child is bounded in time; every
// test owns its TestHosts, so namespaces go away even when an assertion throws.
#define BOOST_TEST_MODULE test_support_netns
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "tests/support/netns.hpp"
#include "tests/support/run.hpp"

namespace utf = boost::unit_test;
using visorlab::test::TestHosts;
using namespace std::chrono_literals;

namespace {

// Child exit codes, so a failing test says which step failed.
enum Rc : int { kOk = 0, kSocket = 10, kConnect = 11, kSend = 12, kRecv = 13, kMismatch = 14, kAccept = 15 };

constexpr std::chrono::milliseconds kChildDeadline = 10s;
constexpr std::uint16_t kPort = 7411;  // any port: each namespace has its own

// Skip rather than fail where namespaces cannot be made (not root, container).
boost::test_tools::assertion_result netns_available(utf::test_unit_id) {
  boost::test_tools::assertion_result ok(TestHosts::available());
  if (!ok) ok.message() << "skipped: needs root and a working `ip netns add`";
  return ok;
}

sockaddr_in make_addr(const std::string& ip, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

bool wait_fd(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & events);
}

// Non-blocking connect bounded by timeout_ms; returns a connected fd or -1.
int connect_within(const std::string& ip, std::uint16_t port, int timeout_ms) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const sockaddr_in a = make_addr(ip, port);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    int err = errno;
    if (err == EINPROGRESS && wait_fd(fd, POLLOUT, timeout_ms)) {
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    }
    if (err != 0) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

// Client body (runs in a spawned child): connect, send, expect the echo.
int echo_client(const std::string& ip, int connect_timeout_ms) {
  const int fd = connect_within(ip, kPort, connect_timeout_ms);
  if (fd < 0) return kConnect;
  const char msg[] = "hello across hosts";
  int rc = kOk;
  char buf[sizeof msg] = {};
  if (send(fd, msg, sizeof msg, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof msg)) {
    rc = kSend;
  } else if (!wait_fd(fd, POLLIN, 2000) || recv(fd, buf, sizeof buf, MSG_WAITALL) != static_cast<ssize_t>(sizeof msg)) {
    rc = kRecv;  // MSG_WAITALL on a non-blocking socket may short-read; the
                 // message is tiny and sent in one segment, so it does not.
  } else if (std::memcmp(buf, msg, sizeof msg) != 0) {
    rc = kMismatch;
  }
  close(fd);
  return rc;
}

// Starts an echo server in `host`, bound to bind_ip, serving `connections`
// clients one message each. Returns once it listens (signalled through a
// pipe), so clients need no retry loop to find it.
pid_t start_echo_server(TestHosts& hosts, int host, const std::string& bind_ip, int connections) {
  int ready[2];
  BOOST_REQUIRE(pipe2(ready, O_CLOEXEC) == 0);
  const pid_t pid = hosts.spawn(host, [&]() -> int {
    close(ready[0]);
    const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in a = make_addr(bind_ip, kPort);
    if (lfd < 0 || bind(lfd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || listen(lfd, 8) != 0)
      return kSocket;
    if (write(ready[1], "r", 1) != 1) return kSocket;
    close(ready[1]);
    for (int i = 0; i < connections; ++i) {
      if (!wait_fd(lfd, POLLIN, 8000)) return kAccept;
      const int cfd = accept(lfd, nullptr, nullptr);
      if (cfd < 0) return kAccept;
      char buf[256];
      const bool got = wait_fd(cfd, POLLIN, 2000);
      const ssize_t n = got ? recv(cfd, buf, sizeof buf, 0) : -1;
      if (n <= 0 || send(cfd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) return kRecv;
      close(cfd);
    }
    return kOk;
  });
  close(ready[1]);
  char c = 0;
  const bool listening = wait_fd(ready[0], POLLIN, 5000) && read(ready[0], &c, 1) == 1;
  close(ready[0]);
  if (!listening) {
    // Not inside the message: Boost.Test evaluates it even when the check passes.
    const int rc = hosts.wait(pid, 1s);
    BOOST_FAIL("echo server in host " << host << " did not start (exit " << rc << ")");
  }
  return pid;
}

int run_client(TestHosts& hosts, int host, const std::string& ip, int connect_timeout_ms = 2000) {
  return hosts.wait(hosts.spawn(host, [&] { return echo_client(ip, connect_timeout_ms); }), kChildDeadline);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(netns, *utf::precondition(netns_available))

BOOST_AUTO_TEST_CASE(hosts_have_distinct_names_and_addresses) {
  TestHosts hosts(3);
  BOOST_TEST(hosts.size() == 3);
  for (int i = 0; i < 3; ++i) {
    for (int j = i + 1; j < 3; ++j) {
      BOOST_TEST(hosts.name(i) != hosts.name(j));
      BOOST_TEST(hosts.address(i) != hosts.address(j));
    }
    BOOST_TEST(hosts.address(i).rfind("10.", 0) == 0);
    // The address sits on the host's own eth0, and loopback is up.
    BOOST_TEST(hosts.exec(i, "ip -4 -o addr show dev eth0 | grep -qF ' " + hosts.address(i) + "/24 '") == 0);
    BOOST_TEST(hosts.exec(i, "ip -o link show dev lo | grep -q ',UP'") == 0);
  }
  BOOST_TEST(hosts.exec(0, "exit 3") == 3);
  BOOST_CHECK_THROW(hosts.name(3), std::out_of_range);
}

BOOST_AUTO_TEST_CASE(tcp_echo_between_hosts) {
  TestHosts hosts(3);
  const pid_t server = start_echo_server(hosts, 2, hosts.address(2), 2);
  BOOST_TEST(run_client(hosts, 0, hosts.address(2)) == kOk);
  BOOST_TEST(run_client(hosts, 1, hosts.address(2)) == kOk);
  BOOST_TEST(hosts.wait(server, kChildDeadline) == kOk);
}

BOOST_AUTO_TEST_CASE(loopback_is_private_to_each_host) {
  TestHosts hosts(2);
  const pid_t server = start_echo_server(hosts, 0, "127.0.0.1", 1);
  // Host 1's 127.0.0.1 is its own loopback: nobody listens there.
  BOOST_TEST(run_client(hosts, 1, "127.0.0.1") == kConnect);
  // Host 0 reaches its own listener, so the refusal above was not a dead server.
  BOOST_TEST(run_client(hosts, 0, "127.0.0.1") == kOk);
  BOOST_TEST(hosts.wait(server, kChildDeadline) == kOk);
}

BOOST_AUTO_TEST_CASE(link_down_cuts_host_off_and_link_up_restores_it) {
  TestHosts hosts(2);
  const pid_t server = start_echo_server(hosts, 0, hosts.address(0), 2);
  BOOST_TEST(run_client(hosts, 1, hosts.address(0)) == kOk);

  hosts.link_down(0);
  BOOST_TEST(run_client(hosts, 1, hosts.address(0), 500) == kConnect);

  hosts.link_up(0);
  // Carrier and the bridge port come back asynchronously; give it a few
  // bounded tries rather than assume the first SYN makes it.
  int rc = -1;
  for (int attempt = 0; attempt < 5 && rc != kOk; ++attempt) rc = run_client(hosts, 1, hosts.address(0), 1000);
  BOOST_TEST(rc == kOk);
  BOOST_TEST(hosts.wait(server, kChildDeadline) == kOk);
}

BOOST_AUTO_TEST_CASE(destructor_removes_namespaces_and_children) {
  std::vector<std::string> names;
  pid_t sleeper = -1;
  {
    TestHosts hosts(2);
    for (int i = 0; i < hosts.size(); ++i) names.push_back(hosts.name(i));
    // Bounded too, in case the destructor does not kill it.
    sleeper = hosts.spawn(1, [] { return poll(nullptr, 0, 30000) == 0 ? 0 : 1; });
    const auto list = visorlab::test::run({"/bin/sh", "-c", "ip netns list"}, 10s);
    for (const auto& n : names) BOOST_TEST(list.out.find(n) != std::string::npos);
  }
  const auto list = visorlab::test::run({"/bin/sh", "-c", "ip netns list"}, 10s);
  BOOST_REQUIRE(list.exit_code == 0);
  for (const auto& n : names) BOOST_TEST(list.out.find(n) == std::string::npos, n << " still listed");
  // Reaped by the destructor, so it is no longer our child.
  int status = 0;
  const pid_t r = waitpid(sleeper, &status, WNOHANG);
  const int err = errno;
  BOOST_TEST(r == -1);
  BOOST_TEST(err == ECHILD);
}

BOOST_AUTO_TEST_SUITE_END()
