#include <algorithm>
#include <cmath>

#include "drill/checks.hpp"

namespace visorlab::drill::checks {
namespace {

// Buckets 1% wide: bucket 0 holds values below 1, bucket i ≥ 1 [1.01^(i-1), 1.01^i).
const double kLogBase = std::log(1.01);
constexpr std::size_t kBuckets = 4096;  // up to 1.01^4095 ≈ 5e17

std::size_t bucket_of(double v) {
  if (!(v >= 1)) return 0;
  return std::min(kBuckets - 1, 1 + static_cast<std::size_t>(std::log(v) / kLogBase));
}

}  // namespace

void LatencySketch::add(double v) {
  if (count_ == 0 || v < min_) min_ = v;
  if (count_ == 0 || v > max_) max_ = v;
  ++count_;
  if (buckets_.empty() && exact_.size() < kExact) {
    exact_.push_back(v);
    return;
  }
  if (buckets_.empty()) {  // too many to keep: from here on, counted per bucket
    buckets_.assign(kBuckets, 0);
    for (const double x : exact_) bucket(x);
    exact_ = {};
  }
  bucket(v);
}

void LatencySketch::bucket(double v) { ++buckets_[bucket_of(v)]; }

double LatencySketch::quantile(double q) const {
  if (count_ == 0) return 0;
  const auto k = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  const std::uint64_t rank = std::min(count_ - 1, k == 0 ? 0 : k - 1);  // 0-based nearest rank
  if (buckets_.empty()) {
    std::vector<double> sorted = exact_;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank), sorted.end());
    return sorted[rank];
  }
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen > rank) {
      // The bucket's middle, within what was seen at all.
      const double mid = i == 0 ? 0.5 : std::exp((static_cast<double>(i) - 0.5) * kLogBase);
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

void LatencySketch::clear() { *this = LatencySketch(); }

}  // namespace visorlab::drill::checks
