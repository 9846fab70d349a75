#include "channel/tcp/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace visorlab::channel::tcp {
namespace {

[[noreturn]] void fail(const std::string& what, int err = errno) {
  throw std::system_error(err, std::generic_category(), what);
}

sockaddr_in to_sockaddr(const Address& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a.port);
  if (inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr) != 1)
    throw std::invalid_argument("not a numeric IPv4 address: '" + a.host + "'");
  return sa;
}

// Low latency for signals; keepalive is ours (heartbeats), not the kernel's.
void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = poll(&p, 1, static_cast<int>(timeout.count()));
  } while (r < 0 && errno == EINTR);
  if (r < 0) fail("poll");
  return r;
}

}  // namespace

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.release();
  }
  return *this;
}

Socket::~Socket() { close(); }

int Socket::release() { return std::exchange(fd_, -1); }

void Socket::close() {
  if (fd_ >= 0) ::close(std::exchange(fd_, -1));
}

void Socket::send_all(std::span<const std::byte> bytes, std::chrono::milliseconds timeout) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (wait_for(fd_, POLLOUT, timeout) == 0) fail("send: peer took nothing for " + std::to_string(timeout.count()) + " ms", ETIMEDOUT);
      continue;
    }
    fail("send");
  }
}

long Socket::receive(std::span<std::byte> out, std::chrono::milliseconds timeout) {
  if (wait_for(fd_, POLLIN, timeout) == 0) return -1;
  for (;;) {
    const ssize_t n = ::recv(fd_, out.data(), out.size(), MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
    fail("recv");
  }
}

Socket listen_on(const Address& at, int backlog) {
  const sockaddr_in sa = to_sockaddr(at);
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) fail("socket");
  int one = 1;
  setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.fd(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) fail("bind " + at.text());
  if (::listen(s.fd(), backlog) != 0) fail("listen " + at.text());
  return s;
}

Address local_address(const Socket& socket) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (getsockname(socket.fd(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) fail("getsockname");
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
  return Address{host, ntohs(sa.sin_port)};
}

Socket accept_from(const Socket& listener, std::chrono::milliseconds timeout) {
  if (wait_for(listener.fd(), POLLIN, timeout) == 0) return Socket{};
  Socket s(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!s) {
    if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR) return Socket{};
    fail("accept");
  }
  tune(s.fd());
  return s;
}

Socket connect_to(const Address& to, std::chrono::milliseconds timeout) {
  const sockaddr_in sa = to_sockaddr(to);
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!s) fail("socket");
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS) fail("connect " + to.text());
    if (wait_for(s.fd(), POLLOUT, timeout) == 0) fail("connect " + to.text() + ": timed out", ETIMEDOUT);
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) fail("connect " + to.text(), err);
  }
  // Back to blocking; sends use MSG_DONTWAIT and poll for their own deadline.
  fcntl(s.fd(), F_SETFL, fcntl(s.fd(), F_GETFL) & ~O_NONBLOCK);
  tune(s.fd());
  return s;
}

}  // namespace visorlab::channel::tcp
