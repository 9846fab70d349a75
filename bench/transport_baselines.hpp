// Baselines for transport_bench (DESIGN.md "Targets": the TCP-backed channel
// must reach >= 0.8x raw TCP throughput, a p50 RTT <= 1.25x raw TCP
// ping-pong, and >= 10x CAF remote messaging). Each function runs ONE measured
// round — measure() in bench_harness.hpp does the warm-up, the interleaving
// with the candidate and the median — with its peer in a forked child process.
//
// Shared rules of every round:
//  * The parent (the calling process) listens on host.server_addr, port 0, and
//    the child dials it; the child runs host.enter_child_host right after fork
//    (e.g. setns() into another network namespace), before any network use.
//  * Connection set-up is not timed: the child says "ready" over a
//    control socket (AF_UNIX socketpair) first.
//  * Throughput clocks run from the first send to the receiver's last byte,
//    both CLOCK_MONOTONIC (now_ns()), the receiver reporting its time over a
//    control socket — valid across processes (and network namespaces) of one kernel.
//  * Every loop is bounded by its count and by kBaselineDeadlineNs; a timeout,
//    a dead child or wrong data calls fail() (child killed first, exit 2).
//  * The child pins itself to the second usable CPU (pin_self(1)); pinning the
//    parent is the caller's business, as in channel_bench (pin_self(0) in main).
//  * Call from a single-threaded moment of the process (between rounds): the
//    rounds fork, and the child must not inherit locks held by other threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace visorlab::bench {

// Where the two processes of a round live.
struct BaselineHost {
  // Numeric address (or name) the parent binds and listens on (ephemeral
  // port); the child connects to exactly the address the parent bound. With
  // netns, it must be an address of the parent's namespace reachable from the
  // child's.
  std::string server_addr = "127.0.0.1";
  // Runs in the child right after fork (before pinning and any socket). May
  // throw; the child then exits and the parent fails the round.
  std::function<void()> enter_child_host;
};

inline constexpr std::size_t kBaselineSignalSize = 64;            // one s-Par signal
inline constexpr std::int64_t kBaselineDeadlineNs = 20'000'000'000;  // per round

// Streams `signals` 64-byte signals (sequence number in the first 8 bytes,
// little-endian) from parent to child over TCP with TCP_NODELAY, `batch`
// signals per send() (1 = one send per signal). The child reads with a 64 KiB
// buffer and checks the order. Returns signals/s.
double raw_tcp_stream_round(std::uint64_t signals, std::size_t batch, const BaselineHost& host = {});

// One 64-byte message bounced by the child, `trips` times, over blocking
// TCP_NODELAY sockets; every trip is timed separately.
struct RttStats {
  double p50_ns;
  double mean_ns;
  double p99_ns;
};
RttStats raw_tcp_pingpong_stats(std::uint64_t trips, const BaselineHost& host = {});
// The p50 of raw_tcp_pingpong_stats (the Targets line is about p50 RTT).
double raw_tcp_pingpong_rtt_ns(std::uint64_t trips, const BaselineHost& host = {});

// Streams `total_bytes` in send() calls of `chunk` bytes (each chunk starts
// with its 8-byte index, which the child checks). Returns bytes/s.
double raw_tcp_bytes_round(std::uint64_t total_bytes, std::size_t chunk = 4096, const BaselineHost& host = {});

// CAF 0.17 remote messaging: the parent's actor system publishes a counting
// actor; the child's actor system connects with remote_actor and sends
// `messages` one-way messages (uint64_t seq, std::vector<char> of 64 bytes
// whose first 8 bytes repeat seq). Timed from the child's first send to the
// arrival of the last message at the counter. Returns messages/s. CAF manages
// about 1e5-1e6 messages/s here; keep counts in the 1e4-1e5 range.
double caf_remote_stream_round(std::uint64_t messages, const BaselineHost& host = {});

}  // namespace visorlab::bench
