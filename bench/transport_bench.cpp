// transport_bench: the TCP-backed channel between two processes on loopback
// against raw TCP and CAF 0.17 remote actors doing the same work (DESIGN.md
// targets: stream >= 0.8x raw TCP, p50 RTT within 1.25x of raw TCP ping-pong
// (ratio >= 0.8), >= 10x CAF, 4 KiB data writes >= 0.8x raw TCP).
//
// The guest end serves in this process (pinned to the first CPU), the service
// end attaches from a forked child (pinned to the second), exactly as the
// baselines place their two processes: on this VM pinning alone moves raw TCP
// figures 2-3x, so both sides must share it.
//
// As root (and with iproute2), every line is measured a second time with the
// two processes in two network namespaces joined by a veth pair — "two hosts"
// of one kernel — named with a _netns suffix; --no-netns skips them.
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <memory>
#include <optional>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "bench/bench_harness.hpp"
#include "bench/netns_pair.hpp"
#include "bench/transport_baselines.hpp"
#include "channel/tcp/tcp_endpoint.hpp"

namespace {

using namespace visorlab::bench;
namespace ch = visorlab::channel;
namespace tcp = visorlab::channel::tcp;

constexpr std::uint32_t kCmd = 0, kRsp = 1;
constexpr std::size_t kSignal = 64;
constexpr std::uint32_t kDataBuffers = 512;  // > 2x queue capacity: a buffer is never reused while read
constexpr std::size_t kChunk = 4096;
const tcp::QueueProducers kProducers = {tcp::Side::guest, tcp::Side::service};

struct Signal {
  std::uint64_t seq;
  std::uint8_t pad[kSignal - 8];
};

ch::ChannelSpec spec(std::uint32_t slots, std::uint64_t data_bytes = 0) {
  ch::ChannelSpec s;
  s.queues = {{kSignal, slots}, {kSignal, slots}};
  s.min_size = ch::channel_size(s) + data_bytes;
  return s;
}

std::uint64_t data_offset(const ch::ChannelSpec& s) {
  ch::ChannelSpec no_data = s;
  no_data.min_size = 0;
  return ch::channel_size(no_data);
}

// Parent/child plumbing: a socketpair carries "ready" and the child's finish
// time; the child dies with us and leaves by _exit. It first enters its host
// (host.enter_child_host: another network namespace), as the baselines' do.
class Peer {
 public:
  template <typename Fn>
  Peer(const BaselineHost& host, Fn child_main) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) != 0) fail("socketpair");
    pid_ = fork();
    if (pid_ < 0) fail("fork");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(fds_[0]);
      on_fail = nullptr;  // the parent's hook (kill its child) is not ours
      int code = 1;
      try {
        if (host.enter_child_host) host.enter_child_host();
        pin_self(1);
        code = child_main(*this);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "transport_bench child: %s\n", e.what());
      }
      _exit(code);
    }
    close(fds_[1]);
    on_fail = [pid = pid_] { kill(pid, SIGKILL); };
  }
  ~Peer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(fds_[0]);
    on_fail = nullptr;
  }
  void put(std::int64_t v) { (void)!send(fds_[1], &v, sizeof v, MSG_NOSIGNAL); }  // child side
  std::int64_t get(const char* what) {                                           // parent side
    std::int64_t v = 0;
    timeval tv{20, 0};
    setsockopt(fds_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (recv(fds_[0], &v, sizeof v, MSG_WAITALL) != sizeof v) fail(std::string("child did not report ") + what);
    return v;
  }
  void finish() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("service child failed");
  }

 private:
  int fds_[2] = {-1, -1};
  pid_t pid_ = -1;
};

std::unique_ptr<tcp::TcpEndpoint> serve(const ch::ChannelSpec& s, const BaselineHost& host) {
  return tcp::TcpEndpoint::serve({host.server_addr, 0}, "bench", s, tcp::Side::guest, kProducers);
}

std::unique_ptr<tcp::TcpEndpoint> attach(const tcp::Address& at) {
  return tcp::TcpEndpoint::attach(at, "bench", ch::Expect{.queue_count = 2}, tcp::Side::service, kProducers);
}

// Signals/s of a one-way stream, `batch` per insert, received and checked in
// the child; the clock runs from the first insert to the child's last remove.
double channel_stream_round(std::uint64_t n, std::size_t batch, const BaselineHost& host) {
  const auto s = spec(1024);
  auto guest = serve(s, host);
  const auto at = guest->address();
  Peer peer(host, [&](Peer& p) {
    auto service = attach(at);
    p.put(1);
    Spinner spin("stream consumer", now_ns() + kBaselineDeadlineNs);
    std::vector<Signal> buf(32);
    for (std::uint64_t got = 0; got < n;) {
      const std::size_t k = service->channel().queue(kCmd).remove_batch(buf.data(), buf.size());
      for (std::size_t i = 0; i < k; ++i)
        if (buf[i].seq != got++) return 3;
      if (k == 0) spin.spin();
    }
    p.put(now_ns());
    return 0;
  });
  peer.get("ready");
  if (!guest->wait_connected(std::chrono::seconds(10))) fail("child never attached");
  std::vector<Signal> out(batch);
  Spinner spin("stream producer", now_ns() + kBaselineDeadlineNs);
  const std::int64_t start = now_ns();
  for (std::uint64_t sent = 0; sent < n;) {
    const std::size_t k = std::min<std::uint64_t>(batch, n - sent);
    for (std::size_t i = 0; i < k; ++i) out[i].seq = sent + i;
    const std::size_t done = guest->channel().queue(kCmd).insert_batch(out.data(), k);
    sent += done;
    if (done == 0) spin.spin();
  }
  const std::int64_t end = peer.get("finish");
  peer.finish();
  return static_cast<double>(n) * 1e9 / static_cast<double>(end - start);
}

// p50 round trip of one signal: guest inserts a command, the child echoes it.
double channel_pingpong_p50_ns(std::uint64_t trips, const BaselineHost& host) {
  const auto s = spec(64);
  auto guest = serve(s, host);
  const auto at = guest->address();
  Peer peer(host, [&](Peer& p) {
    auto service = attach(at);
    p.put(1);
    Spinner spin("echo", now_ns() + kBaselineDeadlineNs);
    Signal sig;
    for (std::uint64_t i = 0; i < trips; ++i) {
      while (service->channel().queue(kCmd).remove(&sig) != 0) spin.spin();
      while (service->channel().queue(kRsp).insert(&sig) != 0) spin.spin();
    }
    return 0;
  });
  peer.get("ready");
  if (!guest->wait_connected(std::chrono::seconds(10))) fail("child never attached");
  std::vector<double> rtt;
  rtt.reserve(trips);
  Spinner spin("pinger", now_ns() + kBaselineDeadlineNs);
  Signal sig{};
  for (std::uint64_t i = 0; i < trips; ++i) {
    sig.seq = i;
    const std::int64_t t0 = now_ns();
    while (guest->channel().queue(kCmd).insert(&sig) != 0) spin.spin();
    while (guest->channel().queue(kRsp).remove(&sig) != 0) spin.spin();
    rtt.push_back(static_cast<double>(now_ns() - t0));
    if (sig.seq != i) fail("pong for the wrong ping");
  }
  peer.finish();
  return median(rtt);
}

// Bytes/s of 4 KiB data-area writes, each announced by a signal that names its
// buffer; the child reads every buffer and checks its first 8 bytes.
double channel_bytes_round(std::uint64_t total, const BaselineHost& host) {
  const auto s = spec(256, std::uint64_t{kDataBuffers} * kChunk);
  const std::uint64_t data_at = data_offset(s);
  const std::uint64_t chunks = total / kChunk;
  auto guest = serve(s, host);
  const auto at = guest->address();
  Peer peer(host, [&](Peer& p) {
    auto service = attach(at);
    p.put(1);
    Spinner spin("bytes consumer", now_ns() + kBaselineDeadlineNs);
    Signal sig;
    std::vector<std::byte> chunk(kChunk);
    for (std::uint64_t i = 0; i < chunks; ++i) {
      while (service->channel().queue(kCmd).remove(&sig) != 0) spin.spin();
      if (sig.seq != i) return 3;
      if (service->channel().read(data_at + (i % kDataBuffers) * kChunk, chunk.data(), kChunk) != 0) return 4;
      std::uint64_t tag;
      std::memcpy(&tag, chunk.data(), 8);
      if (tag != i) return 5;
    }
    p.put(now_ns());
    return 0;
  });
  peer.get("ready");
  if (!guest->wait_connected(std::chrono::seconds(10))) fail("child never attached");
  std::vector<std::byte> chunk(kChunk, std::byte{0x5A});
  Spinner spin("bytes producer", now_ns() + kBaselineDeadlineNs);
  Signal sig{};
  const std::int64_t start = now_ns();
  for (std::uint64_t i = 0; i < chunks; ++i) {
    std::memcpy(chunk.data(), &i, 8);
    if (guest->channel().write(data_at + (i % kDataBuffers) * kChunk, chunk.data(), kChunk) != 0) fail("data write");
    sig.seq = i;
    while (guest->channel().queue(kCmd).insert(&sig) != 0) spin.spin();
  }
  const std::int64_t end = peer.get("finish");
  peer.finish();
  return static_cast<double>(chunks * kChunk) * 1e9 / static_cast<double>(end - start);
}

constexpr const char* kUsage =
    "usage: transport_bench [--json] [--rounds N] [--signals N] [--only NAME] [--no-netns] [--verbose] [--no-pin]\n"
    "  --json        one JSON object per line (DESIGN.md contract)\n"
    "  --rounds N    interleaved baseline/candidate rounds, median reported (default 5)\n"
    "  --signals N   signals per stream round (default 1000000; ping-pong N/200 trips,\n"
    "                CAF and unbatched streams N/10 messages, bytes N*64)\n"
    "  --only NAME   run only benchmarks whose name contains NAME\n"
    "  --no-netns    skip the *_netns lines (two network namespaces joined by a veth\n"
    "                pair; made only when running as root with iproute2)\n";

// Work per round, from --signals N.
struct Counts {
  std::uint64_t n, trips, messages, bytes;
  static Counts of(std::uint64_t n) {
    return {n, std::max<std::uint64_t>(100, n / 200), std::max<std::uint64_t>(1000, n / 10),
            std::max<std::uint64_t>(1 << 20, n * 64)};
  }
};

// The five lines for one placement of the two processes: `host` says where
// the parent listens and where the child goes; with `pair`, each round runs
// with this thread (and so the threads and children it starts) in side a.
void add_benches(std::vector<Bench>& out, const Counts& c, const std::string& suffix, const BaselineHost& host,
                 const NetnsPair* pair) {
  const auto placed = [pair](std::function<double()> round) {
    return [pair, round = std::move(round)] {
      std::optional<NetnsPair::InSideA> inside;
      if (pair) inside.emplace(*pair);
      return round();
    };
  };
  const auto add = [&](Metric m, std::function<double()> baseline, std::function<double()> candidate) {
    m.name += suffix;
    out.push_back({std::move(m), placed(std::move(baseline)), placed(std::move(candidate))});
  };
  add({"transport_stream_batch32", "signals/s", "raw_tcp_batch32", true, 0.8},
      [=] { return raw_tcp_stream_round(c.n, 32, host); }, [=] { return channel_stream_round(c.n, 32, host); });
  add({"transport_stream_single", "signals/s", "raw_tcp_batch1", true, 0.8},
      [=] { return raw_tcp_stream_round(c.messages, 1, host); },
      [=] { return channel_stream_round(c.messages, 1, host); });
  add({"transport_pingpong_p50", "ns", "raw_tcp_nodelay_pingpong", false, 0.8},
      [=] { return raw_tcp_pingpong_rtt_ns(c.trips, host); }, [=] { return channel_pingpong_p50_ns(c.trips, host); });
  // The same stream of 64-byte signals, each side using its API as meant:
  // the channel inserts in batches, CAF sends one message per signal (and
  // batches in its middleman).
  add({"transport_vs_caf", "signals/s", "caf_0.17_remote_actor", true, 10.0},
      [=] { return caf_remote_stream_round(c.messages, host); },
      [=] { return channel_stream_round(c.messages, 32, host); });
  add({"transport_bytes_4k", "bytes/s", "raw_tcp_4k_writes", true, 0.8},
      [=] { return raw_tcp_bytes_round(c.bytes, kChunk, host); }, [=] { return channel_bytes_round(c.bytes, host); });
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  bool netns = true;
  try {
    opt = parse_options(argc, argv, kUsage, {{"--no-netns", false, [&](const char*) { netns = false; }}});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transport_bench: %s\n", e.what());
    return 64;
  }
  std::signal(SIGPIPE, SIG_IGN);
  // stdout carries only the contract's JSON lines: the TCP channel's log
  // (e.g. "send failed: Broken pipe" when a finished peer has gone) goes to stderr.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("transport_bench"));
  pin_self(0);
  const std::uint64_t n = opt.signals ? opt.signals : 1'000'000;
  const Counts counts = Counts::of(n);
  // Across the veth pair everything costs more per packet (measured: unbatched
  // raw TCP 4x slower than on loopback): half the work per round keeps rounds
  // about as long as on loopback and the default run under 2 minutes.
  const Counts netns_counts = Counts::of(std::max<std::uint64_t>(n / 2, 1));

  std::vector<Bench> benches;
  add_benches(benches, counts, "", BaselineHost{}, nullptr);

  // The namespaces are made only if a _netns line is going to run.
  std::unique_ptr<NetnsPair> pair;
  const bool wanted = netns && std::any_of(benches.begin(), benches.end(), [&](const Bench& b) {
                        return opt.only.empty() || (b.metric.name + "_netns").find(opt.only) != std::string::npos;
                      });
  if (wanted) {
    if (const std::string why = NetnsPair::unavailable_reason(); !why.empty()) {
      std::fprintf(stderr, "transport_bench: note: no _netns lines (%s)\n", why.c_str());
    } else {
      try {
        pair = std::make_unique<NetnsPair>();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "transport_bench: warning: no _netns lines: could not create network namespaces: %s\n",
                     e.what());
      }
    }
  }
  if (pair) add_benches(benches, netns_counts, "_netns", BaselineHost{pair->address_a(), pair->enter_b()}, pair.get());
  return run_benches("transport_bench", opt, benches);
}
