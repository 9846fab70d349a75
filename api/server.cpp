#include "api/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "api/grpc_service.hpp"

namespace visorlab::api {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;  // a drill report with its SVG plot fits

// Binds `address` once ourselves, so a taken port or a foreign address is
// reported with its errno instead of gRPC's generic failure. Names (not
// numeric addresses) are left to gRPC.
void probe_bind(const HostPort& address) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = 0;
  if (in_addr a4{}; inet_pton(AF_INET, address.host.c_str(), &a4) == 1) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = family = AF_INET;
    sin->sin_port = htons(address.port);
    sin->sin_addr = a4;
    length = sizeof *sin;
  } else if (in6_addr a6{}; inet_pton(AF_INET6, address.host.c_str(), &a6) == 1) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = family = AF_INET6;
    sin6->sin6_port = htons(address.port);
    sin6->sin6_addr = a6;
    length = sizeof *sin6;
  } else {
    return;
  }
  const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as gRPC does: TIME_WAIT is no conflict
  int error = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0) error = errno;
  else if (::listen(fd, 1) != 0) error = errno;
  ::close(fd);
  if (error == EADDRINUSE)
    throw ServerError(false, "cannot listen on " + address.text() + ": the port is taken (" +
                                 std::strerror(error) + "); pick another with --listen");
  if (error != 0) throw ServerError(false, "cannot listen on " + address.text() + ": " + std::strerror(error));
}

}  // namespace

HostPort parse_host_port(const std::string& address, std::string_view what) {
  try {
    return net::parse_host_port(address, what, net::PortUse::listen);
  } catch (const std::invalid_argument& e) {
    throw ServerError(true, e.what());
  }
}

Server::Server(OrchestratorService& service, const std::string& address)
    : service_(service), bound_(parse_host_port(address)) {
  if (bound_.port != 0) probe_bind(bound_);
  // grpc.health.v1 (load balancers, `grpc_health_probe`) and server
  // reflection (grpcurl lists and calls the API without the .proto files).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort(bound_.text(), grpc::InsecureServerCredentials(), &selected);
  // gRPC sets SO_REUSEPORT by default: two orchestrators would then share a
  // port silently. A taken port must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || selected == 0) {
    server_.reset();
    throw ServerError(false, "cannot listen on " + bound_.text() +
                                 ": the port is taken or the address is not on this host");
  }
  bound_.port = static_cast<std::uint16_t>(selected);
}

Server::~Server() { shutdown(); }

void Server::shutdown(std::chrono::milliseconds grace) {
  service_.stop();
  if (!server_) return;
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);  // draining
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
  server_.reset();
}

}  // namespace visorlab::api
