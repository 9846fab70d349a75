#include "drill/checks.hpp"

#include <algorithm>
#include <map>

namespace visorlab::drill::checks {

InputCheck check_input(const History& h) {
  InputCheck c;
  struct PerDevice {
    bool active = false;
    std::uint64_t produced_max = 0;
    std::map<std::uint64_t, Nanos> produced_at;
    std::vector<std::pair<std::uint64_t, Nanos>> delivered;  // in delivery order
  };
  std::vector<PerDevice> devices(h.devices.size());
  for (const Event& e : h.events) {
    PerDevice& d = devices.at(e.device);
    if (e.kind == EventKind::input_produced) {
      d.active = true;
      d.produced_max = std::max(d.produced_max, e.input.seq_no);
      d.produced_at.emplace(e.input.seq_no, e.at);
    } else if (e.kind == EventKind::input_delivered) {
      d.active = true;
      d.delivered.emplace_back(e.input.seq_no, e.at);
    }
  }

  for (std::size_t id = 0; id < devices.size(); ++id) {
    const PerDevice& d = devices[id];
    if (!d.active) continue;
    const std::string& name = h.devices[id];
    c.totals.delivered += d.delivered.size();

    std::uint64_t highest = 0;
    for (const auto& [seq, at] : d.delivered) {
      if (seq <= highest) {
        c.out_of_order.add(at, [&, seq = seq, at = at] {
          return Offence{name, seq, at,
                         "seq_no " + std::to_string(seq) + " delivered at " + seconds(at) + " after seq_no " +
                             std::to_string(highest)};
        });
      }
      highest = std::max(highest, seq);
    }
    c.totals.sent += d.produced_at.empty() ? highest : d.produced_max;

    // Lost: every seq_no from 1 to the highest produced or delivered that never arrived.
    const std::uint64_t top = std::max(highest, d.produced_max);
    std::vector<std::uint64_t> got;
    got.reserve(d.delivered.size());
    for (const auto& [seq, at] : d.delivered) {
      if (seq >= 1) got.push_back(seq);
    }
    std::sort(got.begin(), got.end());
    got.erase(std::unique(got.begin(), got.end()), got.end());
    const std::uint64_t missing = top - got.size();
    if (missing == 0) continue;
    c.totals.lost += missing;
    std::uint64_t first_missing = 1;
    for (const auto seq : got) {
      if (seq != first_missing) break;
      ++first_missing;
    }
    // When the loss shows: when it was produced, or when a later one arrived instead.
    Nanos at = h.end_time();
    std::string when = "never delivered";
    if (const auto p = d.produced_at.find(first_missing); p != d.produced_at.end()) {
      at = p->second;
      when = "produced at " + seconds(at) + ", never delivered";
    } else {
      for (const auto& [seq, t] : d.delivered) {
        if (seq > first_missing) {
          at = t;
          when = "never delivered (seq_no " + std::to_string(seq) + " arrived at " + seconds(t) + ")";
          break;
        }
      }
    }
    c.lost.add(at, [&] { return Offence{name, first_missing, at, "seq_no " + std::to_string(first_missing) + " " + when}; });
    c.lost.count += missing - 1;
  }
  c.totals.out_of_order = c.out_of_order.count;
  return c;
}

}  // namespace visorlab::drill::checks
