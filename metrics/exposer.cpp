#include "metrics/exposer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <string>
#include <vector>

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/text_serializer.h>

#include "metrics/registry.hpp"

namespace visorlab::metrics {

namespace {

constexpr const char* kTextFormat = "text/plain; version=0.0.4; charset=utf-8";

// civetweb reports why it could not start (e.g. "cannot bind to
// 127.0.0.1:9464: 98 (Address already in use)") only through the log
// callback, called on the constructing thread during start-up; this points at
// the constructor's buffer meanwhile. Messages at other times (a client that
// hung up) are dropped: they are not ours to log.
thread_local std::string* startup_log = nullptr;

int log_message(const mg_connection*, const char* message) {
  if (startup_log != nullptr && message != nullptr) {
    if (!startup_log->empty()) startup_log->append("; ");
    startup_log->append(message);
  }
  return 1;  // handled: civetweb prints nothing
}

void send(mg_connection* conn, const std::string& body, const char* content_type, bool head) {
  mg_send_http_ok(conn, content_type, static_cast<long long>(body.size()));
  if (!head) mg_write(conn, body.data(), body.size());
}

class MetricsHandler final : public CivetHandler {
 public:
  explicit MetricsHandler(std::weak_ptr<prometheus::Collectable> collectable) : collectable_(std::move(collectable)) {}
  bool handleGet(CivetServer*, mg_connection* conn) override { return serve(conn, false); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return serve(conn, true); }

 private:
  bool serve(mg_connection* conn, bool head) {
    std::string body;
    try {
      if (const auto c = collectable_.lock()) body = prometheus::TextSerializer().Serialize(c->Collect());
    } catch (const std::exception& e) {
      mg_send_http_error(conn, 500, "metrics: %s\n", e.what());
      return true;
    }
    send(conn, body, kTextFormat, head);
    return true;
  }
  std::weak_ptr<prometheus::Collectable> collectable_;
};

class HealthHandler final : public CivetHandler {
 public:
  bool handleGet(CivetServer*, mg_connection* conn) override {
    send(conn, "ok", "text/plain; charset=utf-8", false);
    return true;
  }
  bool handleHead(CivetServer*, mg_connection* conn) override {
    send(conn, "ok", "text/plain; charset=utf-8", true);
    return true;
  }
};

std::string checked_bind_address(std::string_view address) {
  std::string a(address);
  in_addr parsed{};
  if (inet_pton(AF_INET, a.c_str(), &parsed) != 1)
    throw std::invalid_argument("metrics: bind address '" + a +
                                "' is not an IPv4 address (e.g. 127.0.0.1, or 0.0.0.0 for every interface)");
  return a;
}

std::string why_not_listening(const std::string& log, std::uint16_t port) {
  if (log.find("Address already in use") != std::string::npos)
    return "port " + std::to_string(port) + " is already in use (another agent or exporter on it?)";
  if (log.find("Cannot assign requested address") != std::string::npos)
    return "the address is not one of this host's";
  if (log.find("Permission denied") != std::string::npos)
    return "permission denied (ports below 1024 need privileges)";
  return log.empty() ? "civetweb did not start" : log;
}

// Opens and drops a TCP connection to address:port, not waiting for anything.
void poke(const std::string& address, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) == 1)
    (void)::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  ::close(fd);
}

}  // namespace

ListenAddress parse_listen_address(std::string_view text) {
  ListenAddress a = net::parse_host_port(text, "metrics address", net::PortUse::listen);
  a.host = checked_bind_address(a.host);
  return a;
}

struct MetricsServer::Handlers {
  MetricsHandler metrics;
  HealthHandler health;
};

MetricsServer::MetricsServer(const Metrics& metrics, std::uint16_t port, std::string_view bind_address)
    : MetricsServer(std::weak_ptr<prometheus::Collectable>(metrics.registry()), port, bind_address) {}

MetricsServer::MetricsServer(std::weak_ptr<prometheus::Collectable> collectable, std::uint16_t port,
                             std::string_view bind_address)
    : bind_address_(checked_bind_address(bind_address)),
      handlers_(std::make_unique<Handlers>(Handlers{MetricsHandler(std::move(collectable)), HealthHandler()})) {
  const std::string listen = bind_address_ + ":" + std::to_string(port);
  const std::vector<std::string> options = {
      "listening_ports", listen,  //
      "num_threads", "2",         // scrapes are rare; two lets /healthz answer during one
      "request_timeout_ms", "10000",
  };
  CivetCallbacks callbacks;
  callbacks.log_message = log_message;
  std::string log;
  startup_log = &log;
  try {
    server_ = std::make_unique<CivetServer>(options, &callbacks);
  } catch (const std::exception&) {
    startup_log = nullptr;
    throw MetricsServerError("metrics: cannot listen on " + listen + ": " + why_not_listening(log, port));
  }
  startup_log = nullptr;

  const std::vector<int> ports = server_->getListeningPorts();
  if (ports.size() != 1 || ports[0] <= 0 || ports[0] > 65535)
    throw MetricsServerError("metrics: civetweb started on " + listen + " but reports no listening port");
  port_ = static_cast<std::uint16_t>(ports[0]);
  // "$": exact paths, so /metricsx and /metrics/x are 404 rather than served.
  server_->addHandler("/metrics$", handlers_->metrics);
  server_->addHandler("/healthz$", handlers_->health);
}

MetricsServer::~MetricsServer() {
  // civetweb's mg_stop() sets a stop flag and joins its listener thread, which
  // only looks at the flag between polls of the listening socket with a 2 s
  // timeout: every server took 2 s to stop. A connection wakes the poll, so
  // one is made every few ms until the stop is complete.
  std::atomic<bool> stopped{false};
  std::thread waker([this, &stopped] {
    const std::string address = bind_address_ == "0.0.0.0" ? "127.0.0.1" : bind_address_;
    while (!stopped.load()) {
      poke(address, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  server_.reset();  // joins civetweb's threads before the handlers go
  stopped.store(true);
  waker.join();
}

std::string MetricsServer::url(std::string_view path) const {
  return "http://" + bind_address_ + ":" + std::to_string(port_) + std::string(path);
}

}  // namespace visorlab::metrics
