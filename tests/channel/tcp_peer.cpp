// The service end of TCP-backed test channels, as a program of its own: the
// tests start it with fork and exec, never fork alone — a child forked from
// a threaded test may inherit a lock another thread held (AddressSanitizer's
// allocator did: every thread the child started then hung).
//
//   channel_tcp_peer [--detect-ms N] [--idle-beat-ms N] [--idle-after-ms N]
//                    [--first K] [--echo N|forever] [--then stall|exit]
//                    HOST:PORT NAME [HOST:PORT NAME ...]
//
// Attaches to every channel, echoes N commands numbered from K on the last
// one (or every command, forever), then sits until killed (stall) or exits.
// Exit: 0 done, 1 a signal out of order or torn, 2 timed out, 3 attach
// failed, 4 bad arguments.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/channel/two_queue_channel.hpp"

using namespace visorlab::test::two_queue;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  tcp::LinkOptions options;
  std::uint64_t first = 0;
  long count = 0;  // < 0: forever
  bool stall = true;
  std::vector<std::pair<tcp::Address, std::string>> channels;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
        return argv[++i];
      };
      if (arg == "--detect-ms") options.detect_timeout = std::chrono::milliseconds(std::stol(value()));
      else if (arg == "--idle-beat-ms") options.idle_heartbeat_interval = std::chrono::milliseconds(std::stol(value()));
      else if (arg == "--idle-after-ms") options.idle_after = std::chrono::milliseconds(std::stol(value()));
      else if (arg == "--first") first = std::stoull(value());
      else if (arg == "--echo") {
        const std::string v = value();
        count = v == "forever" ? -1 : std::stol(v);
      } else if (arg == "--then") stall = value() == "stall";
      else {
        const auto colon = arg.rfind(':');
        if (colon == std::string::npos || i + 1 >= argc) throw std::invalid_argument("expected HOST:PORT NAME, got " + arg);
        channels.push_back({{arg.substr(0, colon), static_cast<std::uint16_t>(std::stoul(arg.substr(colon + 1)))}, argv[++i]});
      }
    }
    if (channels.empty()) throw std::invalid_argument("no channel to attach to");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "channel_tcp_peer: %s\n", e.what());
    return 4;
  }
  std::vector<std::unique_ptr<tcp::TcpEndpoint>> ends;
  try {
    for (const auto& [address, name] : channels)
      ends.push_back(tcp::TcpEndpoint::attach(address, name, expect(), tcp::Side::service, kProducers, options));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "channel_tcp_peer: %s\n", e.what());
    return 3;
  }
  ch::Channel& last = ends.back()->channel();
  if (count < 0) {
    // Every command back, polling once a millisecond (the tests measure the
    // link threads' wake-ups, not ours).
    Signal s;
    for (;;) {
      if (last.queue(kCmd).remove(&s) == 0) {
        while (last.queue(kRsp).insert(&s) != 0) std::this_thread::sleep_for(1ms);
      } else {
        std::this_thread::sleep_for(1ms);
      }
    }
  }
  if (const int code = echo(last, first, static_cast<std::uint64_t>(count), Clock::now() + 30s); code != 0) return code;
  if (stall)
    for (;;) pause();
  std::this_thread::sleep_for(100ms);  // let the last index leave
  return 0;
}
