// channel_bench: visorlab signal queues against boost::lockfree::spsc_queue
// (DESIGN.md "Benchmarks" and "Targets"). Four lines:
//   channel_throughput_inprocess     two threads, one queue      vs boost spsc_queue
//   channel_throughput_crossprocess  consumer in a forked child  vs visorlab in-process
//   channel_pingpong_rtt             one signal bounced, 2 queues vs two boost spsc_queues
//   channel_batch32                  insert_batch/remove_batch 32 vs single insert/remove
// Both sides use 64-byte signals, 1023 usable slots, the same loops (templated
// over a queue adapter) and the same spin step, so only the queue differs.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <thread>

#include <boost/lockfree/spsc_queue.hpp>

#include "bench/bench_harness.hpp"
#include "channel/channel.hpp"

namespace vc = visorlab::channel;
using namespace visorlab::bench;

namespace {

constexpr std::uint32_t kSignalSize = 64;
constexpr std::uint32_t kMaxSlots = 1024;  // visorlab capacity = max_slots - 1 = 1023
constexpr std::size_t kCapacity = kMaxSlots - 1;
constexpr std::size_t kBatch = 32;

// Sized so a default round takes ~0.1-0.5 s on the 2-core KVM machine, whose
// cross-core speed varies about 3x with where the host places the vCPUs:
// 1.5-16 M signals/s streamed, 0.26-3 us per round trip (docs/benchmarks.md).
// A round trip costs about as much as 4-5 streamed signals, hence the divisor.
constexpr std::uint64_t kDefaultSignals = 1'500'000;
constexpr std::uint64_t kTripDivisor = 5;

// A numbered signal. 64-aligned like a channel slot, so boost's slots do not
// straddle cache lines either.
struct alignas(64) Signal {
  std::uint64_t seq;
  std::byte pad[56];
};
static_assert(sizeof(Signal) == kSignalSize);

// Compile-time capacity: boost's fastest configuration (constant modulus, no
// buffer pointer), 1023 usable slots like the channel queue.
using BoostQueue = boost::lockfree::spsc_queue<Signal, boost::lockfree::capacity<kCapacity>>;

// One end of a queue as the shared loops see it: try once, say whether it worked.
struct VisorlabEnd {
  vc::SignalQueue* q;
  bool try_push(const Signal& s) {
    const int r = q->insert(&s);
    if (r == 0) return true;
    if (r != -EIO) fail("insert returned " + std::to_string(r));
    return false;
  }
  bool try_pop(Signal& s) {
    const int r = q->remove(&s);
    if (r == 0) return true;
    if (r != -EAGAIN) fail("remove returned " + std::to_string(r));
    return false;
  }
};

struct BoostEnd {
  BoostQueue* q;
  bool try_push(const Signal& s) { return q->push(s); }
  bool try_pop(Signal& s) { return q->pop(s); }
};

// A boost queue in the same kind of memory as a channel: a fresh, pre-faulted
// memfd mapping per round. From the heap, boost would get the same recycled
// pages every round while each channel got new ones, and on this VM the cost
// of moving a line between cores varies with the physical page (visorlab's
// ping-pong moved between ~280 and ~310 ns per round with fresh pages, boost's
// stayed put), so the two sides would not be sampled alike.
class BoostQueueMemory {
 public:
  BoostQueueMemory() : mapping_(vc::Region::anonymous(sizeof(BoostQueue)).map()) {
    std::memset(mapping_.bytes().data(), 0, mapping_.bytes().size());  // fault in, as format() does
    queue_ = new (mapping_.bytes().data()) BoostQueue();  // mmap is page-aligned
  }
  BoostQueueMemory(const BoostQueueMemory&) = delete;
  BoostQueueMemory& operator=(const BoostQueueMemory&) = delete;
  ~BoostQueueMemory() { queue_->~BoostQueue(); }
  BoostQueue* get() const { return queue_; }

 private:
  vc::Mapping mapping_;
  BoostQueue* queue_;
};

vc::ChannelSpec spec_for(std::size_t queues) {
  vc::ChannelSpec spec;  // null type GUID: the bench channel is of no known type
  spec.queues.assign(queues, vc::QueueSpec{kSignalSize, kMaxSlots});
  return spec;
}

// Process memory (memfd), as an in-process pair of endpoints would use.
vc::Channel inprocess_channel(std::size_t queues) {
  const auto spec = spec_for(queues);
  const auto region = vc::Region::anonymous(vc::size_with_doorbell(vc::channel_size(spec)));
  return vc::Channel::format(region.map(), spec);  // the mapping outlives the fd
}

double per_second(std::uint64_t n, std::int64_t start_ns, std::int64_t end_ns) {
  if (end_ns <= start_ns) fail("clock did not advance during a round");
  return static_cast<double>(n) * 1e9 / static_cast<double>(end_ns - start_ns);
}

// ---- producer / consumer loops shared by every throughput round -------------

template <class End>
void produce(End end, std::uint64_t n, std::int64_t deadline) {
  Spinner spinner("producer", deadline);
  Signal s{};
  for (std::uint64_t i = 0; i < n; ++i) {
    s.seq = i;
    while (!end.try_push(s)) spinner.spin();
  }
}

// Returns when the last signal arrived (now_ns), checking order on the way.
template <class End>
std::int64_t consume(End end, std::uint64_t n, std::int64_t deadline) {
  Spinner spinner("consumer", deadline);
  Signal s;
  for (std::uint64_t i = 0; i < n; ++i) {
    while (!end.try_pop(s)) spinner.spin();
    if (s.seq != i) fail("consumer expected signal " + std::to_string(i) + ", got " + std::to_string(s.seq));
  }
  return now_ns();
}

// The consumer thread starts first and says so; the clock starts when the
// producer begins and stops when the consumer has the last signal, so thread
// start-up and join are not timed. Worker lambdas take their loop state by
// value, so no hot loop reads through a pointer into the other thread's stack;
// only the start flag and the finish time are shared.
template <class End>
double throughput_round(End producer, End consumer, std::uint64_t n) {
  const std::int64_t deadline = now_ns() + kRoundDeadlineNs;
  std::atomic<bool> ready{false};
  std::int64_t end_ns = 0;
  std::thread t([consumer, n, deadline, &ready, &end_ns] {
    pin_self(1);
    ready.store(true, std::memory_order_release);
    end_ns = consume(consumer, n, deadline);
  });
  Spinner barrier("start barrier", deadline);
  while (!ready.load(std::memory_order_acquire)) barrier.spin();
  const std::int64_t start_ns = now_ns();
  produce(producer, n, deadline);
  t.join();
  return per_second(n, start_ns, end_ns);
}

double visorlab_inprocess_round(std::uint64_t n) {
  auto channel = inprocess_channel(1);
  VisorlabEnd end{&channel.queue(0)};
  return throughput_round(end, end, n);
}

double boost_inprocess_round(std::uint64_t n) {
  BoostQueueMemory q;
  BoostEnd end{q.get()};
  return throughput_round(end, end, n);
}

// ---- cross-process ------------------------------------------------------------

// Child -> parent messages over a pipe: 'R' (attached, spinning), 'D' + the
// monotonic time the last signal arrived. 9 bytes < PIPE_BUF, so atomic.
constexpr std::size_t kMessageSize = 1 + sizeof(std::int64_t);

void send_message(int fd, char tag, std::int64_t ns) {
  char buf[kMessageSize];
  buf[0] = tag;
  std::memcpy(buf + 1, &ns, sizeof ns);
  if (write(fd, buf, sizeof buf) != static_cast<ssize_t>(sizeof buf)) fail("child: write to pipe");
}

std::int64_t receive_message(int fd, char tag, std::int64_t deadline) {
  char buf[kMessageSize];
  std::size_t got = 0;
  while (got < sizeof buf) {
    const std::int64_t left_ms = (deadline - now_ns()) / 1'000'000;
    if (left_ms <= 0) fail(std::string("no '") + tag + "' from the consumer child before the deadline");
    pollfd p{fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(left_ms));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("poll on child pipe: " + std::string(std::strerror(errno)));
    if (r == 0) continue;  // timed out: the loop re-checks the deadline
    const ssize_t n = read(fd, buf + got, sizeof buf - got);
    if (n == 0) fail(std::string("consumer child closed its pipe before sending '") + tag + "' (it failed)");
    if (n < 0 && errno != EINTR) fail("read child pipe: " + std::string(std::strerror(errno)));
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  if (buf[0] != tag) fail(std::string("consumer child sent '") + buf[0] + "', expected '" + tag + "'");
  std::int64_t ns;
  std::memcpy(&ns, buf + 1, sizeof ns);
  return ns;
}

// The forked consumer: finds the channel by name only, as a separate driver
// process would, and validates it on attach.
[[noreturn]] void consumer_child(const std::string& name, std::uint64_t n, int fd) {
  on_fail = nullptr;  // the parent's hook (kill the child, unlink) is not ours
  pin_self(1);        // we inherited the parent's (producer's) CPU
  try {
    const auto region = vc::Region::open_shared(name);
    vc::Expect expect;
    expect.queue_count = 1;
    expect.signal_size = kSignalSize;
    auto channel = vc::Channel::attach(region.map(), expect);
    const std::int64_t deadline = now_ns() + kRoundDeadlineNs;
    send_message(fd, 'R', 0);
    const std::int64_t end_ns = consume(VisorlabEnd{&channel.queue(0)}, n, deadline);
    send_message(fd, 'D', end_ns);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench: consumer child: %s\n", e.what());
    _exit(3);
  }
  _exit(0);  // no atexit handlers or stdio flushing: those belong to the parent
}

double visorlab_crossprocess_round(std::uint64_t n) {
  static int round_number = 0;
  const std::string name =
      "visorlab-bench-" + std::to_string(getpid()) + "-" + std::to_string(round_number++);
  const auto spec = spec_for(1);
  auto region = vc::Region::create_shared(name, vc::size_with_doorbell(vc::channel_size(spec)));
  auto channel = vc::Channel::format(region.map(), spec);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) fail("pipe2: " + std::string(std::strerror(errno)));
  std::fflush(nullptr);  // the child must not inherit unflushed output
  // Forking is safe here: the previous round's threads are joined, so the
  // child cannot inherit a lock held by another thread.
  const pid_t pid = fork();
  if (pid < 0) fail("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    close(fds[0]);
    consumer_child(name, n, fds[1]);
  }
  close(fds[1]);
  on_fail = [pid, name] {
    kill(pid, SIGKILL);
    shm_unlink(("/" + name).c_str());
  };

  const std::int64_t deadline = now_ns() + kRoundDeadlineNs;
  receive_message(fds[0], 'R', deadline);
  region.unlink();  // the child has mapped it; the name must not outlive us
  const std::int64_t start_ns = now_ns();
  produce(VisorlabEnd{&channel.queue(0)}, n, deadline);
  const std::int64_t end_ns = receive_message(fds[0], 'D', deadline);
  close(fds[0]);

  int status = 0;
  if (waitpid(pid, &status, 0) != pid) fail("waitpid: " + std::string(std::strerror(errno)));
  on_fail = nullptr;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail("consumer child exited abnormally (status " + std::to_string(status) + ")");
  return per_second(n, start_ns, end_ns);
}

// ---- ping-pong ------------------------------------------------------------------

// One signal in flight: the main thread sends on `ping` and waits on `pong`;
// the echo thread sends back whatever arrives. Returns the mean round trip of
// the round in ns (the reported figure is the median over rounds): timing each
// trip separately would add two clock reads (~40 ns) to a ~100-300 ns trip.
template <class End>
double pingpong_round(End ping_tx, End ping_rx, End pong_tx, End pong_rx, std::uint64_t trips) {
  const std::int64_t deadline = now_ns() + kRoundDeadlineNs;
  std::atomic<bool> ready{false};
  std::thread echo([ping_rx, pong_tx, trips, deadline, &ready]() mutable {
    pin_self(1);
    Spinner spinner("echo", deadline);
    ready.store(true, std::memory_order_release);
    Signal s;
    for (std::uint64_t i = 0; i < trips; ++i) {
      while (!ping_rx.try_pop(s)) spinner.spin();
      while (!pong_tx.try_push(s)) spinner.spin();
    }
  });
  Spinner spinner("pinger", deadline);
  while (!ready.load(std::memory_order_acquire)) spinner.spin();
  Signal s{};
  const std::int64_t start_ns = now_ns();
  for (std::uint64_t i = 0; i < trips; ++i) {
    s.seq = i;
    while (!ping_tx.try_push(s)) spinner.spin();
    while (!pong_rx.try_pop(s)) spinner.spin();
    if (s.seq != i) fail("pong " + std::to_string(s.seq) + " for ping " + std::to_string(i));
  }
  const std::int64_t end_ns = now_ns();
  echo.join();
  return static_cast<double>(end_ns - start_ns) / static_cast<double>(trips);
}

double visorlab_pingpong_round(std::uint64_t trips) {
  auto channel = inprocess_channel(2);
  VisorlabEnd ping{&channel.queue(0)}, pong{&channel.queue(1)};
  return pingpong_round(ping, ping, pong, pong, trips);
}

double boost_pingpong_round(std::uint64_t trips) {
  BoostQueueMemory ping_q, pong_q;
  BoostEnd ping{ping_q.get()}, pong{pong_q.get()};
  return pingpong_round(ping, ping, pong, pong, trips);
}

// ---- batches --------------------------------------------------------------------

// Like throughput_round, but moving up to 32 signals per call; a partial
// insert (queue nearly full) resubmits the rest.
double visorlab_batch_round(std::uint64_t n) {
  auto channel = inprocess_channel(1);
  vc::SignalQueue& q = channel.queue(0);
  const std::int64_t deadline = now_ns() + kRoundDeadlineNs;
  std::atomic<bool> ready{false};
  std::int64_t end_ns = 0;
  std::thread consumer([&q, n, deadline, &ready, &end_ns] {
    pin_self(1);
    Spinner spinner("batch consumer", deadline);
    ready.store(true, std::memory_order_release);
    Signal buf[kBatch];
    for (std::uint64_t expected = 0; expected < n;) {
      int status = 0;
      const std::size_t got = q.remove_batch(buf, std::min<std::uint64_t>(kBatch, n - expected), &status);
      if (got == 0) {
        if (status != -EAGAIN) fail("remove_batch status " + std::to_string(status));
        spinner.spin();
        continue;
      }
      for (std::size_t j = 0; j < got; ++j, ++expected)
        if (buf[j].seq != expected)
          fail("batch consumer expected " + std::to_string(expected) + ", got " + std::to_string(buf[j].seq));
    }
    end_ns = now_ns();
  });
  Spinner spinner("batch producer", deadline);
  while (!ready.load(std::memory_order_acquire)) spinner.spin();
  Signal buf[kBatch]{};
  const std::int64_t start_ns = now_ns();
  for (std::uint64_t sent = 0; sent < n;) {
    const std::size_t k = std::min<std::uint64_t>(kBatch, n - sent);
    for (std::size_t j = 0; j < k; ++j) buf[j].seq = sent + j;
    for (std::size_t off = 0; off < k;) {
      int status = 0;
      off += q.insert_batch(buf + off, k - off, &status);
      if (off < k) {
        if (status != -EIO) fail("insert_batch status " + std::to_string(status));
        spinner.spin();
      }
    }
    sent += k;
  }
  consumer.join();
  return per_second(n, start_ns, end_ns);
}

constexpr const char* kUsage =
    "usage: channel_bench [--json] [--rounds N] [--signals N] [--only NAME] [--verbose] [--no-pin]\n"
    "  --json        one JSON object per line (DESIGN.md contract)\n"
    "  --rounds N    interleaved baseline/candidate rounds, median reported (default 5;\n"
    "                fewer only for smoke tests)\n"
    "  --signals N   signals per round (default 1500000); ping-pong makes N/5 round\n"
    "                trips (default 300000)\n"
    "  --only NAME   run only benchmarks whose name contains NAME\n"
    "  --verbose     per-round figures on stderr\n"
    "  --no-pin      leave thread placement to the scheduler (default: producer on\n"
    "                the first usable CPU, consumer on the second)\n";

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  try {
    opt = parse_options(argc, argv, kUsage);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "channel_bench: %s\n", e.what());
    return 64;
  }
  pin_self(0);  // the main thread is always the producer / pinger
  const std::uint64_t n = opt.signals ? opt.signals : kDefaultSignals;
  const std::uint64_t trips = std::max<std::uint64_t>(1, n / kTripDivisor);

  const std::vector<Bench> benches = {
      {{"channel_throughput_inprocess", "signals/s", "boost_spsc_queue", true, 1.0},
       [&] { return boost_inprocess_round(n); }, [&] { return visorlab_inprocess_round(n); }},
      {{"channel_throughput_crossprocess", "signals/s", "visorlab_inprocess", true, 0.9},
       [&] { return visorlab_inprocess_round(n); }, [&] { return visorlab_crossprocess_round(n); }},
      {{"channel_pingpong_rtt", "ns", "boost_spsc_queue", false, 1.0},
       [&] { return boost_pingpong_round(trips); }, [&] { return visorlab_pingpong_round(trips); }},
      {{"channel_batch32", "signals/s", "visorlab_single", true, 1.0},
       [&] { return visorlab_inprocess_round(n); }, [&] { return visorlab_batch_round(n); }},
  };

  return run_benches("channel_bench", opt, benches);
}
