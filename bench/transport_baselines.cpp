// Raw TCP and CAF 0.17 baselines for transport_bench; see transport_baselines.hpp.
#include "bench/transport_baselines.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "bench/bench_harness.hpp"

namespace visorlab::bench {
namespace {

std::string errno_text() { return std::strerror(errno); }

double per_second(std::uint64_t n, std::int64_t start_ns, std::int64_t end_ns) {
  if (end_ns <= start_ns) fail("clock did not advance during a round");
  return static_cast<double>(n) * 1e9 / static_cast<double>(end_ns - start_ns);
}

// Milliseconds left until `deadline` for poll(), at least 1 so a poll made
// just before the deadline still looks once; callers re-check the deadline.
int poll_ms_left(std::int64_t deadline) {
  const std::int64_t ms = (deadline - now_ns()) / 1'000'000;
  return static_cast<int>(std::clamp<std::int64_t>(ms, 1, 60'000));
}

// Owns one file descriptor: every exit path of a round closes what it opened.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// ---- control messages between parent and child ---------------------------------

// A tag byte and an int64 (a time, a port), over an AF_UNIX socketpair rather
// than pipes: send(MSG_NOSIGNAL) turns a write to a dead peer into EPIPE and
// fail() instead of a SIGPIPE that kills the bench without a word.
constexpr std::size_t kMessageSize = 1 + sizeof(std::int64_t);

void send_message(int fd, char tag, std::int64_t value) {
  char buf[kMessageSize];
  buf[0] = tag;
  std::memcpy(buf + 1, &value, sizeof value);
  ssize_t n;
  do n = ::send(fd, buf, sizeof buf, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof buf)) fail(std::string("send '") + tag + "' to the peer process: " + errno_text());
}

// Waits for `fd` to be readable until the deadline; false on timeout.
bool wait_readable(int fd, std::int64_t deadline) {
  while (now_ns() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, poll_ms_left(deadline));
    if (r < 0 && errno != EINTR) fail("poll: " + errno_text());
    if (r > 0) return true;  // data, EOF (POLLHUP) or error: the read says which
  }
  return false;
}

std::int64_t receive_message(int fd, char tag, std::int64_t deadline, const char* peer) {
  char buf[kMessageSize];
  std::size_t got = 0;
  while (got < sizeof buf) {
    if (!wait_readable(fd, deadline)) fail(std::string("no '") + tag + "' from the " + peer + " before the deadline");
    const ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n == 0) fail(std::string("the ") + peer + " exited before sending '" + tag + "' (it failed)");
    if (n < 0 && errno != EINTR) fail(std::string("read control socket from the ") + peer + ": " + errno_text());
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  if (buf[0] != tag) fail(std::string("the ") + peer + " sent '" + buf[0] + "', expected '" + tag + "'");
  std::int64_t value;
  std::memcpy(&value, buf + 1, sizeof value);
  return value;
}

// Waits until the other end of the control socket is closed or shut down (the
// peer exited or let us go).
void wait_eof(int fd, std::int64_t deadline, const char* what) {
  for (;;) {
    if (!wait_readable(fd, deadline)) fail(std::string(what) + ": still open at the deadline");
    char c;
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 0) return;
    if (n > 0) fail(std::string(what) + ": unexpected data '" + c + "'");
    if (errno != EINTR) fail(std::string(what) + ": read: " + errno_text());
  }
}

// ---- the forked peer ------------------------------------------------------------

// One child process per round and a control socket to it (child -> parent:
// ready, times; parent -> child: a port; the parent shutting down its sending
// side means "exit"). While it lives, fail() in the parent kills the child
// first.
class Peer {
 public:
  // Runs in the child with its end of the control socket.
  using Body = std::function<void(int control)>;

  // Forks; the child runs host.enter_child_host, then body, then _exit(0).
  // `close_in_child`: parent fds the child has no business holding.
  Peer(const char* name, const BaselineHost& host, const Body& body, std::initializer_list<int> close_in_child = {})
      : name_(name) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair: " + errno_text());
    std::fflush(nullptr);  // the child must not inherit unflushed output
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) fail("fork: " + errno_text());
    if (pid_ == 0) {
      ::close(sv[0]);
      for (const int fd : close_in_child) ::close(fd);
      run_child(host, body, sv[1], parent);
    }
    ::close(sv[1]);
    control_ = Fd(sv[0]);
    previous_on_fail_ = on_fail;
    on_fail = [pid = pid_, prev = previous_on_fail_] {
      ::kill(pid, SIGKILL);
      if (prev) prev();
    };
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  // Only on abnormal paths (an exception through the round): kill and reap.
  ~Peer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      on_fail = previous_on_fail_;
    }
  }

  int control() const { return control_.get(); }
  std::int64_t expect(char tag, std::int64_t deadline) {
    return receive_message(control_.get(), tag, deadline, name_);
  }

  // Fails if the child has exited or written something unasked (polled while
  // waiting on something else, e.g. a CAF receive).
  void check_alive() {
    pollfd p{control_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) > 0) fail(std::string("the ") + name_ + " exited or wrote unasked (it failed)");
  }

  // Lets the child go (shuts down our sending side), waits for it to exit
  // and checks it exited with 0.
  void finish(std::int64_t deadline) {
    ::shutdown(control_.get(), SHUT_WR);
    wait_eof(control_.get(), deadline, name_);  // the child's end closes when it exits
    control_.reset();
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) fail("waitpid: " + errno_text());
    pid_ = -1;
    on_fail = previous_on_fail_;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail(std::string("the ") + name_ + " exited abnormally (status " + std::to_string(status) + ")");
  }

 private:
  [[noreturn]] static void run_child(const BaselineHost& host, const Body& body, int control, pid_t parent) {
    // Die with the parent: a failed or killed bench leaves no peer behind.
    // The getppid check closes the race with a parent that died before prctl.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) _exit(4);
    on_fail = nullptr;  // the parent's hook (kill its child) is not ours
    try {
      if (host.enter_child_host) host.enter_child_host();
      pin_self(1);  // we inherited the parent's (role 0) CPU
      body(control);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench: baseline child: %s\n", e.what());
      _exit(3);
    } catch (...) {
      std::fprintf(stderr, "bench: baseline child: unknown exception\n");
      _exit(3);
    }
    _exit(0);  // no atexit handlers, no stdio flushing, no CAF shutdown: the parent's business
  }

  const char* name_;
  pid_t pid_ = -1;
  Fd control_;
  std::function<void()> previous_on_fail_;
};

// ---- sockets --------------------------------------------------------------------

struct Listener {
  Fd fd;
  sockaddr_storage addr{};  // the bound address, port included: the child dials it
  socklen_t addr_len = 0;
};

// Binds server_addr, port 0, before the fork, so the child knows where to dial
// without another message.
Listener listen_on(const std::string& server_addr) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (const int e = ::getaddrinfo(server_addr.c_str(), "0", &hints, &res); e != 0)
    fail("resolve '" + server_addr + "': " + ::gai_strerror(e));
  Listener l;
  l.fd = Fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int bind_rc = l.fd.get() < 0 ? -1 : ::bind(l.fd.get(), res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (bind_rc != 0) fail("bind " + server_addr + ": " + errno_text());
  if (::listen(l.fd.get(), 1) != 0) fail("listen: " + errno_text());
  l.addr_len = sizeof l.addr;
  if (::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&l.addr), &l.addr_len) != 0)
    fail("getsockname: " + errno_text());
  return l;
}

// The blocking calls of a round each wait at most until the round's deadline
// (set once per round; the loops also check the clock now and then).
void configure(int fd, std::int64_t deadline) {
  const int one = 1;
  if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail("TCP_NODELAY: " + errno_text());
  const std::int64_t left_us = std::max<std::int64_t>((deadline - now_ns()) / 1000, 1000);
  const timeval tv{static_cast<time_t>(left_us / 1'000'000), static_cast<suseconds_t>(left_us % 1'000'000)};
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
    fail("socket timeouts: " + errno_text());
}

Fd connect_to(const Listener& l, std::int64_t deadline) {
  Fd fd(::socket(l.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) fail("socket: " + errno_text());
  configure(fd.get(), deadline);  // SO_SNDTIMEO also bounds a blocking connect
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&l.addr), l.addr_len) != 0)
    fail("connect: " + errno_text());
  return fd;
}

// Called after the child said 'R' (connected), so the connection already
// waits in the backlog; the poll only guards against surprises.
Fd accept_one(Listener& l, std::int64_t deadline) {
  if (!wait_readable(l.fd.get(), deadline)) fail("no connection from the child before the deadline");
  Fd fd(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (fd.get() < 0) fail("accept: " + errno_text());
  l.fd.reset();  // one connection per round
  configure(fd.get(), deadline);
  return fd;
}

void send_all(int fd, const unsigned char* p, std::size_t n) {
  while (n > 0) {
    // MSG_NOSIGNAL: a dead peer must give EPIPE and fail(), not SIGPIPE.
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) fail("send: timed out at the round deadline");
      fail("send: " + errno_text());
    }
    p += k;
    n -= static_cast<std::size_t>(k);
  }
}

// Returns the byte count read (> 0); fails on EOF, error or timeout.
std::size_t recv_some(int fd, unsigned char* p, std::size_t n) {
  for (;;) {
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k > 0) return static_cast<std::size_t>(k);
    if (k == 0) fail("recv: the peer closed the connection early");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) fail("recv: timed out at the round deadline");
    fail("recv: " + errno_text());
  }
}

void recv_all(int fd, unsigned char* p, std::size_t n) {
  while (n > 0) {
    const std::size_t k = recv_some(fd, p, n);
    p += k;
    n -= k;
  }
}

// After the counted data the peer must close: anything more is wrong data.
void expect_socket_eof(int fd) {
  unsigned char c;
  for (;;) {
    const ssize_t k = ::recv(fd, &c, 1, 0);
    if (k == 0) return;
    if (k > 0) fail("data after the last counted byte");
    if (errno == EINTR) continue;
    fail("waiting for the peer to close: " + errno_text());
  }
}

// ---- streaming ------------------------------------------------------------------

// Checks that the stream is a sequence of `record`-byte records, each
// starting with its 8-byte index. Fed arbitrary slices of the stream, so a
// record (even its index) may straddle two reads.
class SeqChecker {
 public:
  explicit SeqChecker(std::size_t record) : record_(record) {}

  void feed(const unsigned char* p, std::size_t n) {
    while (n > 0) {
      // Fast path: whole records at a record boundary, the common case.
      while (off_ == 0 && n >= record_) {
        check(p);
        p += record_;
        n -= record_;
        ++index_;
      }
      if (n == 0) break;
      std::size_t take;
      if (off_ < sizeof head_) {  // inside the index: collect it
        take = std::min(sizeof head_ - off_, n);
        std::memcpy(head_ + off_, p, take);
        if (off_ + take == sizeof head_) check(head_);
      } else {  // inside the payload: skip it
        take = std::min(record_ - off_, n);
      }
      off_ += take;
      p += take;
      n -= take;
      if (off_ == record_) {
        off_ = 0;
        ++index_;
      }
    }
  }

 private:
  void check(const unsigned char* head) const {
    std::uint64_t seq;
    std::memcpy(&seq, head, sizeof seq);
    if (seq != index_) fail("receiver expected record " + std::to_string(index_) + ", got " + std::to_string(seq));
  }

  std::size_t record_;
  std::size_t off_ = 0;  // bytes of the current record seen so far
  std::uint64_t index_ = 0;
  unsigned char head_[8];
};

constexpr std::size_t kReceiveBuffer = 64 * 1024;

// One streaming round: `total` bytes from parent to child, `per_send` bytes
// per send() call, records of `record` bytes (per_send a multiple of it).
// Returns the elapsed ns from the first send to the child's last byte.
std::int64_t stream_round_ns(std::uint64_t total, std::size_t record, std::size_t per_send, const BaselineHost& host,
                             const char* name) {
  const std::int64_t deadline = now_ns() + kBaselineDeadlineNs;
  Listener listener = listen_on(host.server_addr);
  Peer peer(
      name, host,
      [&](int control) {
        const Fd fd = connect_to(listener, deadline);
        std::vector<unsigned char> buf(kReceiveBuffer);
        SeqChecker checker(record);
        send_message(control, 'R', 0);
        std::uint64_t received = 0;
        for (std::uint64_t reads = 1; received < total; ++reads) {
          const std::size_t n = recv_some(fd.get(), buf.data(), buf.size());
          received += n;
          if (received > total) fail("receiver got more bytes than were sent");
          checker.feed(buf.data(), n);
          // SO_RCVTIMEO bounds each call; this bounds the sum of them.
          if ((reads & 255) == 0 && now_ns() > deadline) fail("receiver: round deadline exceeded");
        }
        send_message(control, 'D', now_ns());
        expect_socket_eof(fd.get());
      },
      {listener.fd.get()});

  peer.expect('R', deadline);
  Fd fd = accept_one(listener, deadline);
  std::vector<unsigned char> buf(per_send, 0);
  std::uint64_t seq = 0, sent = 0;
  const std::int64_t start_ns = now_ns();
  for (std::uint64_t calls = 0; sent < total; ++calls) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(per_send, total - sent));
    for (std::size_t off = 0; off < n; off += record, ++seq)
      std::memcpy(buf.data() + off, &seq, std::min(sizeof seq, n - off));
    send_all(fd.get(), buf.data(), n);
    sent += n;
    if ((calls & 1023) == 1023 && now_ns() > deadline) fail(std::string(name) + ": sender: round deadline exceeded");
  }
  fd.reset();  // EOF after the queued data: the child checks nothing follows
  const std::int64_t end_ns = peer.expect('D', deadline);
  peer.finish(deadline);
  if (end_ns <= start_ns) fail("clock did not advance during a round");
  return end_ns - start_ns;
}

// ---- CAF ------------------------------------------------------------------------

// Atoms of our own (at most 10 characters): counter -> listener reports.
using caf_done_atom = caf::atom_constant<caf::atom("vl_done")>;
using caf_bad_atom = caf::atom_constant<caf::atom("vl_bad")>;

struct CounterState {
  std::uint64_t expected = 0;
};

// Counts (seq, payload) messages in order; reports the arrival time of the
// last one (or the first wrong one) to `listener` and quits — quitting matters:
// ~actor_system waits for every live actor.
caf::behavior caf_counter(caf::stateful_actor<CounterState>* self, std::uint64_t n, caf::actor listener) {
  return {
      [](caf::ping_atom) { return caf::pong_atom_v; },  // the child's warm-up
      [=](std::uint64_t seq, const std::vector<char>& payload) {
        auto& expected = self->state.expected;
        if (seq != expected || payload.size() != kBaselineSignalSize ||
            std::memcmp(payload.data(), &seq, sizeof seq) != 0) {
          self->send(listener, caf_bad_atom::value,
                     "message " + std::to_string(seq) + " (" + std::to_string(payload.size()) + " bytes) where " +
                         std::to_string(expected) + " was due");
          self->quit();
          return;
        }
        if (++expected == n) {
          self->send(listener, caf_done_atom::value, static_cast<std::int64_t>(now_ns()));
          self->quit();
        }
      },
  };
}

// Defaults except for one scheduler worker per usable CPU instead of CAF's
// max(4, cores): more workers than cores never helped on the 2-core VM (A/B
// runs: 2 workers ~150k messages/s, 4 workers ~145k, noisy), and a baseline
// should be CAF at its best, not a straw man. Plus the middleman's I/O thread.
caf::actor_system_config caf_config() {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("scheduler.max-threads", std::max<std::size_t>(allowed_cpus().size(), 1));
  return cfg;
}

// CAF's threads inherit the affinity of the thread that creates the actor
// system; a caller pinned to one CPU would squeeze all of them onto it. This
// widens the calling thread to all allowed CPUs for its lifetime.
class UnpinnedScope {
 public:
  UnpinnedScope() {
    have_old_ = pthread_getaffinity_np(pthread_self(), sizeof old_, &old_) == 0;
    cpu_set_t all;
    CPU_ZERO(&all);
    for (const int c : allowed_cpus()) CPU_SET(c, &all);
    if (!allowed_cpus().empty()) pthread_setaffinity_np(pthread_self(), sizeof all, &all);
  }
  ~UnpinnedScope() {
    if (have_old_) pthread_setaffinity_np(pthread_self(), sizeof old_, &old_);
  }
  UnpinnedScope(const UnpinnedScope&) = delete;
  UnpinnedScope& operator=(const UnpinnedScope&) = delete;

 private:
  cpu_set_t old_;
  bool have_old_ = false;
};

// The child: connects to the published counter, warms the connection up with
// one request, reports its start time, sends, and stays alive (its middleman
// still flushing) until the parent lets it go.
void caf_sender_child(const BaselineHost& host, std::uint64_t n, int control, std::int64_t deadline) {
  const auto port = static_cast<std::uint16_t>(receive_message(control, 'P', deadline, "parent"));
  UnpinnedScope unpinned;  // Peer pinned us to CPU 1; CAF gets both CPUs
  auto cfg = caf_config();
  caf::actor_system sys{cfg};
  auto remote = sys.middleman().remote_actor(host.server_addr, port);
  if (!remote) fail("caf remote_actor: " + sys.render(remote.error()));
  caf::scoped_actor self{sys};
  const auto left = std::chrono::nanoseconds(std::max<std::int64_t>(deadline - now_ns(), 1));
  self->request(*remote, left, caf::ping_atom_v)
      .receive([](caf::pong_atom) {}, [&](const caf::error& e) { fail("caf warm-up request: " + sys.render(e)); });
  std::vector<char> payload(kBaselineSignalSize, 0);
  send_message(control, 'S', now_ns());
  for (std::uint64_t i = 0; i < n; ++i) {
    std::memcpy(payload.data(), &i, sizeof i);
    self->send(*remote, i, payload);
    if ((i & 1023) == 1023 && now_ns() > deadline) fail("caf sender: round deadline exceeded");
  }
  wait_eof(control, deadline, "caf sender waiting for the parent");
  _exit(0);  // skip ~actor_system: its orderly shutdown is not ours to wait for
}

}  // namespace

// ---- public rounds ------------------------------------------------------------

double raw_tcp_stream_round(std::uint64_t signals, std::size_t batch, const BaselineHost& host) {
  if (signals == 0 || batch == 0) fail("raw_tcp_stream_round: signals and batch must be positive");
  const std::uint64_t total = signals * kBaselineSignalSize;
  const std::int64_t ns = stream_round_ns(total, kBaselineSignalSize, batch * kBaselineSignalSize, host,
                                          "raw TCP stream receiver");
  return per_second(signals, 0, ns);
}

double raw_tcp_bytes_round(std::uint64_t total_bytes, std::size_t chunk, const BaselineHost& host) {
  if (total_bytes == 0 || chunk < 8) fail("raw_tcp_bytes_round: need total_bytes > 0 and chunk >= 8");
  const std::int64_t ns = stream_round_ns(total_bytes, chunk, chunk, host, "raw TCP bytes receiver");
  return per_second(total_bytes, 0, ns);
}

RttStats raw_tcp_pingpong_stats(std::uint64_t trips, const BaselineHost& host) {
  if (trips == 0) fail("raw_tcp_pingpong: trips must be positive");
  const std::int64_t deadline = now_ns() + kBaselineDeadlineNs;
  Listener listener = listen_on(host.server_addr);
  Peer peer(
      "raw TCP echo", host,
      [&](int control) {
        const Fd fd = connect_to(listener, deadline);
        unsigned char msg[kBaselineSignalSize];
        send_message(control, 'R', 0);
        for (std::uint64_t i = 0; i < trips; ++i) {
          recv_all(fd.get(), msg, sizeof msg);  // each call bounded by SO_RCVTIMEO
          send_all(fd.get(), msg, sizeof msg);
        }
        expect_socket_eof(fd.get());
      },
      {listener.fd.get()});

  peer.expect('R', deadline);
  Fd fd = accept_one(listener, deadline);
  std::vector<std::int64_t> rtt(trips);  // allocated (and faulted in) before the clock
  unsigned char msg[kBaselineSignalSize] = {};
  for (std::uint64_t i = 0; i < trips; ++i) {
    std::memcpy(msg, &i, sizeof i);
    const std::int64_t t0 = now_ns();
    send_all(fd.get(), msg, sizeof msg);
    recv_all(fd.get(), msg, sizeof msg);
    const std::int64_t t1 = now_ns();
    rtt[i] = t1 - t0;
    std::uint64_t back;
    std::memcpy(&back, msg, sizeof back);
    if (back != i) fail("pong " + std::to_string(back) + " for ping " + std::to_string(i));
    if (t1 > deadline) fail("raw TCP ping-pong: round deadline exceeded");
  }
  fd.reset();
  peer.finish(deadline);

  double sum = 0;
  for (const auto v : rtt) sum += static_cast<double>(v);
  std::sort(rtt.begin(), rtt.end());
  const auto at = [&](double q) { return static_cast<double>(rtt[static_cast<std::size_t>(q * static_cast<double>(trips - 1))]); };
  return RttStats{at(0.5), sum / static_cast<double>(trips), at(0.99)};
}

double raw_tcp_pingpong_rtt_ns(std::uint64_t trips, const BaselineHost& host) {
  return raw_tcp_pingpong_stats(trips, host).p50_ns;
}

double caf_remote_stream_round(std::uint64_t messages, const BaselineHost& host) {
  if (messages == 0) fail("caf_remote_stream_round: messages must be positive");
  const std::int64_t deadline = now_ns() + kBaselineDeadlineNs;
  // Fork before this process starts any CAF thread: a child forked from a
  // running actor system could inherit a lock held by one of its threads.
  Peer peer("CAF sender", host, [&](int control) { caf_sender_child(host, messages, control, deadline); });

  double rate = 0;
  {
    UnpinnedScope unpinned;
    auto cfg = caf_config();
    caf::actor_system sys{cfg};
    {
      caf::scoped_actor self{sys};  // must die before sys
      auto counter = sys.spawn(caf_counter, messages, caf::actor{self});
      auto port = sys.middleman().publish(counter, 0, host.server_addr.c_str());
      if (!port) fail("caf publish on " + host.server_addr + ": " + sys.render(port.error()));
      send_message(peer.control(), 'P', *port);
      const std::int64_t start_ns = peer.expect('S', deadline);
      std::int64_t end_ns = 0;
      // Short receive slices, so a child that died mid-stream fails the round
      // at once instead of at the deadline.
      while (end_ns == 0) {
        if (now_ns() > deadline) fail("caf counter did not see all messages before the deadline");
        self->receive([&](caf_done_atom, std::int64_t t) { end_ns = t; },
                      [&](caf_bad_atom, const std::string& what) { fail("caf counter: " + what); },
                      caf::after(std::chrono::milliseconds(100)) >> [&] { peer.check_alive(); });
      }
      rate = per_second(messages, start_ns, end_ns);
      peer.finish(deadline);  // the child's connection closes; ours notices
    }
  }  // ~actor_system: the counter has quit, the connection is gone
  return rate;
}

}  // namespace visorlab::bench
