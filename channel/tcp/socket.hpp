// Thin RAII over TCP sockets: the few calls a channel link needs, each
// failure a std::system_error naming what was attempted.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "net/host_port.hpp"

namespace visorlab::channel::tcp {

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(other.release()) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  int fd() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release();
  void close();

  // Sends every byte or throws; gives up after `timeout` without progress
  // (a frozen peer must not block us forever).
  void send_all(std::span<const std::byte> bytes, std::chrono::milliseconds timeout);
  // Reads what is there (up to out.size()), waiting at most `timeout`.
  // Returns bytes read; 0 means the peer closed; -1 means timeout.
  long receive(std::span<std::byte> out, std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
};

// Where a channel's server listens: numeric IPv4 here (port 0: any).
using Address = net::HostPort;

// A listening socket on `at` (port 0 picks one; see local_address).
Socket listen_on(const Address& at, int backlog = 16);
Address local_address(const Socket& socket);
// Accepts one connection, waiting at most `timeout`; empty Socket on timeout.
Socket accept_from(const Socket& listener, std::chrono::milliseconds timeout);
// Connects with a deadline; throws std::system_error on failure.
Socket connect_to(const Address& to, std::chrono::milliseconds timeout);

}  // namespace visorlab::channel::tcp
