#include "drill/report.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace visorlab::drill {
namespace {

using json = nlohmann::ordered_json;

// Rounded to `decimals`; whole numbers as integers so counts read as counts.
json num(double v, int decimals = 3) {
  const double scale = std::pow(10.0, decimals);
  const double r = std::round(v * scale) / scale;
  if (std::fabs(r) < 9.0e15 && r == std::trunc(r)) return static_cast<std::int64_t>(r);
  return r;
}

double to_s(Nanos t) { return static_cast<double>(t) / 1e9; }

std::string format(const char* fmt, double v) {
  char text[64];
  std::snprintf(text, sizeof text, fmt, v);
  return text;
}

// A phase's ms, or "-" where it does not apply.
std::string phase_ms(Nanos at, double ms) { return at == 0 ? "-" : format("%.1f", ms); }

}  // namespace

json report_json(const History& h, const CheckResult& r) {
  const auto& d = r.disk;
  json faults = json::array();
  for (const auto& f : r.faults) {
    faults.push_back({{"step", f.step},
                      {"kind", f.kind},
                      {"target", f.target},
                      {"at_s", num(to_s(f.start), 6)},
                      {"detect_ms", num(f.detect_ms)},
                      {"pause_ms", num(f.pause_ms)},
                      {"restart_ms", num(f.restart_ms)},
                      {"resume_ms", num(f.resume_ms)},
                      {"total_ms", num(f.total_ms)},
                      {"stall_ms", num(f.stall_ms)}});
  }
  json violations = json::array();
  for (const auto& v : r.violations) {
    violations.push_back({{"kind", v.kind}, {"device", v.device}, {"at_s", num(to_s(v.at), 6)}, {"detail", v.detail}});
  }
  json expect = json::array();
  for (const auto& e : r.expect) {
    expect.push_back({{"what", e.what}, {"limit", num(e.limit)}, {"value", num(e.value)}, {"ok", e.ok}});
  }
  return {
      {"visorlab_report", 1},
      {"name", h.name},
      {"seed", h.seed},
      {"result", r.pass ? "pass" : "fail"},
      {"final_read", {{"blocks", d.final_read.blocks}, {"ok", d.final_read.ok}, {"bad", d.final_read.bad}}},
      {"duration_s", num(r.duration_s)},
      {"io",
       {{"disk",
         {{"issued", d.issued},
          {"completed", d.completed},
          {"retried", d.retried},
          {"lost", d.lost},
          {"duplicated", d.duplicated},
          {"verify_errors", d.verify_errors},
          {"iops", num(d.iops, 1)},
          {"latency_us", {{"p50", num(d.latency_us.p50)}, {"p99", num(d.latency_us.p99)}, {"max", num(d.latency_us.max)}}}}},
        {"net",
         {{"sent", r.net.sent},
          {"received", r.net.received},
          {"dropped", r.net.dropped},
          {"dropped_outside_faults", r.net.dropped_outside_faults}}},
        {"input",
         {{"sent", r.input.sent},
          {"delivered", r.input.delivered},
          {"lost", r.input.lost},
          {"out_of_order", r.input.out_of_order}}}}},
      {"faults", std::move(faults)},
      {"violations", std::move(violations)},
      {"expect", std::move(expect)},
  };
}

std::string report_text(const History& h, const CheckResult& r) {
  std::ostringstream out;
  char line[256];
  out << "drill " << (h.name.empty() ? "(unnamed)" : h.name) << "  seed " << h.seed << "  "
      << format("%.3f", r.duration_s) << " s\n\n";

  out << "faults" << (r.faults.empty() ? "  (none)" : "") << "\n";
  if (!r.faults.empty()) {
    std::snprintf(line, sizeof line, "  %4s  %-10s %-14s %9s %8s %8s %8s %8s %8s %8s  %s\n", "step", "kind", "target",
                  "at_s", "detect", "pause", "restart", "resume", "total", "stall", "(ms)");
    out << line;
    for (const auto& f : r.faults) {
      std::snprintf(line, sizeof line, "  %4zu  %-10s %-14s %9.3f %8s %8s %8s %8s %8.1f %8.1f  %s\n", f.step,
                    f.kind.c_str(), f.target.c_str(), to_s(f.start), phase_ms(f.detect_at, f.detect_ms).c_str(),
                    phase_ms(f.pause_at, f.pause_ms).c_str(), phase_ms(f.restart_at, f.restart_ms).c_str(),
                    phase_ms(f.resume_at, f.resume_ms).c_str(), f.total_ms, f.stall_ms,
                    f.recovered ? "" : "NOT RECOVERED");
      out << line;
    }
  }

  const auto& d = r.disk;
  out << "\nio\n";
  std::snprintf(line, sizeof line,
                "  disk   issued %llu  completed %llu  failed %llu  retried %llu  lost %llu  duplicated %llu  "
                "verify_errors %llu\n",
                (unsigned long long)d.issued, (unsigned long long)d.completed, (unsigned long long)d.failed,
                (unsigned long long)d.retried, (unsigned long long)d.lost, (unsigned long long)d.duplicated,
                (unsigned long long)d.verify_errors);
  out << line;
  std::snprintf(line, sizeof line, "         io_errors %llu  final read %s\n", (unsigned long long)d.io_errors,
                d.final_read.checked ? (std::to_string(d.final_read.ok) + " of " + std::to_string(d.final_read.blocks) +
                                        " blocks read back intact")
                                           .c_str()
                                     : "off (verify: false)");
  out << line;
  std::snprintf(line, sizeof line, "         %.1f IOPS  latency p50 %.1f us  p99 %.1f us  max %.1f us\n", d.iops,
                d.latency_us.p50, d.latency_us.p99, d.latency_us.max);
  out << line;
  std::snprintf(line, sizeof line, "  net    sent %llu  received %llu  dropped %llu  dropped_outside_faults %llu\n",
                (unsigned long long)r.net.sent, (unsigned long long)r.net.received, (unsigned long long)r.net.dropped,
                (unsigned long long)r.net.dropped_outside_faults);
  out << line;
  std::snprintf(line, sizeof line, "  input  sent %llu  delivered %llu  lost %llu  out_of_order %llu\n",
                (unsigned long long)r.input.sent, (unsigned long long)r.input.delivered,
                (unsigned long long)r.input.lost, (unsigned long long)r.input.out_of_order);
  out << line;

  out << "\nviolations" << (r.violations.empty() ? "  (none)" : "") << "\n";
  for (const auto& v : r.violations) {
    out << "  " << format("%.3f", to_s(v.at)) << "s  " << v.kind << "  " << v.device << "  " << v.detail << "\n";
  }

  if (!r.expect.empty()) {
    out << "\nexpect\n";
    for (const auto& e : r.expect) {
      std::snprintf(line, sizeof line, "  %-24s limit %-10g value %-12g %s\n", e.what.c_str(), e.limit, e.value,
                    e.ok ? "ok" : "FAILED");
      out << line;
    }
  }

  if (!r.failures.empty()) {
    out << "\nfailures\n";
    for (const auto& f : r.failures) out << "  " << f.message() << "\n";
  }
  out << "\nresult: " << (r.pass ? "PASS" : "FAIL") << "\n";
  return out.str();
}

}  // namespace visorlab::drill
