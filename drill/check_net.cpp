#include "drill/checks.hpp"

#include <algorithm>
#include <unordered_map>

namespace visorlab::drill::checks {
namespace {

struct FrameKey {
  DeviceId src, dst;
  std::uint64_t seq;
  bool operator==(const FrameKey&) const = default;
};
struct FrameKeyHash {
  std::size_t operator()(const FrameKey& k) const noexcept {
    return std::hash<std::uint64_t>()(k.seq * 0x9E3779B97F4A7C15ull ^ (std::uint64_t(k.src) << 32 | k.dst));
  }
};

}  // namespace

// The devices each fault may disturb, as ids; nullopt: every device.
std::vector<std::optional<std::unordered_set<DeviceId>>> affected_ids(const History& h) {
  std::vector<std::optional<std::unordered_set<DeviceId>>> out;
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

NetCheck check_net(const History& h, const CheckOptions& options) {
  NetCheck c;
  struct Sent {
    Nanos at;
    std::uint32_t received = 0;
  };
  std::unordered_map<FrameKey, Sent, FrameKeyHash> frames;
  for (const Event& e : h.events) {
    if (e.kind != EventKind::frame_sent) continue;
    ++c.totals.sent;
    frames.emplace(FrameKey{e.device, e.frame.peer, e.frame.seq}, Sent{e.at});
  }
  for (const Event& e : h.events) {
    if (e.kind != EventKind::frame_received) continue;
    ++c.totals.received;
    const auto it = frames.find(FrameKey{e.frame.peer, e.device, e.frame.seq});
    const bool never_sent = it == frames.end();
    if (never_sent || ++it->second.received > 1) {
      c.duplicated.add(e.at, [&] {
        return Offence{h.device_name(e.device), e.frame.seq, e.at,
                       "frame seq " + std::to_string(e.frame.seq) + " from " + h.device_name(e.frame.peer) +
                           " received at " + seconds(e.at) + (never_sent ? " was never sent" : " again")};
      });
    }
  }
  c.totals.duplicated = c.duplicated.count;

  // Per (src, dst): receive times and the highest seq received by then, so
  // "was this frame still in flight when the fault began?" has an answer: a
  // link is FIFO, so if nothing sent after it had arrived by then, it had not
  // been delivered yet and the fault may have taken it.
  struct Arrival {
    Nanos at;
    std::uint64_t max_seq;
  };
  std::unordered_map<std::uint64_t, std::vector<Arrival>> arrivals;  // by src << 32 | dst
  for (const Event& e : h.events) {
    if (e.kind != EventKind::frame_received) continue;
    auto& v = arrivals[std::uint64_t(e.frame.peer) << 32 | e.device];
    v.push_back({e.at, std::max(e.frame.seq, v.empty() ? 0 : v.back().max_seq)});
  }
  const auto in_flight_at = [&](const Event& sent, Nanos t) {
    const auto it = arrivals.find(std::uint64_t(sent.device) << 32 | sent.frame.peer);
    if (it == arrivals.end()) return true;
    const auto& v = it->second;
    const auto after = std::lower_bound(v.begin(), v.end(), t, [](const Arrival& a, Nanos x) { return a.at < x; });
    return after == v.begin() || std::prev(after)->max_seq < sent.frame.seq;
  };

  const Nanos drill_end = h.end_time();
  const auto affected = affected_ids(h);
  const auto excused = [&](const Event& e) {
    for (std::size_t f = 0; f < h.faults.size(); ++f) {
      const FaultWindow& w = h.faults[f];
      const Nanos end = w.end != 0 ? w.end : drill_end;
      if (e.at > end + options.net_grace) continue;
      if (e.at < w.start - options.net_in_flight && !in_flight_at(e, w.start)) continue;
      if (!affected[f] || affected[f]->count(e.device) || affected[f]->count(e.frame.peer)) return true;
    }
    return false;
  };
  for (const Event& e : h.events) {
    if (e.kind != EventKind::frame_sent) continue;
    const auto it = frames.find(FrameKey{e.device, e.frame.peer, e.frame.seq});
    if (it == frames.end() || it->second.at != e.at || it->second.received != 0) continue;
    ++c.totals.dropped;
    if (excused(e)) continue;
    c.outside.add(e.at, [&] {
      return Offence{h.device_name(e.device), e.frame.seq, e.at,
                     "frame seq " + std::to_string(e.frame.seq) + " to " + h.device_name(e.frame.peer) + " sent at " +
                         seconds(e.at) + " was never received, outside every fault window"};
    });
  }
  c.totals.dropped_outside_faults = c.outside.count;
  return c;
}

}  // namespace visorlab::drill::checks
