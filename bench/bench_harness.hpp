// Shared plumbing for the bench/ binaries (DESIGN.md "Benchmarks"): option
// parsing, interleaved baseline/candidate rounds, medians, bounded spinning
// and the output contract — with --json one object per line,
//   {"name","value","unit","baseline","baseline_value","ratio"},
// ratio > 1 meaning visorlab is better; without it a readable table.
#pragma once

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace visorlab::bench {

using Clock = std::chrono::steady_clock;

// CLOCK_MONOTONIC in ns: comparable across processes on one host, so a forked
// consumer can report when it finished.
inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// Called by fail() before the process exits (kill a child, unlink a shm name).
// Set by the main thread only, while no worker thread is running.
inline std::function<void()> on_fail;

// ---- cleanup that must happen however the bench ends --------------------------
//
// Some benches leave things outside the process: network namespaces, a 64 MiB
// scratch file. An ExitCleanup runs its action exactly once: from its
// destructor (normal return, exceptions), from fail() (after on_fail has killed
// the children), or from a SIGINT/SIGTERM/SIGHUP/SIGQUIT handler, after which
// the process dies of that signal. Actions must therefore be async-signal-safe
// (plain syscalls on paths prepared beforehand: unlink, rmdir, umount2). They
// run only in the process that registered them: a forked child inherits the
// handlers and the registry but never cleans up for its parent.
namespace detail {
struct CleanupSlot {
  std::atomic<void (*)(void*)> fn{nullptr};
  void* arg = nullptr;
  pid_t owner = 0;
};
inline CleanupSlot cleanup_slots[8];

inline void run_cleanup(CleanupSlot& slot) noexcept {
  if (slot.owner != ::getpid()) return;
  if (auto* fn = slot.fn.exchange(nullptr)) fn(slot.arg);
}

inline void run_all_cleanups() noexcept {
  for (auto& slot : cleanup_slots) run_cleanup(slot);
}

inline void cleanup_signal_handler(int sig) {
  const int saved = errno;
  run_all_cleanups();
  ::signal(sig, SIG_DFL);  // then die of the signal, as without the handler
  ::raise(sig);
  errno = saved;
}
}  // namespace detail

class ExitCleanup {
 public:
  ExitCleanup(void (*fn)(void*), void* arg) {
    static const bool handlers = [] {
      struct sigaction sa {};
      sa.sa_handler = detail::cleanup_signal_handler;
      sigemptyset(&sa.sa_mask);
      for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&sa.sa_mask, sig);
      for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &sa, nullptr);
      return true;
    }();
    (void)handlers;
    for (auto& slot : detail::cleanup_slots) {
      if (slot.fn.load() != nullptr && slot.owner == ::getpid()) continue;
      slot.arg = arg;
      slot.owner = ::getpid();
      slot.fn.store(fn);  // last: a signal sees a complete slot or none
      slot_ = &slot;
      return;
    }
    throw std::runtime_error("bench: too many exit cleanups registered");
  }
  ~ExitCleanup() { detail::run_cleanup(*slot_); }
  ExitCleanup(const ExitCleanup&) = delete;
  ExitCleanup& operator=(const ExitCleanup&) = delete;

 private:
  detail::CleanupSlot* slot_ = nullptr;
};

// Fails loudly: a benchmark that cannot finish or sees a wrong signal must not
// print a number. _Exit because workers may still be spinning in other threads.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "bench: FAILED: %s\n", what.c_str());
  std::fflush(stderr);
  if (on_fail) on_fail();
  detail::run_all_cleanups();
  std::_Exit(2);
}

// One spin-wait step, the same for baseline and candidate: PAUSE keeps a
// spinning core from flooding the peer's cache line with speculative loads.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Bounds every spin loop by wall clock (count bounds come from the loops
// themselves). Every 1024 fruitless spins it reads the clock and yields: a
// peer that shares our CPU (no pinning possible) then still gets to run, and
// a busy queue never gets that far, so the fast path pays only the PAUSE.
class Spinner {
 public:
  Spinner(const char* what, std::int64_t deadline_ns) : what_(what), deadline_ns_(deadline_ns) {}
  void spin() {
    cpu_relax();
    if ((++spins_ & 1023) == 0) {
      if (now_ns() > deadline_ns_) fail(std::string(what_) + ": round deadline exceeded (peer stuck or dead?)");
      std::this_thread::yield();
    }
  }

 private:
  const char* what_;
  std::int64_t deadline_ns_;
  std::uint64_t spins_ = 0;
};

// The CPUs we may run on, captured before anything is pinned.
inline const std::vector<int>& allowed_cpus() {
  static const std::vector<int> cpus = [] {
    std::vector<int> v;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0)
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) v.push_back(c);
    return v;
  }();
  return cpus;
}

// Pins the calling thread (or process, before it makes threads) to the
// role-th allowed CPU: role 0 = producer/pinger, 1 = consumer/echo. Without
// it the scheduler sometimes starts a new thread on its spinning creator's
// CPU, and the two then take turns per time slice: a measured 72 ms for
// 10,000 signals instead of 3 ms. A no-op when pinning is off or impossible.
inline bool pinning_enabled = true;
inline void pin_self(int role) {
  const auto& cpus = allowed_cpus();
  if (!pinning_enabled || cpus.size() < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[static_cast<std::size_t>(role) % cpus.size()], &set);
  if (const int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set); e != 0)
    fail("pthread_setaffinity_np: error " + std::to_string(e));
}

inline constexpr std::int64_t kRoundDeadlineNs = 10'000'000'000;  // 10 s per round

struct Options {
  bool json = false;
  int rounds = 5;
  std::uint64_t signals = 0;  // 0: each benchmark's default
  std::string only;           // run only benchmarks whose name contains this
  bool pin = true;            // pin producer and consumer to different CPUs
  bool verbose = false;       // per-round figures on stderr
};

// A bench binary's own option, parsed with the common ones: `flag` alone
// (takes_value false: set(nullptr)) or followed by a value. `set` may throw
// std::invalid_argument with a message naming the flag.
struct ExtraOption {
  std::string flag;  // "--seconds"
  bool takes_value;
  std::function<void(const char* value)> set;
};

inline std::uint64_t parse_count(std::string_view flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v == 0 || text[0] == '-')
    throw std::invalid_argument(std::string(flag) + " needs a positive integer, got '" + text + "'");
  return v;
}

inline double parse_seconds(std::string_view flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || !(v > 0) || v > 3600)
    throw std::invalid_argument(std::string(flag) + " needs a positive number of seconds (at most 3600), got '" + text +
                                "'");
  return v;
}

// --rounds below 5 is allowed because someone typed it (smoke tests); the
// DESIGN.md contract is a median of >= 5, so we say so on stderr.
inline Options parse_options(int argc, char** argv, const char* usage, const std::vector<ExtraOption>& extra = {}) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw std::invalid_argument(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--json") {
      o.json = true;
    } else if (a == "--rounds") {
      const auto r = parse_count(a, value());
      if (r > 1000) throw std::invalid_argument("--rounds at most 1000");
      o.rounds = static_cast<int>(r);
    } else if (a == "--signals") {
      o.signals = parse_count(a, value());
    } else if (a == "--only") {
      o.only = value();
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--no-pin") {
      o.pin = false;
    } else if (a == "--help" || a == "-h") {
      std::printf("%s", usage);
      std::exit(0);
    } else if (const auto it = std::find_if(extra.begin(), extra.end(), [&](const ExtraOption& e) { return e.flag == a; });
               it != extra.end()) {
      it->set(it->takes_value ? value() : nullptr);
    } else {
      throw std::invalid_argument("unknown option '" + std::string(a) + "' (see --help)");
    }
  }
  pinning_enabled = o.pin;
  if (allowed_cpus().size() < 2)
    std::fprintf(stderr, "bench: warning: fewer than 2 CPUs usable; spinning producer and consumer share one\n");
  if (o.rounds < 5)
    std::fprintf(stderr, "bench: note: --rounds %d < 5; fine for a smoke test, not a DESIGN.md result\n",
                 o.rounds);
  return o;
}

// Nearest-rank percentile `p` (0–100] of `v` (0 when empty): with 20 values
// the p99 is the largest.
inline double nearest_rank(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100 * static_cast<double>(v.size())));
  return v[std::min(v.size(), std::max<std::size_t>(rank, 1)) - 1];
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

struct Metric {
  std::string name;
  std::string unit;       // "signals/s", "ns", …
  std::string baseline;   // what the candidate is compared with
  bool higher_is_better;  // throughput: value/baseline; latency: baseline/value
  double target;          // the DESIGN.md ratio goal, shown in the table
};

struct Result {
  Metric metric;
  double value;
  double baseline_value;
  double ratio;
  double paired_ratio;  // median of per-round ratios: a drift check, not reported
  std::vector<double> values, baseline_values;  // per round
};

// Runs one untimed warm-up pair (page faults, CPU clocks, thread start-up
// paths), then `rounds` interleaved pairs — baseline, candidate, baseline, … —
// so drift on a shared machine hits both sides alike. Each callable runs one
// round and returns its figure in metric.unit.
inline Result measure(const Metric& metric, int rounds, const std::function<double()>& baseline_round,
                      const std::function<double()>& candidate_round) {
  baseline_round();
  candidate_round();
  Result r{metric, 0, 0, 0, 0, {}, {}};
  for (int i = 0; i < rounds; ++i) {
    r.baseline_values.push_back(baseline_round());
    r.values.push_back(candidate_round());
  }
  r.value = median(r.values);
  r.baseline_value = median(r.baseline_values);
  if (r.value <= 0 || r.baseline_value <= 0) fail(metric.name + ": non-positive measurement");
  auto ratio_of = [&](double value, double baseline) {
    return metric.higher_is_better ? value / baseline : baseline / value;
  };
  r.ratio = ratio_of(r.value, r.baseline_value);
  std::vector<double> paired;
  for (int i = 0; i < rounds; ++i) paired.push_back(ratio_of(r.values[i], r.baseline_values[i]));
  r.paired_ratio = median(paired);
  return r;
}

// Rounds to `decimals` places; dividing by a power of ten (not multiplying by
// 0.1) gives the double nearest the decimal, so JSON shows 2700.6, not 2700.6000000000004.
inline double round_to(double v, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(v * scale) / scale;
}

inline void print_table_header(const Options& o) {
  if (o.json) return;
  std::printf("%-34s %14s %-10s %-22s %14s %7s %7s  %s\n", "name", "value", "unit", "baseline",
              "baseline_value", "ratio", "target", "");
}

// Figures are rounded to what the noise allows: whole signals/s, 0.1 ns, ms
// or % of a core, and 3 decimals of ratio.
inline void report(const Result& r, const Options& o) {
  const int decimals = r.metric.unit == "ns" || r.metric.unit == "ms" || r.metric.unit == "%core" ? 1 : 0;
  const double value = round_to(r.value, decimals), base = round_to(r.baseline_value, decimals);
  const double ratio = round_to(r.ratio, 3);
  if (o.json) {
    nlohmann::ordered_json j;  // ordered: keys in the contract's order
    j["name"] = r.metric.name;
    j["value"] = value;
    j["unit"] = r.metric.unit;
    j["baseline"] = r.metric.baseline;
    j["baseline_value"] = base;
    j["ratio"] = ratio;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%-34s %14.1f %-10s %-22s %14.1f %7.3f %7.2f  %s\n", r.metric.name.c_str(), value,
                r.metric.unit.c_str(), r.metric.baseline.c_str(), base, ratio, r.metric.target,
                r.ratio >= r.metric.target ? "ok" : "BELOW TARGET");
  }
  // The contract's ratio is of the two medians. If the machine changed speed
  // part-way (the 2-vCPU KVM box does, ~3x, when the host moves a vCPU), the
  // two medians can come from different speeds; adjacent rounds still agree,
  // so a large gap between the two estimates means "rerun", not a result.
  if (std::abs(r.paired_ratio / r.ratio - 1) > 0.10)
    std::fprintf(stderr,
                 "bench: warning: %s: machine speed changed during the rounds (ratio of medians %.3f, "
                 "median of per-round ratios %.3f); rerun on a quiet machine or with more --rounds\n",
                 r.metric.name.c_str(), r.ratio, r.paired_ratio);
  if (o.verbose) {
    std::fprintf(stderr, "  %s rounds (baseline / candidate):", r.metric.name.c_str());
    for (std::size_t i = 0; i < r.values.size(); ++i)
      std::fprintf(stderr, " %.4g/%.4g", r.baseline_values[i], r.values[i]);
    std::fprintf(stderr, "\n");
  }
  std::fflush(stdout);
}

// One benchmark: its metric and one round of each side.
struct Bench {
  Metric metric;
  std::function<double()> baseline, candidate;
};

// Runs every bench (or those matching --only) and prints them; returns the
// process exit status (1 if setting a round up threw: ChannelError,
// system_error).
inline int run_benches(const char* tool, const Options& opt, const std::vector<Bench>& benches) {
  try {
    print_table_header(opt);
    for (const auto& b : benches) {
      if (!opt.only.empty() && b.metric.name.find(opt.only) == std::string::npos) continue;
      report(measure(b.metric, opt.rounds, b.baseline, b.candidate), opt);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return 1;
  }
  return 0;
}

}  // namespace visorlab::bench
