// Hot-path metrics: single-owner accumulators that publish into the shared
// prometheus-cpp objects now and then, so that counting an operation costs a
// plain increment instead of an atomic read-modify-write, and timing one costs
// two clock reads only for a sample of them (docs/metrics.md, "Cost").
//
// Each object belongs to one thread (the one polling the channel or running
// the device's I/O loop); none of them is thread-safe. The shared metrics they
// publish into may be read and written by anyone. What is counted between two
// publications is invisible to a scrape: call idle() when the loop finds no
// work (cheap, publishes at most every publish_period) and flush() before the
// loop blocks for long or stops; destructors flush too.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include "metrics/registry.hpp"

namespace visorlab::metrics {

// Counts locally; adds the total to `target` every `flush_every` counts.
class CounterBatch {
 public:
  static constexpr std::uint32_t kDefaultFlushEvery = 4096;

  explicit CounterBatch(prometheus::Counter& target, std::uint32_t flush_every = kDefaultFlushEvery) noexcept
      : target_(&target), flush_every_(flush_every ? flush_every : 1) {}
  CounterBatch(CounterBatch&& other) noexcept
      : target_(other.target_), pending_(other.pending_), flush_every_(other.flush_every_) {
    other.pending_ = 0;
  }
  CounterBatch(const CounterBatch&) = delete;
  CounterBatch& operator=(const CounterBatch&) = delete;
  CounterBatch& operator=(CounterBatch&&) = delete;
  ~CounterBatch() { flush(); }

  void inc() noexcept {
    if (++pending_ >= flush_every_) flush();
  }
  void add(std::uint64_t n) noexcept {
    pending_ += n;
    if (pending_ >= flush_every_) flush();
  }
  void flush() noexcept {
    if (pending_ == 0) return;
    target_->Increment(static_cast<double>(pending_));
    pending_ = 0;
  }
  std::uint64_t pending() const noexcept { return pending_; }

 private:
  prometheus::Counter* target_;
  std::uint64_t pending_ = 0;
  std::uint32_t flush_every_;
};

// Which operations a SampledHistogram times, and when it publishes.
struct Sampling {
  // Adaptive (the default): the mean interval between timed operations
  // follows the operation rate so that about one operation per `spacing` is
  // timed — every operation of a slow device, one in thousands of a fast
  // queue — bounding the cost of timing at any rate. Fixed: one in `every`.
  bool adaptive = true;
  std::chrono::nanoseconds spacing = std::chrono::milliseconds(1);
  std::uint32_t every = 1;               // fixed: the mean interval; adaptive: the first
  std::uint32_t max_every = 1u << 20;    // adaptive: the largest interval
  std::uint32_t flush_every = 64;        // samples kept locally before they are published
  std::chrono::nanoseconds publish_period = std::chrono::milliseconds(100);  // adaptive: publish at least this often while busy

  // One in `every` operations, publishing every `flush_every` samples; no clock.
  static Sampling fixed(std::uint32_t every, std::uint32_t flush_every = 64) {
    Sampling s;
    s.adaptive = false;
    s.every = every;
    s.flush_every = flush_every;
    return s;
  }
};

// A histogram fed by sampled observations. Intervals between timed
// operations are drawn at random from [1, 2*every-1] (a fixed stride could
// lock onto a periodic pattern, such as the slot within a queue-depth-8
// burst), and each sample is counted with the weight of the interval it ends,
// so _count tracks the number of operations (lagging by less than one
// interval) and _sum/_count the mean latency, while buckets hold unbiased
// estimates. `bounds` must be the bucket bounds `target` was made with
// (checked: at least their number).
class SampledHistogram {
 public:
  SampledHistogram(prometheus::Histogram& target, const std::vector<double>& bounds, Sampling sampling = {},
                   std::uint64_t seed = 0x9E3779B97F4A7C15ull);
  SampledHistogram(SampledHistogram&& other) noexcept;
  SampledHistogram(const SampledHistogram&) = delete;
  SampledHistogram& operator=(const SampledHistogram&) = delete;
  SampledHistogram& operator=(SampledHistogram&&) = delete;
  ~SampledHistogram() { flush(); }

  // Call once per operation, before it starts: true if this one is to be
  // timed and its duration passed to observe().
  bool tick() noexcept {
    if (--countdown_ != 0) return false;
    start_sample();
    return true;
  }
  // The timed operation's duration in seconds (only after tick() said true).
  void observe(double seconds) noexcept { observe(seconds, weight_); }
  // Operations that overlap — another one may be timed before this one
  // completes — keep the weight of their own sample (weight(), read right
  // after tick() said true) and hand it back here. observe(seconds) uses the
  // latest sample's, which is right only one timed operation at a time: two
  // overlap when the second comes soon after the first, i.e. ends a short
  // interval, so its weight would stand in for the first's and _count lag.
  void observe(double seconds, std::uint32_t weight) noexcept;
  std::uint32_t weight() const noexcept { return weight_; }
  // The loop found no work. Every 64th call reads the clock: publishes what
  // is pending if publish_period has passed, and if the last sample is older
  // than 2*spacing cuts the current interval short, so a device whose rate
  // fell is timed again at its next operation instead of thousands later.
  void idle() noexcept {
    if ((++idle_calls_ & 63) == 0) idle_check();
  }
  // Publishes what is pending now.
  void flush() noexcept;

  // Operations ticked so far (each tick() call).
  std::uint64_t ticks() const noexcept { return completed_ + interval_ - countdown_; }
  // Bumped by every publication (IoRecorder publishes its counts along).
  std::uint64_t publications() const noexcept { return publications_; }
  // The current mean interval (operations per timed one).
  std::uint32_t every() const noexcept { return every_; }

 private:
  void start_sample() noexcept;
  void idle_check() noexcept;
  std::uint32_t next_interval() noexcept;

  prometheus::Histogram* target_;
  std::vector<double> bounds_;
  std::vector<double> increments_;  // per bucket, +Inf last
  double sum_ = 0;
  std::uint32_t samples_ = 0;
  std::uint32_t interval_ = 1;   // length of the current interval
  std::uint32_t countdown_ = 1;  // operations left in it
  std::uint32_t weight_ = 0;     // of the sample being timed
  std::uint32_t every_;
  std::uint32_t idle_calls_ = 0;
  bool restart_ = false;  // idle_check() cut the current interval short
  Sampling sampling_;
  std::uint64_t rng_;
  std::int64_t last_sample_ns_ = 0;
  std::int64_t last_publish_ns_ = 0;
  std::uint64_t publications_ = 0;
  std::uint64_t completed_ = 0;  // operations in the intervals already ended
};

// One device's I/O path, as its driver or backend loop records it:
//
//   if (no work) { io.idle(); …wait…; continue; }
//   if (io.sample(op)) {                       // this one is timed
//     const auto t0 = clock::now();
//     … issue the I/O, wait for it …
//     io.done(op, seconds(clock::now() - t0));
//   } else {
//     … issue the I/O, wait for it …
//   }
//
// sample() is the whole cost of an untimed operation: a decrement and a
// branch. Each op (read, write) has its own SampledHistogram feeding the
// device's visorlab_io_latency_seconds, and the operations they counted down
// are visorlab_io_operations_total{op}: exact, counted when sample() is
// called, published along with the latency samples.
class IoRecorder {
 public:
  IoRecorder(Metrics& metrics, std::string_view host, std::string_view partition, std::string_view device,
             Sampling sampling = {});
  IoRecorder(IoRecorder&& other) noexcept;
  IoRecorder(const IoRecorder&) = delete;
  IoRecorder& operator=(const IoRecorder&) = delete;
  IoRecorder& operator=(IoRecorder&&) = delete;
  ~IoRecorder() { publish_counts(); }

  // Call once per operation, before it starts: true if it is to be timed.
  bool sample(IoOp op) noexcept {
    if (!latency_[index(op)].tick()) return false;
    publish_counts_if_due();
    return true;
  }
  // The timed operation's duration (only after sample(op) said true).
  void done(IoOp op, double seconds) noexcept { latency_[index(op)].observe(seconds); }
  // Asynchronous I/O, several operations in flight and completing in any
  // order (a driver's queue): when sample(op) says true, keep weight(op) with
  // the operation and pass it to done(op, seconds, weight) at its completion.
  std::uint32_t weight(IoOp op) const noexcept { return latency_[index(op)].weight(); }
  void done(IoOp op, double seconds, std::uint32_t weight) noexcept {
    latency_[index(op)].observe(seconds, weight);
  }
  void idle() noexcept {
    latency_[0].idle();
    latency_[1].idle();
    publish_counts_if_due();
  }
  void flush() noexcept {
    latency_[0].flush();
    latency_[1].flush();
    publish_counts();
  }

 private:
  static constexpr std::size_t index(IoOp op) noexcept { return op == IoOp::write ? 1 : 0; }
  std::uint64_t publications() const noexcept {
    return latency_[0].publications() + latency_[1].publications();
  }
  void publish_counts_if_due() noexcept {
    if (publications() != seen_publications_) publish_counts();
  }
  void publish_counts() noexcept;

  prometheus::Counter* counters_[2];        // read, write
  std::uint64_t published_ops_[2] = {0, 0};  // already added to them
  std::uint64_t seen_publications_ = 0;
  SampledHistogram latency_[2];
};

}  // namespace visorlab::metrics
