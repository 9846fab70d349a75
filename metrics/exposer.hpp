// Serves a Metrics registry over HTTP (DESIGN.md "Metrics", docs/metrics.md):
//   GET /metrics  the Prometheus text format (0.0.4) of the registry
//   GET /healthz  200 "ok" while the server runs
// Anything else is 404. HEAD works on both paths.
//
// Bound to 127.0.0.1 unless an address is given: exposing a host's metrics
// beyond it is the operator's explicit choice (e.g. "0.0.0.0" or one
// interface's address). IPv4 only (Debian's civetweb is built without IPv6).
// Port 0 picks any free port; port() tells which.
//
// Built on civetweb's CivetServer, the server prometheus::Exposer wraps, and
// prometheus-cpp's TextSerializer, rather than on prometheus::Exposer itself:
// Exposer 1.0.1 adds its own exposer_* families to every endpoint (breaking
// the visorlab_ prefix contract, and not removable) and has no way to add a
// non-metrics handler such as /healthz.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <prometheus/collectable.h>

#include "net/host_port.hpp"

class CivetServer;

namespace visorlab::metrics {

class Metrics;

// The server could not listen (port taken, address not local, no
// permission). The message names the address, the port and the reason; the
// CLI maps it to exit code 3 (infrastructure failure).
class MetricsServerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where a metrics server listens, parsed from the `--metrics HOST:PORT` form:
// an IPv4 address and a port, 0 meaning any free one ("127.0.0.1:0").
using ListenAddress = net::HostPort;
// Throws std::invalid_argument naming `text` unless it is IPV4-ADDRESS:PORT
// with a numeric port in 0…65535 (0: any).
ListenAddress parse_listen_address(std::string_view text);

class MetricsServer {
 public:
  static constexpr std::string_view kDefaultBindAddress = "127.0.0.1";

  // Serves `metrics` (the server keeps only a weak reference to its registry,
  // so it may outlive it: /metrics is then empty). Throws MetricsServerError
  // if it cannot listen, std::invalid_argument if `bind_address` is not an
  // IPv4 address.
  explicit MetricsServer(const Metrics& metrics, std::uint16_t port = 0,
                         std::string_view bind_address = kDefaultBindAddress);
  // Serves any prometheus-cpp collectable (a Registry, a Family) instead.
  explicit MetricsServer(std::weak_ptr<prometheus::Collectable> collectable, std::uint16_t port = 0,
                         std::string_view bind_address = kDefaultBindAddress);
  // Serves `metrics` where `listen` says.
  MetricsServer(const Metrics& metrics, const ListenAddress& listen)
      : MetricsServer(metrics, listen.port, listen.host) {}
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  // Stops listening and waits for requests in progress.
  ~MetricsServer();

  // The port actually listened on (the chosen one when constructed with 0).
  std::uint16_t port() const noexcept { return port_; }
  const std::string& bind_address() const noexcept { return bind_address_; }
  // "http://<bind address>:<port><path>".
  std::string url(std::string_view path = "/metrics") const;

 private:
  struct Handlers;

  std::string bind_address_;
  std::uint16_t port_ = 0;
  std::unique_ptr<Handlers> handlers_;  // must outlive server_
  std::unique_ptr<CivetServer> server_;
};

}  // namespace visorlab::metrics
