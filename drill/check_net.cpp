#include "drill/checks.hpp"

#include <algorithm>
#include <numeric>

namespace visorlab::drill::checks {
namespace {

// A frame not received this long after it was sent is judged dropped then,
// not at the end: a frame that late is lost to any user, and the frames
// waiting would otherwise grow with every fault of a long drill.
constexpr Nanos kGiveUp = 30'000'000'000;

}  // namespace

Affected affected_ids(const History& h) {
  Affected out;
  for (const auto& f : h.faults) {
    if (f.affected.empty()) {
      out.emplace_back();
      continue;
    }
    std::unordered_set<DeviceId> ids;
    for (const auto& name : f.affected) {
      if (const auto id = h.find_device(name)) ids.insert(*id);
    }
    out.emplace_back(std::move(ids));
  }
  return out;
}

NetCheck::NetCheck(const History& summary, const CheckOptions& options, const Affected& affected)
    : h_(summary), options_(options), affected_(affected), received_by_start_(summary.faults.size()),
      by_start_(summary.faults.size()) {
  std::iota(by_start_.begin(), by_start_.end(), std::size_t{0});
  std::stable_sort(by_start_.begin(), by_start_.end(),
                   [&](std::size_t a, std::size_t b) { return h_.faults[a].start < h_.faults[b].start; });
}

void NetCheck::snapshot_until(Nanos t) {
  // Receipts strictly before a fault's start count as arrived by then.
  while (next_start_ < by_start_.size() && h_.faults[by_start_[next_start_]].start <= t)
    received_by_start_[by_start_[next_start_++]] = max_received_;
}

void NetCheck::add(const Event& e) {
  if (e.kind != EventKind::frame_sent && e.kind != EventKind::frame_received) return;
  snapshot_until(e.at);
  if (e.at >= next_evict_) {
    evict(e.at);
    next_evict_ = e.at + 1'000'000'000;
  }
  if (e.kind == EventKind::frame_sent) {
    ++totals.sent;
    const Key k{Pair(e.device) << 32 | e.frame.peer, e.frame.seq};
    auto& top = max_sent_[k.pair];
    top = std::max(top, k.seq);
    if (early_.erase(k) != 0) return;  // its receipt came first (recorded on another clock tick)
    pending_.emplace(k, e.at);
    return;
  }
  ++totals.received;
  const Key k{Pair(e.frame.peer) << 32 | e.device, e.frame.seq};
  auto& top = max_received_[k.pair];
  top = std::max(top, k.seq);
  if (pending_.erase(k) != 0) return;
  const auto sent = max_sent_.find(k.pair);
  if (sent == max_sent_.end() || sent->second < k.seq) {
    early_.emplace(k, e.at);  // judged at the end: sent after all, or never
    return;
  }
  duplicated.add(e.at, [&] {
    return Offence{h_.device_name(e.device), e.frame.seq, e.at,
                   "frame seq " + std::to_string(e.frame.seq) + " from " + h_.device_name(e.frame.peer) +
                       " received at " + seconds(e.at) + " again"};
  });
}

void NetCheck::dropped(const Key& k, Nanos sent_at) {
  ++totals.dropped;
  const auto src = static_cast<DeviceId>(k.pair >> 32), dst = static_cast<DeviceId>(k.pair & 0xffffffffu);
  for (std::size_t f = 0; f < h_.faults.size(); ++f) {
    const FaultWindow& w = h_.faults[f];
    if (w.end != 0 && sent_at > w.end + options_.net_grace) continue;
    if (sent_at < w.start - options_.net_in_flight) {
      // Sent well before: excused only if it was still in flight when the fault struck.
      const auto& by_then = received_by_start_[f] ? *received_by_start_[f] : max_received_;
      const auto r = by_then.find(k.pair);
      if (r != by_then.end() && r->second >= k.seq) continue;
    }
    if (disturbs(affected_, f, src) || disturbs(affected_, f, dst)) return;
  }
  outside.add(sent_at, [&] {
    return Offence{h_.device_name(src), k.seq, sent_at,
                   "frame seq " + std::to_string(k.seq) + " to " + h_.device_name(dst) + " sent at " +
                       seconds(sent_at) + " was never received, outside every fault window"};
  });
}

void NetCheck::evict(Nanos now) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second < now - kGiveUp) {
      dropped(it->first, it->second);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void NetCheck::finish() {
  snapshot_until(kNever);
  for (const auto& [k, at] : pending_) dropped(k, at);
  pending_.clear();
  for (const auto& [k, at] : early_) {
    duplicated.add(at, [&, &k = k, at = at] {
      const auto src = static_cast<DeviceId>(k.pair >> 32), dst = static_cast<DeviceId>(k.pair & 0xffffffffu);
      return Offence{h_.device_name(dst), k.seq, at,
                     "frame seq " + std::to_string(k.seq) + " from " + h_.device_name(src) + " received at " +
                         seconds(at) + " was never sent"};
    });
  }
  totals.duplicated = duplicated.count;
  totals.dropped_outside_faults = outside.count;
}

}  // namespace visorlab::drill::checks
