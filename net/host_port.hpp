// HOST:PORT — the one address type and parser every daemon, channel and file
// uses: IPv4 or a name as `HOST:PORT`, IPv6 as `[ADDR]:PORT`. One port-0
// rule: where we listen, port 0 means "any free port"; where we connect, a
// port must be 1-65535.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace visorlab::net {

struct HostPort {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 0;
  std::string text() const;  // "127.0.0.1:4700", "[::1]:4700"
  bool operator==(const HostPort&) const = default;
};

enum class PortUse {
  listen,   // 0-65535; 0: any free port
  connect,  // 1-65535
};

// Throws std::invalid_argument "FIELD: 'TEXT' …why…; expected HOST:PORT like
// 127.0.0.1:4700" — `field` names where the text came from (an option, a
// file's key).
HostPort parse_host_port(std::string_view text, std::string_view field, PortUse use);

// 127.0.0.0/8, ::1 or "localhost".
bool is_loopback(std::string_view host);

}  // namespace visorlab::net
