// `visorlab drill [FILE]`. Until the drill engine exists, a drill without a
// file is a channel drill on the built-in device set: each channel lives in
// POSIX shared memory, a forked process plays the service partition (it opens
// and validates every channel by name), and numbered signals are checked end
// to end — nothing lost, duplicated, reordered or corrupted — across a planned
// pause of one driver endpoint. Topology files arrive with the drill engine.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "channel/channel.hpp"
#include "channel/channel_types.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

namespace visorlab::cli {
namespace {

namespace ch = visorlab::channel;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::array<std::string_view, 5> kDeviceSet{"controlvm", "vhba", "vnic", "keyboard", "mouse"};
constexpr auto kRunLimit = 30s;        // the whole stream, whatever happens
constexpr auto kHandshakeLimit = 10s;  // the child attaching, and its final tallies
constexpr auto kPauseFor = 50ms;
constexpr std::string_view kPausedDevice = "vhba";  // spec §4: vhba pause/resume
constexpr std::uint64_t kMaxSignals = 1'000'000;  // ~7 s on a 2-core VM: well inside kRunLimit

struct Options {
  std::string file;
  std::uint64_t signals = 20000;
  std::string report;
};

// A queue fault or refused attach: a drill invariant failure, not the machine's.
struct DrillFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string errno_text(int result) { return std::to_string(result) + " (" + std::strerror(-result) + ")"; }

// ---------------------------------------------------------------------------
// What flows: routes, signals, tallies.

// The queues a drill uses on a channel: where the parent's signals go and, on
// channels that answer, where the service partition echoes them.
struct Route {
  std::uint32_t forward;
  std::optional<std::uint32_t> back;
};

Route route_of(const ch::ChannelType& type) {
  switch (type.kind) {
    case ch::ChannelKind::controlvm:
      return {2, 0};  // spec §3: commands arrive on EVENT(2), responses go to REQUEST(0)
    case ch::ChannelKind::vhba:
    case ch::ChannelKind::vnic:
      return {0, 1};  // spec §5: commands into cmd_q(0), responses from rsp_q(1)
    default:
      return {0, std::nullopt};  // keyboard, mouse: one queue of input reports
  }
}

std::string route_text(const Route& r) {
  return "q" + std::to_string(r.forward) + (r.back ? "->q" + std::to_string(*r.back) : "");
}

// A signal: its sequence number in the first 8 bytes, then a pattern of the
// number, the byte's position and the channel, so a torn, stale or misrouted
// signal shows up as corrupt. Every built-in signal size is >= 16 bytes.
std::byte pattern(std::uint64_t seq, std::size_t i, std::uint8_t salt) {
  return static_cast<std::byte>(seq * 131 + i * 7 + salt);
}

void fill_signal(std::byte* signal, std::size_t size, std::uint64_t seq, std::uint8_t salt) {
  std::memcpy(signal, &seq, sizeof seq);
  for (std::size_t i = sizeof seq; i < size; ++i) signal[i] = pattern(seq, i, salt);
}

// The sequence number, or nullopt when the payload does not match it.
std::optional<std::uint64_t> read_signal(const std::byte* signal, std::size_t size, std::uint8_t salt) {
  std::uint64_t seq = 0;
  std::memcpy(&seq, signal, sizeof seq);
  for (std::size_t i = sizeof seq; i < size; ++i)
    if (signal[i] != pattern(seq, i, salt)) return std::nullopt;
  return seq;
}

struct Counts {
  std::uint64_t unique = 0, duplicated = 0, reordered = 0, corrupt = 0;
  bool clean(std::uint64_t n) const { return unique == n && duplicated == 0 && reordered == 0 && corrupt == 0; }
};

// What one receiving side saw of the stream 0 … n-1.
class Tally {
 public:
  explicit Tally(std::uint64_t n) : seen_(n) {}

  void record(std::optional<std::uint64_t> seq) {
    if (!seq || *seq >= seen_.size()) {
      ++counts.corrupt;
      return;
    }
    if (seen_[*seq]) {
      ++counts.duplicated;
      return;
    }
    seen_[*seq] = true;
    ++counts.unique;
    if (counts.unique > 1 && *seq < highest_) ++counts.reordered;  // arrived after a later one
    highest_ = std::max(highest_, *seq);
  }
  // Queues are FIFO: once the last signal is in, anything still missing is lost.
  bool saw_last() const { return !seen_.empty() && seen_.back(); }

  Counts counts;

 private:
  std::vector<bool> seen_;
  std::uint64_t highest_ = 0;
};

// ---------------------------------------------------------------------------
// Process plumbing.

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

struct Pipe {
  Fd read, write;
};

Pipe make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  return {Fd(fds[0]), Fd(fds[1])};
}

void say(int fd, std::string line) {
  line += '\n';
  for (std::size_t at = 0; at < line.size();) {
    const ssize_t n = ::write(fd, line.data() + at, line.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nobody is listening any more
    at += static_cast<std::size_t>(n);
  }
}

// Lines the service partition writes to its pipe, each wait bounded.
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // The next line; nullopt at end of file or once the deadline has passed.
  std::optional<std::string> next(Clock::time_point deadline) {
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (eof_) return std::nullopt;
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(std::clamp<long long>(left, 0, 60'000)));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return std::nullopt;
      char chunk[512];
      const ssize_t got = ::read(fd_, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) eof_ = true;
      else buffer_.append(chunk, static_cast<std::size_t>(got));
    }
  }

 private:
  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

// The forked service partition as the parent sees it. Whichever way the
// parent leaves, the child is killed and reaped here.
class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      reap(0);
    }
  }

  pid_t pid() const { return pid_; }

  // True once the child has exited; never blocks.
  bool exited() {
    if (!reaped_) reap(WNOHANG);
    return reaped_;
  }
  // Waits for the child to exit until the deadline, then kills it.
  void wait(Clock::time_point deadline) {
    while (!exited() && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      reap(0);
    }
  }
  bool exited_with(int code) const { return reaped_ && WIFEXITED(status_) && WEXITSTATUS(status_) == code; }

  std::string describe() const {
    if (!reaped_) return "is still running";
    if (WIFEXITED(status_)) return "exited with status " + std::to_string(WEXITSTATUS(status_));
    if (WIFSIGNALED(status_))
      return "was killed by signal " + std::to_string(WTERMSIG(status_)) + " (" + strsignal(WTERMSIG(status_)) + ")";
    return "ended with wait status " + std::to_string(status_);
  }

 private:
  void reap(int flags) {
    int status = 0;
    pid_t r;
    do r = ::waitpid(pid_, &status, flags);
    while (r < 0 && errno == EINTR);
    if (r == pid_ || r < 0) {  // r < 0: not our child any more; nothing left to reap
      status_ = status;
      reaped_ = true;
    }
  }

  pid_t pid_;
  int status_ = 0;
  bool reaped_ = false;
};

// ---------------------------------------------------------------------------
// The lanes: one channel each, seen from either side.

struct LaneSpec {
  const ch::ChannelType* type;
  std::string shm_name;
  std::uint8_t salt;  // mixed into every payload, so channels cannot be confused
};

// The service partition's end of one channel, opened by name and validated in
// this process as a real service partition would.
class ServiceLane {
 public:
  ServiceLane(const LaneSpec& spec, std::uint64_t n)
      : spec_(spec),
        route_(route_of(*spec.type)),
        region_(ch::Region::open_shared(spec.shm_name)),
        channel_(attach(region_, *spec.type)),
        tally_(n),
        buffer_(std::size_t{channel_.queue(route_.forward).capacity()} * spec.type->signal_size) {}

  // Removes and checks what is waiting and echoes it back on channels that
  // answer. Returns how many signals moved.
  std::size_t step() {
    ch::SignalQueue& in = channel_.queue(route_.forward);
    const std::size_t size = in.signal_size();
    std::size_t moved = 0;
    if (held_ == 0) {
      int status = 0;
      const std::size_t got = in.remove_batch(buffer_.data(), in.capacity(), &status);
      if (status != 0 && status != -EAGAIN) fault("remove from", route_.forward, status);
      for (std::size_t i = 0; i < got; ++i) tally_.record(read_signal(buffer_.data() + i * size, size, spec_.salt));
      moved += got;
      if (route_.back) {
        held_ = got;
        held_at_ = 0;
      }
    }
    if (held_ > 0) {  // the echo queue may be full while the driver is paused: keep them
      int status = 0;
      const std::size_t put = channel_.queue(*route_.back).insert_batch(buffer_.data() + held_at_ * size, held_, &status);
      if (status != 0 && status != -EIO) fault("insert into", *route_.back, status);
      held_ -= put;
      held_at_ += put;
      moved += put;
    }
    return moved;
  }

  std::string tally_line() const {
    const Counts& c = tally_.counts;
    std::ostringstream out;
    out << "tally " << spec_.type->name << ' ' << c.unique << ' ' << c.duplicated << ' ' << c.reordered << ' '
        << c.corrupt;
    return out.str();
  }

 private:
  static ch::Channel attach(const ch::Region& region, const ch::ChannelType& type) {
    try {
      return ch::Channel::attach(region.map(), type.expect());
    } catch (const ch::ChannelError& e) {
      throw DrillFailure(std::string(type.name) + ": attach refused the channel: " + e.what());
    }
  }
  [[noreturn]] void fault(const char* what, std::uint32_t q, int status) const {
    throw DrillFailure(std::string(spec_.type->name) + ": " + what + " queue " + std::to_string(q) +
                       " failed: " + errno_text(status));
  }

  LaneSpec spec_;
  Route route_;
  ch::Region region_;
  ch::Channel channel_;
  Tally tally_;
  std::vector<std::byte> buffer_;
  std::size_t held_ = 0, held_at_ = 0;  // removed, not yet echoed
};

bool stop_requested(int stop_fd) {
  pollfd p{stop_fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;  // the parent closed its end (POLLHUP)
}

int serve(const std::vector<LaneSpec>& specs, std::uint64_t n, int report_fd, int stop_fd) {
  std::vector<ServiceLane> lanes;
  lanes.reserve(specs.size());
  for (const auto& spec : specs) lanes.emplace_back(spec, n);
  say(report_fd, "ready");

  // Bounded even if the parent never says stop (it may be stuck, not dead).
  const auto deadline = Clock::now() + kRunLimit + kHandshakeLimit;
  while (Clock::now() < deadline) {
    std::size_t moved = 0;
    for (auto& lane : lanes) moved += lane.step();
    if (moved == 0) {
      if (stop_requested(stop_fd)) break;
      sched_yield();
    }
  }
  for (const auto& lane : lanes) say(report_fd, lane.tally_line());
  return kPass;
}

// The child's whole life. It reports on the pipe ("ready", "tally …",
// "fail …" for an invariant, "error …" for anything else) and leaves by _exit:
// the parent's objects copied by fork (its Regions, which unlink their names
// when destroyed) must never be destroyed here.
[[noreturn]] void run_service_partition(pid_t parent, const std::vector<LaneSpec>& specs, std::uint64_t n,
                                        int report_fd, int stop_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);        // never outlive the parent …
  if (getppid() != parent) _exit(kInfrastructure);  // … even one that died before prctl
  std::signal(SIGPIPE, SIG_IGN);           // a parent that stopped listening is not a crash
  int code = kInfrastructure;
  try {
    code = serve(specs, n, report_fd, stop_fd);
  } catch (const DrillFailure& e) {
    say(report_fd, std::string("fail ") + e.what());
    code = kInvariantFailed;
  } catch (const std::exception& e) {
    say(report_fd, std::string("error ") + e.what());
  } catch (...) {
    say(report_fd, "error unknown exception");
  }
  _exit(code);
}

// The parent's (driver's) end of one channel. It creates and formats the
// channel, so its Region unlinks the name on every way out.
class DriverLane {
 public:
  DriverLane(const LaneSpec& spec, std::uint64_t n)
      : spec(spec),
        route(route_of(*spec.type)),
        region_(ch::Region::create_shared(spec.shm_name, ch::channel_size(spec.type->spec()))),
        channel_(ch::Channel::format(region_.map(), spec.type->spec())),
        echoes_(n),
        staging_(std::size_t{channel_.queue(route.forward).capacity()} * spec.type->signal_size),
        inbox_(route.back ? std::size_t{channel_.queue(*route.back).capacity()} * spec.type->signal_size : 0),
        pause_planned_(spec.type->name == kPausedDevice) {}

  // The stream starts now: throughput is measured from here.
  void start(Clock::time_point now) { started_ = now; }

  // Once the service partition has the channel open, the name can go: the
  // memory lives while mapped, and nothing is left behind if we are killed.
  void unlink() { region_.unlink(); }

  // One pass: stream the next signals, take in echoes, and pause, resume or
  // finish when it is time. Returns how many signals moved.
  std::size_t step(std::uint64_t n, Clock::time_point now) {
    if (paused_) {
      if (now < resume_at_) return 0;  // paused: do not touch the channel at all
      resume(now);
    }
    if (done) return 0;
    const std::size_t moved = send(n) + receive();
    if (pause_planned_ && !pause_taken_ && sent >= n / 2) {
      pause(now);
      return moved;
    }
    if (error.empty() && sent == n && drained(n)) finish(now, "done");
    return moved;
  }

  // The run is over (deadline): stop where we are.
  void abandon(Clock::time_point now) {
    if (paused_) resume(now);
    if (!done) {
      if (error.empty()) error = "timed out after " + std::to_string(kRunLimit.count()) + " s";
      finish(now, "stopped");
    }
  }

  bool idle() const { return done && !paused_; }
  bool answers() const { return route.back.has_value(); }
  const Counts& echoes() const { return echoes_.counts; }
  std::uint64_t violations() { return channel_.guard().violations(); }
  std::optional<std::uint64_t> paused_at_signal() const { return pause_taken_ ? std::optional(pause_signal_) : std::nullopt; }
  double paused_ms() const { return std::chrono::duration<double, std::milli>(resumed_ - paused_since_).count(); }

  LaneSpec spec;
  Route route;
  std::uint64_t sent = 0;
  bool done = false;
  Clock::duration elapsed{};  // from the start of the stream to done
  std::string error;

 private:
  std::size_t send(std::uint64_t n) {
    ch::SignalQueue& q = channel_.queue(route.forward);
    const std::size_t size = q.signal_size();
    if (staged_ == 0 && sent < n) {  // number the next batch once; resend what did not fit
      staged_ = static_cast<std::size_t>(std::min<std::uint64_t>(n - sent, q.capacity()));
      staged_at_ = 0;
      for (std::size_t i = 0; i < staged_; ++i) fill_signal(staging_.data() + i * size, size, sent + i, spec.salt);
    }
    if (staged_ == 0) return 0;
    int status = 0;
    const std::size_t put = q.insert_batch(staging_.data() + staged_at_ * size, staged_, &status);
    if (status != 0 && status != -EIO) fail("insert into queue " + std::to_string(route.forward), status);
    staged_ -= put;
    staged_at_ += put;
    sent += put;
    return put;
  }

  std::size_t receive() {
    if (!route.back || done) return 0;
    ch::SignalQueue& q = channel_.queue(*route.back);
    const std::size_t size = q.signal_size();
    int status = 0;
    const std::size_t got = q.remove_batch(inbox_.data(), q.capacity(), &status);
    if (status != 0 && status != -EAGAIN) fail("remove from queue " + std::to_string(*route.back), status);
    for (std::size_t i = 0; i < got; ++i) echoes_.record(read_signal(inbox_.data() + i * size, size, spec.salt));
    return got;
  }

  // Everything sent has come back (or, for one-way channels, been taken).
  bool drained(std::uint64_t n) const {
    if (answers()) return echoes_.counts.unique == n || echoes_.saw_last();
    return channel_.queue(route.forward).pending() == 0;
  }

  void fail(const std::string& what, int status) {
    if (error.empty()) error = what + " failed: " + errno_text(status);
    done = true;
  }

  void pause(Clock::time_point now) {
    channel_.pause();
    paused_ = pause_taken_ = true;
    pause_signal_ = sent;
    paused_since_ = now;
    resume_at_ = now + kPauseFor;
    std::cout << "  " << spec.type->name << ": paused the driver endpoint at signal " << sent << " for "
              << kPauseFor.count() << " ms; the service partition keeps serving" << std::endl;
  }

  void resume(Clock::time_point now) {
    channel_.resume();
    paused_ = false;
    resumed_ = now;
    std::cout << "  " << spec.type->name << ": resumed after " << std::fixed << std::setprecision(1) << paused_ms()
              << " ms; " << channel_.guard().violations() << " accesses while paused" << std::endl;
  }

  void finish(Clock::time_point now, const char* how) {
    done = true;
    elapsed = now - started_;
    std::cout << "  " << spec.type->name << ": " << how << ", " << sent << " sent";
    if (answers()) std::cout << ", " << echoes_.counts.unique << " echoed";
    std::cout << " in " << std::fixed << std::setprecision(3) << std::chrono::duration<double>(elapsed).count()
              << " s" << std::endl;
  }

  ch::Region region_;
  ch::Channel channel_;
  Tally echoes_;
  std::vector<std::byte> staging_, inbox_;
  std::size_t staged_ = 0, staged_at_ = 0;
  Clock::time_point started_ = Clock::now();

  bool pause_planned_, pause_taken_ = false, paused_ = false;
  std::uint64_t pause_signal_ = 0;
  Clock::time_point paused_since_, resume_at_, resumed_;
};

// ---------------------------------------------------------------------------
// The drill.

enum class StreamEnd { finished, timed_out, child_died };

StreamEnd stream(std::vector<DriverLane>& lanes, std::uint64_t n, ChildProcess& child) {
  const auto start = Clock::now();
  for (auto& lane : lanes) lane.start(start);
  const auto deadline = start + kRunLimit;
  for (;;) {
    const auto now = Clock::now();
    std::size_t moved = 0;
    bool all_idle = true;
    for (auto& lane : lanes) {
      moved += lane.step(n, now);
      all_idle = all_idle && lane.idle();
    }
    if (all_idle) return StreamEnd::finished;
    if (now >= deadline) {
      for (auto& lane : lanes) lane.abandon(now);
      return StreamEnd::timed_out;
    }
    if (moved == 0) {
      if (child.exited()) return StreamEnd::child_died;
      sched_yield();  // the service partition needs the core more than we do
    }
  }
}

// The child stopped early or said something went wrong: explain, and say
// whether it was an invariant (1) or the machine (3).
int child_failure(ChildProcess& child, LineReader& reader, const std::string& when,
                  std::vector<std::string> messages = {}) {
  const auto deadline = Clock::now() + 2s;
  while (auto line = reader.next(deadline)) messages.push_back(*line);
  child.wait(deadline);
  bool invariant = false;
  std::cerr << "visorlab drill: service partition (pid " << child.pid() << ") " << child.describe() << " " << when
            << "\n";
  for (const auto& m : messages) {
    if (m.rfind("fail ", 0) == 0) invariant = true;
    if (m.rfind("fail ", 0) == 0 || m.rfind("error ", 0) == 0) std::cerr << "  " << m.substr(m.find(' ') + 1) << "\n";
  }
  return invariant && child.exited_with(kInvariantFailed) ? kInvariantFailed : kInfrastructure;
}

struct Row {
  std::string device, queues;
  std::uint64_t sent = 0, received = 0, lost = 0;
  Counts counts;
  double rate = 0;
  std::vector<std::string> why;  // empty: pass
};

Row make_row(DriverLane& lane, const Counts& service, std::uint64_t n) {
  Row row;
  row.device = lane.spec.type->name;
  row.queues = route_text(lane.route);
  row.sent = lane.sent;
  // End to end: what came back to the driver, or what the service partition took.
  row.counts = lane.answers() ? lane.echoes() : service;
  row.received = row.counts.unique;
  // Lost: sent and never seen at all, neither intact nor corrupt.
  const std::uint64_t seen = row.received + row.counts.corrupt;
  row.lost = row.sent > seen ? row.sent - seen : 0;
  const double seconds = std::chrono::duration<double>(lane.elapsed).count();
  row.rate = seconds > 0 ? static_cast<double>(row.received) / seconds : 0;

  if (!lane.error.empty()) row.why.push_back(lane.error);
  if (row.sent != n) row.why.push_back("sent " + std::to_string(row.sent) + " of " + std::to_string(n));
  if (row.lost) row.why.push_back(std::to_string(row.lost) + " lost");
  if (row.counts.duplicated) row.why.push_back(std::to_string(row.counts.duplicated) + " duplicated");
  if (row.counts.reordered) row.why.push_back(std::to_string(row.counts.reordered) + " reordered");
  if (row.counts.corrupt) row.why.push_back(std::to_string(row.counts.corrupt) + " corrupt");
  if (lane.answers() && !service.clean(n))
    row.why.push_back("service partition saw " + std::to_string(service.unique) + " of " + std::to_string(n) +
                      " (" + std::to_string(service.duplicated) + " duplicated, " +
                      std::to_string(service.reordered) + " reordered, " + std::to_string(service.corrupt) +
                      " corrupt)");
  if (const auto v = lane.violations()) row.why.push_back(std::to_string(v) + " pause guard violations");
  return row;
}

void print_table(const std::vector<Row>& rows) {
  std::cout << "\n"
            << std::left << std::setw(11) << "channel" << std::setw(8) << "queues" << std::right << std::setw(10)
            << "sent" << std::setw(10) << "received" << std::setw(7) << "lost" << std::setw(11) << "duplicated"
            << std::setw(10) << "reordered" << std::setw(9) << "corrupt" << std::setw(12) << "signals/s"
            << "  result\n";
  for (const auto& r : rows) {
    std::cout << std::left << std::setw(11) << r.device << std::setw(8) << r.queues << std::right << std::setw(10)
              << r.sent << std::setw(10) << r.received << std::setw(7) << r.lost << std::setw(11)
              << r.counts.duplicated << std::setw(10) << r.counts.reordered << std::setw(9) << r.counts.corrupt
              << std::setw(12) << std::fixed << std::setprecision(0) << r.rate << "  "
              << (r.why.empty() ? "pass" : "FAIL") << "\n";
    for (const auto& why : r.why) std::cout << "    " << r.device << ": " << why << "\n";
  }
}

nlohmann::json make_report(const std::vector<Row>& rows, bool pass, double duration_s, std::uint64_t n,
                           const std::string& paused, std::optional<std::uint64_t> at_signal, double pause_ms) {
  nlohmann::json channels = nlohmann::json::array(), violations = nlohmann::json::array();
  for (const auto& r : rows) {
    channels.push_back({{"type", r.device}, {"queues", r.queues}, {"sent", r.sent}, {"received", r.received},
                        {"lost", r.lost}, {"duplicated", r.counts.duplicated}, {"reordered", r.counts.reordered},
                        {"corrupt", r.counts.corrupt}, {"signals_per_s", r.rate},
                        {"result", r.why.empty() ? "pass" : "fail"}});
    for (const auto& why : r.why) violations.push_back({{"kind", "channel"}, {"device", r.device}, {"detail", why}});
  }
  nlohmann::json faults = nlohmann::json::array();
  if (at_signal)
    faults.push_back({{"step", 0}, {"kind", "pause"}, {"target", paused}, {"at_signal", *at_signal},
                      {"pause_ms", pause_ms}});
  return {{"visorlab_report", 1}, {"name", "builtin-channel-drill"}, {"result", pass ? "pass" : "fail"},
          {"duration_s", duration_s}, {"signals_per_channel", n}, {"channels", channels}, {"faults", faults},
          {"violations", violations}};
}

bool write_report(const std::string& path, const nlohmann::json& report) {
  const std::string tmp = path + ".tmp";  // beside the target, renamed: never half a report
  {
    std::ofstream file(tmp, std::ios::trunc);
    file << report.dump(2) << "\n";
    if (!file.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
  return !ec;
}

int run_drill(const Options& opt) {
  const std::uint64_t n = opt.signals;
  std::cout << "visorlab drill: channel drill on the built-in device set (controlvm, vhba, vnic, keyboard, mouse)"
               " — full topology drills arrive with the drill engine"
            << std::endl;
  if (!opt.report.empty()) {
    const auto dir = std::filesystem::absolute(opt.report).parent_path();
    if (!std::filesystem::is_directory(dir)) {
      std::cerr << "visorlab drill: --report " << opt.report << ": directory " << dir.string() << " does not exist\n";
      return kBadInput;
    }
  }

  std::vector<LaneSpec> specs;
  for (std::size_t i = 0; i < kDeviceSet.size(); ++i) {
    const ch::ChannelType* type = ch::find_type(kDeviceSet[i]);
    if (!type) throw std::logic_error("channel library lacks type " + std::string(kDeviceSet[i]));
    specs.push_back({type, "visorlab-drill-" + std::to_string(getpid()) + "-" + std::string(type->name),
                     static_cast<std::uint8_t>(i + 1)});
  }

  // Declared before the child, so the child is killed before the lanes go.
  std::vector<DriverLane> lanes;
  lanes.reserve(specs.size());
  try {
    for (const auto& spec : specs) lanes.emplace_back(spec, n);
  } catch (const std::system_error& e) {
    std::cerr << "visorlab drill: cannot create the channels in shared memory: " << e.what() << "\n";
    return kInfrastructure;
  }

  Pipe report = make_pipe(), stop = make_pipe();
  std::cout << std::flush;
  std::fflush(nullptr);  // or the child inherits unflushed output
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    std::cerr << "visorlab drill: fork: " << std::strerror(errno) << "\n";
    return kInfrastructure;
  }
  if (pid == 0) {
    report.read.reset();
    stop.write.reset();  // else the child never sees the parent hang up
    run_service_partition(parent, specs, n, report.write.get(), stop.read.get());
  }
  ChildProcess child(pid);
  report.write.reset();  // so we see end of file when the child dies
  stop.read.reset();
  LineReader reader(report.read.get());

  if (auto line = reader.next(Clock::now() + kHandshakeLimit); !line || *line != "ready") {
    std::vector<std::string> messages;
    if (line) messages.push_back(*line);
    return child_failure(child, reader, "while attaching the channels", std::move(messages));
  }
  for (auto& lane : lanes) lane.unlink();
  std::cout << "  service partition: pid " << pid << " opened and validated " << lanes.size()
            << " channels by name; streaming " << n << " signals per channel" << std::endl;

  const auto started = Clock::now();
  const StreamEnd end = stream(lanes, n, child);
  const double duration_s = std::chrono::duration<double>(Clock::now() - started).count();
  if (end == StreamEnd::child_died) return child_failure(child, reader, "in the middle of the drill");
  if (end == StreamEnd::timed_out)
    std::cout << "  deadline: stopped after " << kRunLimit.count() << " s with channels unfinished" << std::endl;

  // Tell the child to stop, and collect what it saw.
  stop.write.reset();
  std::vector<std::optional<Counts>> service(lanes.size());
  std::vector<std::string> messages;
  const auto deadline = Clock::now() + kHandshakeLimit;
  std::size_t tallies = 0;
  while (tallies < lanes.size()) {
    const auto line = reader.next(deadline);
    if (!line) break;
    std::istringstream in(*line);
    std::string word, device;
    Counts c;
    if (in >> word >> device >> c.unique >> c.duplicated >> c.reordered >> c.corrupt && word == "tally") {
      for (std::size_t i = 0; i < lanes.size(); ++i)
        if (lanes[i].spec.type->name == device && !service[i]) service[i] = c, ++tallies;
    } else {
      messages.push_back(*line);
    }
  }
  child.wait(Clock::now() + kHandshakeLimit);
  if (tallies < lanes.size() || !child.exited_with(kPass))
    return child_failure(child, reader, "while reporting its tallies", std::move(messages));

  std::vector<Row> rows;
  bool pass = true;
  std::optional<std::uint64_t> pause_signal;
  double pause_ms = 0;
  for (std::size_t i = 0; i < lanes.size(); ++i) {
    rows.push_back(make_row(lanes[i], *service[i], n));
    pass = pass && rows.back().why.empty();
    if (lanes[i].paused_at_signal()) pause_signal = lanes[i].paused_at_signal(), pause_ms = lanes[i].paused_ms();
  }
  print_table(rows);
  std::uint64_t violations = 0;
  for (auto& lane : lanes) violations += lane.violations();
  if (pause_signal) {
    std::cout << "\npause: " << kPausedDevice << " driver endpoint paused " << std::fixed << std::setprecision(1)
              << pause_ms << " ms at signal " << *pause_signal << "; " << violations
              << " pause guard violations on the driver endpoints\n";
  } else {
    pass = false;
    std::cout << "\npause: the planned pause of " << kPausedDevice << " never happened\n";
  }
  std::cout << "result: " << (pass ? "pass" : "FAIL") << " (" << lanes.size() << " channels, " << n
            << " signals each, " << std::setprecision(2) << duration_s << " s)" << std::endl;

  if (!opt.report.empty() &&
      !write_report(opt.report, make_report(rows, pass, duration_s, n, std::string(kPausedDevice), pause_signal,
                                            pause_ms))) {
    std::cerr << "visorlab drill: cannot write the report " << opt.report << "\n";
    return kInfrastructure;
  }
  return pass ? kPass : kInvariantFailed;
}

int refuse_file(const std::string& file) {
  std::cerr << "visorlab drill: " << file
            << ": topology files arrive with the drill engine; run `visorlab drill` without a file\n";
  return kBadInput;
}

}  // namespace

void add_drill_command(CLI::App& app, Action& action) {
  auto* drill = app.add_subcommand(
      "drill",
      "Run a drill. Today: a channel drill on the built-in device set (controlvm, vhba, vnic, keyboard, mouse) "
      "between this process and a forked service partition, over POSIX shared memory, bounded by 30 s");
  auto opt = std::make_shared<Options>();
  drill->add_option("FILE", opt->file, "Topology and drill file (arrives with the drill engine)");
  drill->add_option("--signals", opt->signals, "Signals streamed through each channel")
      ->check(CLI::Range(std::uint64_t{1}, kMaxSignals))
      ->capture_default_str();
  drill->add_option("--report", opt->report, "Write a JSON summary to this file");
  drill->callback([&action, opt] {
    action = [opt] { return opt->file.empty() ? run_drill(*opt) : refuse_file(opt->file); };
  });
}

}  // namespace visorlab::cli
