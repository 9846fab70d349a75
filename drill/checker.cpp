#include "drill/checker.hpp"

#include <algorithm>
#include <cstdio>

#include "drill/checks.hpp"

namespace visorlab::drill {
namespace checks {

std::string seconds(Nanos t) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3fs", static_cast<double>(t) / 1e9);
  return text;
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  return text;
}

}  // namespace checks

using namespace checks;

namespace {

void fail(CheckResult& r, std::string what, std::uint64_t count, double limit, const std::optional<Offence>& first,
          std::string summary) {
  Failure f;
  f.what = std::move(what);
  f.count = count;
  f.limit = limit;
  if (first) {
    f.device = first->device;
    f.id = first->id;
    f.at = first->at;
    f.detail = summary + "; first: " + (first->device.empty() ? "" : first->device + " ") + first->detail;
  } else {
    f.detail = std::move(summary);
  }
  r.failures.push_back(std::move(f));
}

// Faults whose `field` exceeds `limit_ms`, the earliest first.
Tally faults_over(const std::vector<FaultResult>& faults, double limit_ms, double FaultResult::*field,
                  const char* what) {
  Tally t;
  for (const auto& f : faults) {
    if (f.*field <= limit_ms) continue;
    t.add(f.start, [&] {
      return Offence{f.target, f.step, f.start,
                     "step " + std::to_string(f.step) + " " + f.kind + " " + f.target + " at " + seconds(f.start) +
                         ": " + what + " " + number(f.*field) + " ms"};
    });
  }
  return t;
}

// The limits of the file's expect block, by key: lost_io, max_recovery_ms and the others.
std::vector<topology::Expectation> limits_of(const topology::Expect& expect) {
  std::vector<topology::Expectation> limits;
  if (expect.lost_io) limits.push_back({"lost_io", static_cast<double>(*expect.lost_io)});
  if (expect.max_recovery) limits.push_back({"max_recovery_ms", static_cast<double>(expect.max_recovery->count()) / 1e3});
  limits.insert(limits.end(), expect.others.begin(), expect.others.end());
  return limits;
}

std::optional<double> limit_of(const std::vector<topology::Expectation>& limits, std::string_view key) {
  for (const auto& l : limits)
    if (l.what == key) return l.limit;
  return std::nullopt;
}

}  // namespace

std::string Failure::message() const { return what + ": " + detail; }

struct Checker::Impl {
  Impl(History s, const topology::Expect& e, const CheckOptions& o)
      : summary(std::move(s)), limits(limits_of(e)), options(o), affected(affected_ids(summary)),
        disk(summary, options, affected), net(summary, options, affected), input(summary), faults(summary, affected),
        slow_limit_us(limit_of(limits, "max_disk_p99_us")) {
    summary.events.clear();
    summary.blocks.clear();
    const Nanos end = std::max<Nanos>(summary.end_time(), 1);
    timeline.bucket = std::max<Nanos>(options.timeline_bucket, 1'000'000);
    while (static_cast<std::size_t>(end / timeline.bucket) + 1 > kMaxTimelineBuckets) timeline.bucket *= 2;
  }

  void add(const Event& e, std::span<const BlockSeen> seen) {
    last = std::max(last, e.at);
    switch (e.kind) {
      case EventKind::disk_invoke:
        faults.invoked(e.device, e.at);
        disk.add(e, seen);
        break;
      case EventKind::disk_ok:
      case EventKind::disk_fail:
      case EventKind::disk_retried:
        if (const auto c = disk.add(e, seen); c && c->ok) completed_ok(*c);
        break;
      case EventKind::frame_sent:
      case EventKind::frame_received: net.add(e); break;
      case EventKind::input_produced:
      case EventKind::input_delivered: input.add(e); break;
    }
  }

  void completed_ok(const Completion& c) {
    faults.completed_ok(c.device, c.at);
    const double us = static_cast<double>(c.latency) / 1e3;
    if (slow_limit_us && us > *slow_limit_us) {
      slow.add(c.at, [&] {
        return Offence{summary.device_name(c.device), c.op_id, c.at,
                       "op " + std::to_string(c.op_id) + " completed at " + seconds(c.at) + " after " + number(us) +
                           " us"};
      });
    }
    // Completions come in time order: a bucket is done when the next begins.
    const auto b = static_cast<std::size_t>(std::max<Nanos>(c.at, 0) / timeline.bucket);
    if (b != bucket_at) close_bucket(b);
    bucket_latency.add(us);
  }

  void close_bucket(std::size_t next) {
    if (bucket_latency.count() != 0 && bucket_at < kMaxTimelineBuckets * 4) {
      if (timeline.ops.size() <= bucket_at) {
        timeline.ops.resize(bucket_at + 1);
        timeline.p99_us.resize(bucket_at + 1);
      }
      timeline.ops[bucket_at] += bucket_latency.count();
      timeline.p99_us[bucket_at] = std::max(timeline.p99_us[bucket_at].value_or(0), bucket_latency.quantile(0.99));
    }
    bucket_latency.clear();
    bucket_at = next;
  }

  CheckResult finish();

  History summary;
  std::vector<topology::Expectation> limits;
  CheckOptions options;
  Affected affected;
  DiskCheck disk;
  NetCheck net;
  InputCheck input;
  FaultCheck faults;
  std::optional<double> slow_limit_us;  // max_disk_p99_us
  Tally slow;                           // ops slower than it
  Timeline timeline;
  std::size_t bucket_at = 0;
  LatencySketch bucket_latency;
  Nanos last = 0;  // the latest event
};

Checker::Checker(History summary, const topology::Expect& expect, const CheckOptions& options)
    : impl_(std::make_unique<Impl>(std::move(summary), expect, options)) {}

Checker::~Checker() = default;

void Checker::add(const Event& e, std::span<const BlockSeen> seen) { impl_->add(e, seen); }

CheckResult Checker::finish() { return impl_->finish(); }

CheckResult check(const History& history, const topology::Expect& expect, const CheckOptions& options) {
  History summary;
  summary.name = history.name;
  summary.seed = history.seed;
  summary.end = history.end_time();
  summary.devices = history.devices;
  summary.texts = history.texts;
  summary.faults = history.faults;
  summary.recoveries = history.recoveries;
  summary.violations = history.violations;
  Checker checker(std::move(summary), expect, options);
  for (const Event& e : history.events) checker.add(e, history.seen(e));
  return checker.finish();
}

CheckResult Checker::Impl::finish() {
  CheckResult r;
  const Nanos end = summary.end != 0 ? summary.end : std::max(summary.end_time(), last);
  r.duration_s = static_cast<double>(end) / 1e9;
  close_bucket(0);
  timeline.ops.resize(static_cast<std::size_t>((std::max<Nanos>(end, 1) + timeline.bucket - 1) / timeline.bucket));
  timeline.p99_us.resize(timeline.ops.size());
  r.timeline = std::move(timeline);

  disk.finish();
  input.finish(end);
  net.finish();
  faults.finish(end);
  r.disk = disk.totals;
  r.disk.iops = r.duration_s > 0 ? static_cast<double>(r.disk.completed) / r.duration_s : 0;
  r.net = net.totals;
  r.input = input.totals;
  r.faults = faults.faults;
  r.violations = summary.violations;
  r.violations.insert(r.violations.end(), disk.io_error_violations.begin(), disk.io_error_violations.end());

  Tally violations;
  for (const auto& v : summary.violations) {
    violations.add(v.at, [&] { return Offence{v.device, 0, v.at, v.kind + " at " + seconds(v.at) + ": " + v.detail}; });
  }

  // Invariants: each offence counted, at most its limit — 0 unless the file's expect sets one.
  const std::vector<std::pair<std::string_view, const Tally*>> counted{
      {"lost_io", &disk.lost},
      {"duplicated_io", &disk.duplicated},
      {"verify_errors", &disk.verify},
      {"io_errors", &disk.io_errors},
      {"lost_input", &input.lost},
      {"out_of_order_input", &input.out_of_order},
      {"dropped_outside_faults", &net.outside},
      {"violations", &violations},
      {"net_duplicated", &net.duplicated},     // no key: always 0
      {"recovery_failed", &faults.failed},     // no key: always 0
      {"history", &faults.history},            // no key: always 0
      {"final_read", &disk.final_read},        // no key: always 0
  };
  for (const auto& [key, tally] : counted) {
    const double l = limit_of(limits, key).value_or(0);
    if (static_cast<double>(tally->count) > l) {
      fail(r, std::string(key), tally->count, l, tally->first, std::to_string(tally->count) + " > limit " + number(l));
    }
  }

  // The file's expect block, in its order, each judged.
  // max_recovery_ms judges recoveries — the steps that run one, phase by
  // phase (recover, crash); a pause, resume, partition or killed agent
  // disturbs I/O but recovers nothing: max_stall_ms judges those, and every
  // fault. Creating and destroying a device are operations, not failures:
  // their durations are reported, never judged.
  std::vector<FaultResult> recoveries, faults;
  for (const auto& f : r.faults) {
    if (f.kind == "destroy" || f.kind == "create") continue;
    faults.push_back(f);
    if (f.has_recovery) recoveries.push_back(f);
  }
  double worst_total = 0, worst_stall = 0;
  for (const auto& f : recoveries) worst_total = std::max(worst_total, f.total_ms);
  for (const auto& f : faults) worst_stall = std::max(worst_stall, f.stall_ms);
  for (const auto& [what, l] : limits) {
    const auto tally = std::find_if(counted.begin(), counted.end(), [&, &what = what](const auto& c) { return c.first == what; });
    if (tally != counted.end()) {
      const auto value = static_cast<double>(tally->second->count);
      r.expect.push_back(ExpectResult{what, l, value, value <= l});
    } else if (what == "max_recovery_ms" || what == "max_stall_ms") {
      const bool recovery = what == "max_recovery_ms";
      const double worst = recovery ? worst_total : worst_stall;
      r.expect.push_back(ExpectResult{what, l, worst, worst <= l});
      const Tally too_slow = recovery ? faults_over(recoveries, l, &FaultResult::total_ms, "recovery took")
                                      : faults_over(faults, l, &FaultResult::stall_ms, "disk I/O stalled");
      if (too_slow.count) fail(r, what, too_slow.count, l, too_slow.first, number(worst) + " ms > limit " + number(l) + " ms");
    } else if (what == "max_disk_p99_us") {
      const double p99 = r.disk.latency_us.p99;
      r.expect.push_back(ExpectResult{what, l, p99, p99 <= l});
      if (p99 > l) fail(r, what, slow.count, l, slow.first, "p99 " + number(p99) + " us > limit " + number(l) + " us");
    } else if (what == "min_disk_iops") {
      const bool ok = r.disk.iops >= l;
      r.expect.push_back(ExpectResult{what, l, r.disk.iops, ok});
      if (!ok) {
        fail(r, what, 0, l, std::nullopt,
             number(r.disk.iops) + " IOPS < limit " + number(l) + " (" + std::to_string(r.disk.completed) +
                 " ops completed in " + number(r.duration_s) + " s)");
      }
    } else {
      r.expect.push_back(ExpectResult{what, l, 0, false});
      fail(r, what, 0, l, std::nullopt, "unknown expectation");
    }
  }

  r.pass = r.failures.empty();
  return r;
}

}  // namespace visorlab::drill
