#include "metrics/local.hpp"

#include <algorithm>
#include <functional>

namespace visorlab::metrics {

namespace {

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

SampledHistogram::SampledHistogram(prometheus::Histogram& target, const std::vector<double>& bounds,
                                   Sampling sampling, std::uint64_t seed)
    : target_(&target),
      bounds_(bounds),
      increments_(bounds.size() + 1, 0.0),
      sampling_(sampling),
      rng_(seed ? seed : 1) {
  sampling_.every = std::max<std::uint32_t>(sampling_.every, 1);
  sampling_.max_every = std::max(sampling_.max_every, sampling_.every);
  sampling_.flush_every = std::max<std::uint32_t>(sampling_.flush_every, 1);
  every_ = sampling_.every;
  // Publishing nothing checks the bucket count: prometheus-cpp throws
  // std::length_error if it differs from the histogram's.
  target_->ObserveMultiple(increments_, 0);
  interval_ = countdown_ = next_interval();
  if (sampling_.adaptive) last_sample_ns_ = last_publish_ns_ = now_ns();
}

SampledHistogram::SampledHistogram(SampledHistogram&& other) noexcept
    : target_(other.target_),
      bounds_(std::move(other.bounds_)),
      increments_(std::move(other.increments_)),
      sum_(other.sum_),
      samples_(other.samples_),
      interval_(other.interval_),
      countdown_(other.countdown_),
      weight_(other.weight_),
      every_(other.every_),
      idle_calls_(other.idle_calls_),
      restart_(other.restart_),
      sampling_(other.sampling_),
      rng_(other.rng_),
      last_sample_ns_(other.last_sample_ns_),
      last_publish_ns_(other.last_publish_ns_),
      publications_(other.publications_),
      completed_(other.completed_) {
  other.samples_ = 0;  // nothing left for the moved-from object to publish
}

std::uint32_t SampledHistogram::next_interval() noexcept {
  if (every_ == 1) return 1;
  // xorshift64: a few cycles, once per sample.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const std::uint64_t span = 2ull * every_ - 1;  // uniform 1 … 2*every-1, mean `every`
  return static_cast<std::uint32_t>(1 + rng_ % span);
}

void SampledHistogram::start_sample() noexcept {
  weight_ = interval_;  // this sample stands for the interval it ends
  completed_ += interval_;
  if (sampling_.adaptive) {
    const std::int64_t now = now_ns();
    const std::int64_t elapsed = std::max<std::int64_t>(now - last_sample_ns_, 1);
    last_sample_ns_ = now;
    if (restart_) {
      // idle_check() cut the interval: its operations and the quiet spell
      // after them say nothing about the rate now. Learn it again from 1.
      restart_ = false;
      every_ = 1;
    } else {
      // The rate over the interval just ended, as operations per `spacing`;
      // at most 8x up or down per sample, so one odd interval cannot swing it.
      const double estimate = static_cast<double>(weight_) * static_cast<double>(sampling_.spacing.count()) /
                              static_cast<double>(elapsed);
      const double lo = std::max(1.0, every_ / 8.0);
      const double hi = std::min<double>(sampling_.max_every, every_ * 8.0);
      every_ = static_cast<std::uint32_t>(std::clamp(estimate + 0.5, lo, std::max(lo, hi)));
    }
    if (now - last_publish_ns_ >= sampling_.publish_period.count()) flush();
  }
  interval_ = countdown_ = next_interval();
}

void SampledHistogram::observe(double seconds, std::uint32_t weight) noexcept {
  // Prometheus buckets are upper-inclusive (le): the first bound >= value.
  const auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
                                               bounds_.begin());
  increments_[bucket] += weight;
  sum_ += seconds * weight;
  if (++samples_ >= sampling_.flush_every) flush();
}

void SampledHistogram::idle_check() noexcept {
  if (!sampling_.adaptive) {
    flush();
    return;
  }
  const std::int64_t now = now_ns();
  // Even without samples: an IoRecorder's counts ride along.
  if (now - last_publish_ns_ >= sampling_.publish_period.count()) flush();
  if (countdown_ > 1 && now - last_sample_ns_ > 2 * sampling_.spacing.count()) {
    interval_ -= countdown_ - 1;  // the operations done so far, plus the next one
    countdown_ = 1;
    restart_ = true;
  }
}

void SampledHistogram::flush() noexcept {
  ++publications_;  // counts ride along even when no sample is pending
  if (sampling_.adaptive) last_publish_ns_ = now_ns();
  if (samples_ == 0) return;
  target_->ObserveMultiple(increments_, sum_);  // sizes checked in the constructor
  std::fill(increments_.begin(), increments_.end(), 0.0);
  sum_ = 0;
  samples_ = 0;
}

IoRecorder::IoRecorder(Metrics& metrics, std::string_view host, std::string_view partition,
                       std::string_view device, Sampling sampling)
    : counters_{&metrics.io_ops(host, partition, device, IoOp::read),
                &metrics.io_ops(host, partition, device, IoOp::write)},
      // A different random stream per device and op.
      latency_{SampledHistogram(metrics.io_latency(host, partition, device), io_latency_buckets(), sampling,
                                std::hash<std::string_view>{}(device) ^ 0x9E3779B97F4A7C15ull),
               SampledHistogram(metrics.io_latency(host, partition, device), io_latency_buckets(), sampling,
                                std::hash<std::string_view>{}(device) ^ 0xD1B54A32D192ED03ull)} {
  seen_publications_ = publications();
}

IoRecorder::IoRecorder(IoRecorder&& other) noexcept
    : counters_{other.counters_[0], other.counters_[1]},
      published_ops_{other.published_ops_[0], other.published_ops_[1]},
      seen_publications_(other.seen_publications_),
      latency_{std::move(other.latency_[0]), std::move(other.latency_[1])} {
  // The moved-from recorder's samplers keep their tick counts: make its
  // destructor see nothing left to publish.
  other.published_ops_[0] = other.latency_[0].ticks();
  other.published_ops_[1] = other.latency_[1].ticks();
}

void IoRecorder::publish_counts() noexcept {
  seen_publications_ = publications();
  for (std::size_t i = 0; i < 2; ++i) {
    const std::uint64_t ticks = latency_[i].ticks();
    if (ticks != published_ops_[i]) {
      counters_[i]->Increment(static_cast<double>(ticks - published_ops_[i]));
      published_ops_[i] = ticks;
    }
  }
}

}  // namespace visorlab::metrics
