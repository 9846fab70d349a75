#include "net/host_port.hpp"

#include <arpa/inet.h>

#include <stdexcept>

namespace visorlab::net {

std::string HostPort::text() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

HostPort parse_host_port(std::string_view text, std::string_view field, PortUse use) {
  const auto fail = [&](const std::string& why) {
    return std::invalid_argument(std::string(field) + ": '" + std::string(text) + "' " + why +
                                 "; expected HOST:PORT like 127.0.0.1:4700");
  };
  HostPort out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw fail("is not [IPv6]:PORT");
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw fail("has no port");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) throw fail("has an IPv6 address without brackets ([ADDR]:PORT)");
  }
  if (out.host.empty()) throw fail("has no host");
  const unsigned long min = use == PortUse::listen ? 0 : 1;
  unsigned long value = 0;
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      (value = std::stoul(std::string(port))) > 65535 || value < min)
    throw fail(use == PortUse::listen ? "has no port from 0 (any) to 65535" : "has no port from 1 to 65535");
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

bool is_loopback(std::string_view host) {
  if (host == "localhost" || host == "::1") return true;
  in_addr a4{};
  const std::string h(host);
  return inet_pton(AF_INET, h.c_str(), &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

}  // namespace visorlab::net
