// A plain HTTP/1.1 GET on loopback, for benches that watch a daemon's
// /metrics: the body, or nullopt if the daemon does not answer 200.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace visorlab::bench {

std::optional<std::string> http_get(std::uint16_t port, const std::string& path);

}  // namespace visorlab::bench
