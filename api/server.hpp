// The orchestrator's gRPC server: serves an OrchestratorService on one
// address until shut down. Loopback unless the caller passes another address.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "net/host_port.hpp"

namespace grpc {
class Server;
}

namespace visorlab::api {

class OrchestratorService;

inline constexpr const char* kDefaultListen = "127.0.0.1:4700";

// The address cannot be served: malformed (`bad_address`) or not bindable
// (port taken, address not on this host).
class ServerError : public std::runtime_error {
 public:
  ServerError(bool bad_address, const std::string& message)
      : std::runtime_error(message), bad_address_(bad_address) {}
  bool bad_address() const { return bad_address_; }

 private:
  bool bad_address_;
};

using net::HostPort;
using net::is_loopback;

// Where the gRPC API listens or is reached (`what`: the option), port 0:
// any; throws ServerError(bad_address) for a malformed one.
HostPort parse_host_port(const std::string& address, std::string_view what = "--listen");

class Server {
 public:
  // Starts serving `service` on `address` (port 0: any free port). Throws
  // ServerError when the address is malformed or cannot be bound.
  Server(OrchestratorService& service, const std::string& address);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Where it listens, with the port actually bound.
  const HostPort& address() const { return bound_; }

  // Stops the service's streams, then the server: calls still running after
  // `grace` are cancelled. Idempotent; the destructor calls it.
  void shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2));

 private:
  OrchestratorService& service_;
  std::unique_ptr<grpc::Server> server_;
  HostPort bound_;
};

}  // namespace visorlab::api
