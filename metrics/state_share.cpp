#include "metrics/state_share.hpp"

namespace visorlab::metrics {

StateShare::StateShare(Metrics& metrics, Family family, std::string host)
    : metrics_(metrics), family_(family), host_(std::move(host)) {}

StateShare::Share& StateShare::share(std::string_view state) {
  auto it = shares_.find(state);
  if (it == shares_.end()) {
    prometheus::Gauge& g = family_ == Family::partitions ? metrics_.partitions(host_, state)
                                                         : metrics_.devices(host_, state);
    it = shares_.emplace(std::string(state), Share{&g, 0}).first;
  }
  return it->second;
}

void StateShare::set(const std::map<std::string, std::int64_t, std::less<>>& counts) {
  for (auto& [state, s] : shares_)
    if (s.count != 0 && !counts.contains(state)) {
      s.gauge->Decrement(static_cast<double>(s.count));
      s.count = 0;
    }
  for (const auto& [state, n] : counts) {
    Share& s = share(state);
    if (n == s.count) continue;
    s.gauge->Increment(static_cast<double>(n - s.count));
    s.count = n;
  }
}

void StateShare::set_one(std::string_view state) {
  for (auto& [name, s] : shares_)
    if (s.count != 0 && name != state) {
      s.gauge->Decrement(static_cast<double>(s.count));
      s.count = 0;
    }
  Share& s = share(state);
  if (s.count != 1) {
    s.gauge->Increment(static_cast<double>(1 - s.count));
    s.count = 1;
  }
}

void StateShare::clear() {
  for (auto& [state, s] : shares_)
    if (s.count != 0) {
      s.gauge->Decrement(static_cast<double>(s.count));
      s.count = 0;
    }
}

}  // namespace visorlab::metrics
