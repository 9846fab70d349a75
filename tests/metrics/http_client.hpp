// A tiny HTTP/1.1 client for the metrics tests: one request over a real TCP
// connection ("Connection: close"), the whole answer read until the server
// closes, every wait bounded. Enough for GET/HEAD of /metrics and /healthz.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

namespace visorlab::test {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Connects to address:port (IPv4) within `timeout`; returns 0 or the errno.
inline int try_connect(const std::string& address, std::uint16_t port, Socket& s,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) throw std::invalid_argument("bad address " + address);
  if (::connect(s.fd(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{s.fd(), POLLOUT, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r == 0) return ETIMEDOUT;
  if (r < 0) return errno;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

inline HttpResponse http_request(const std::string& address, std::uint16_t port, const std::string& method,
                                 const std::string& path,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (s.fd() < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  if (const int e = try_connect(address, port, s, timeout); e != 0)
    throw std::runtime_error("connect " + address + ":" + std::to_string(port) + ": " + std::strerror(e));

  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto wait = [&](short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("HTTP " + method + " " + path + ": timed out");
    pollfd p{s.fd(), events, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
      throw std::runtime_error("poll: " + std::string(std::strerror(errno)));
  };

  const std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + address + ":" + std::to_string(port) +
                              "\r\nUser-Agent: visorlab-test\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  for (std::size_t sent = 0; sent < request.size();) {
    wait(POLLOUT);
    const ssize_t n = ::send(s.fd(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      throw std::runtime_error("send: " + std::string(std::strerror(errno)));
    if (n > 0) sent += static_cast<std::size_t>(n);
  }

  std::string raw;
  for (;;) {
    wait(POLLIN);
    char buf[8192];
    const ssize_t n = ::recv(s.fd(), buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw std::runtime_error("recv: " + std::string(std::strerror(errno)));
    }
    raw.append(buf, static_cast<std::size_t>(n));
  }

  HttpResponse r;
  const auto header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) throw std::runtime_error("no end of HTTP headers in: " + raw);
  const std::string head = raw.substr(0, header_end);
  r.body = raw.substr(header_end + 4);
  const auto line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12)
    throw std::runtime_error("bad status line: " + status_line);
  r.status = std::stoi(status_line.substr(9, 3));
  for (std::size_t pos = line_end; pos != std::string::npos && pos < head.size();) {
    const std::size_t start = pos + 2;
    const std::size_t end = head.find("\r\n", start);
    const std::string line = head.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (const auto colon = line.find(':'); colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[name] = value;
    }
    pos = end;
  }
  if (const auto it = r.headers.find("content-length"); it != r.headers.end() && method != "HEAD") {
    const auto length = std::stoul(it->second);
    if (r.body.size() != length)
      throw std::runtime_error("body of " + std::to_string(r.body.size()) + " bytes, Content-Length " + it->second);
  }
  if (const auto it = r.headers.find("transfer-encoding"); it != r.headers.end())
    throw std::runtime_error("unexpected Transfer-Encoding: " + it->second);
  return r;
}

inline HttpResponse http_get(const std::string& address, std::uint16_t port, const std::string& path) {
  return http_request(address, port, "GET", path);
}

}  // namespace visorlab::test
