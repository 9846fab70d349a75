#include "drill/checks.hpp"

#include <algorithm>

namespace visorlab::drill::checks {

void InputCheck::add(const Event& e) {
  if (e.kind != EventKind::input_produced && e.kind != EventKind::input_delivered) return;
  Device& d = devices_[e.device];
  const std::uint64_t seq = e.input.seq_no;
  if (e.kind == EventKind::input_produced) {
    d.produced_max = std::max(d.produced_max, seq);
    if (seq > d.highest) d.produced_at.emplace(seq, e.at);
    return;
  }
  ++totals.delivered;
  d.produced_at.erase(seq);
  if (seq > d.highest) {
    if (seq > d.highest + 1) d.gaps.emplace(d.highest + 1, Gap{seq - 1, seq, e.at});
    d.highest = seq;
    ++d.distinct;
    return;
  }
  const std::string& name = h_.device_name(e.device);
  out_of_order.add(e.at, [&] {
    return Offence{name, seq, e.at,
                   "seq_no " + std::to_string(seq) + " delivered at " + seconds(e.at) + " after seq_no " +
                       std::to_string(d.highest)};
  });
  // Late, not lost: it fills its place in a gap (delivered again fills none).
  auto g = d.gaps.upper_bound(seq);
  if (seq == 0 || g == d.gaps.begin()) return;
  --g;
  const std::uint64_t first = g->first;
  const Gap gap = g->second;
  if (seq > gap.last) return;
  ++d.distinct;
  d.gaps.erase(g);
  if (first < seq) d.gaps.emplace(first, Gap{seq - 1, gap.after, gap.at});
  if (seq < gap.last) d.gaps.emplace(seq + 1, gap);
}

void InputCheck::finish(Nanos end) {
  for (auto& [id, d] : devices_) {
    const std::string& name = h_.device_name(id);
    totals.sent += d.produced_max != 0 ? d.produced_max : d.highest;
    // Lost: every seq_no from 1 to the highest produced or delivered that never arrived.
    const std::uint64_t top = std::max(d.highest, d.produced_max);
    const std::uint64_t missing = top - d.distinct;
    if (missing == 0) continue;
    totals.lost += missing;
    const std::uint64_t first_missing = d.gaps.empty() ? d.highest + 1 : d.gaps.begin()->first;
    // When the loss shows: when it was produced, or when a later one arrived instead.
    Nanos at = end;
    std::string when = "never delivered";
    if (const auto p = d.produced_at.find(first_missing); p != d.produced_at.end()) {
      at = p->second;
      when = "produced at " + seconds(at) + ", never delivered";
    } else if (!d.gaps.empty()) {
      const Gap& g = d.gaps.begin()->second;
      at = g.at;
      when = "never delivered (seq_no " + std::to_string(g.after) + " arrived at " + seconds(g.at) + ")";
    }
    lost.add(at, [&] { return Offence{name, first_missing, at, "seq_no " + std::to_string(first_missing) + " " + when}; });
    lost.count += missing - 1;
  }
  totals.out_of_order = out_of_order.count;
}

}  // namespace visorlab::drill::checks
