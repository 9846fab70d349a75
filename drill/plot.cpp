#include "drill/plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

namespace visorlab::drill {
namespace {

constexpr double kWidth = 1000;
constexpr double kLeft = 80, kRight = 30;
constexpr double kPlotWidth = kWidth - kLeft - kRight;
constexpr double kTop1 = 80, kPanelHeight = 190, kGap = 50;
constexpr double kTop2 = kTop1 + kPanelHeight + kGap;
constexpr double kBottom2 = kTop2 + kPanelHeight;
constexpr double kHeight = kBottom2 + 110;

struct PhaseStyle {
  const char* name;
  const char* letter;
  const char* color;
};
constexpr PhaseStyle kPhases[] = {
    {"detect", "d", "#7b1fa2"}, {"pause", "p", "#1565c0"}, {"restart", "r", "#c62828"}, {"resume", "s", "#2e7d32"}};

std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v, const char* f = "%.1f") {
  char text[32];
  std::snprintf(text, sizeof text, f, v);
  return text;
}

// A round axis step (1, 2 or 5 × 10^k) giving about `ticks` ticks up to `max`.
double nice_step(double max, int ticks) {
  if (max <= 0) return 1;
  const double raw = max / ticks;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

struct Panel {
  double top;
  double max;  // y value at the top
  double y(double v) const { return top + kPanelHeight - std::clamp(v / max, 0.0, 1.0) * kPanelHeight; }
};

void axis(std::ostringstream& svg, const Panel& p, double step, const std::string& label) {
  svg << "<g class=\"axis\" font-size=\"11\" fill=\"#333\">\n";
  for (double v = 0; v <= p.max + step / 2; v += step) {
    const double y = p.y(v);
    svg << "<line x1=\"" << kLeft << "\" y1=\"" << fmt(y) << "\" x2=\"" << kLeft + kPlotWidth << "\" y2=\"" << fmt(y)
        << "\" stroke=\"#e0e0e0\"/>\n";
    svg << "<text x=\"" << kLeft - 6 << "\" y=\"" << fmt(y + 4) << "\" text-anchor=\"end\">" << fmt(v, "%g")
        << "</text>\n";
  }
  svg << "<rect x=\"" << kLeft << "\" y=\"" << p.top << "\" width=\"" << kPlotWidth << "\" height=\"" << kPanelHeight
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
  const double mid = p.top + kPanelHeight / 2;
  svg << "<text x=\"18\" y=\"" << mid << "\" transform=\"rotate(-90 18 " << mid
      << ")\" text-anchor=\"middle\" font-size=\"12\">" << escape(label) << "</text>\n";
  svg << "</g>\n";
}

// A line through the buckets that have a value; gaps where they have none.
void series(std::ostringstream& svg, const Panel& p, const std::vector<std::optional<double>>& values, double bucket_s,
            double total_s, const char* color) {
  std::string path;
  bool pen_down = false;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!values[i]) {
      pen_down = false;
      continue;
    }
    const double x = kLeft + std::min((static_cast<double>(i) + 0.5) * bucket_s / total_s, 1.0) * kPlotWidth;
    path += (pen_down ? " L" : " M") + fmt(x) + " " + fmt(p.y(*values[i]));
    pen_down = true;
  }
  if (!path.empty()) {
    svg << "<path d=\"" << path.substr(1) << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\"/>\n";
  }
}

}  // namespace

std::string render_svg(const History& h, const CheckResult& r) {
  const Nanos end = std::max<Nanos>(std::llround(r.duration_s * 1e9), 1);
  const Timeline& line = r.timeline;
  const Nanos bucket = std::max<Nanos>(line.bucket, 1'000'000);
  const std::size_t buckets = line.ops.size();
  const double bucket_s = static_cast<double>(bucket) / 1e9;
  const double total_s = static_cast<double>(end) / 1e9;
  const auto x_of = [&](Nanos t) {
    return kLeft + std::clamp(static_cast<double>(t) / static_cast<double>(end), 0.0, 1.0) * kPlotWidth;
  };

  // IOPS and p99 latency per bucket, as the checker counted them.
  std::vector<std::optional<double>> iops(buckets), p99(buckets);
  double iops_max = 0, p99_max = 0;
  for (std::size_t b = 0; b < buckets; ++b) {
    iops[b] = static_cast<double>(line.ops[b]) / bucket_s;
    iops_max = std::max(iops_max, *iops[b]);
    if (b < line.p99_us.size() && line.p99_us[b]) {
      p99[b] = line.p99_us[b];
      p99_max = std::max(p99_max, *p99[b]);
    }
  }
  // A tenth of headroom, so the busiest bucket does not sit on the frame.
  const double iops_step = nice_step(iops_max * 1.1, 4);
  const double p99_step = nice_step(p99_max * 1.1, 4);
  const Panel top{kTop1, std::max(iops_step, std::ceil(iops_max * 1.1 / iops_step) * iops_step)};
  const Panel bottom{kTop2, std::max(p99_step, std::ceil(p99_max * 1.1 / p99_step) * p99_step)};

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << kWidth << " " << kHeight << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";

  // Title: name, result and the totals that decide it.
  const std::string title =
      "visorlab drill " + (h.name.empty() ? std::string("(unnamed)") : h.name) + " \u2014 " + (r.pass ? "PASS" : "FAIL");
  svg << "<title>" << escape(title) << "</title>\n";
  svg << "<text x=\"" << kLeft << "\" y=\"28\" font-size=\"18\" font-weight=\"bold\" fill=\""
      << (r.pass ? "#2e7d32" : "#c62828") << "\">" << escape(title) << "</text>\n";
  svg << "<text x=\"" << kLeft << "\" y=\"48\" font-size=\"12\" fill=\"#333\">"
      << escape("seed " + std::to_string(h.seed) + " \u00b7 " + fmt(total_s, "%.3f") + " s \u00b7 disk " +
                std::to_string(r.disk.completed) + "/" + std::to_string(r.disk.issued) + " ops, lost " +
                std::to_string(r.disk.lost) + ", verify errors " + std::to_string(r.disk.verify_errors) +
                " \u00b7 " + std::to_string(r.faults.size()) + " faults \u00b7 " +
                std::to_string(r.violations.size()) + " violations \u00b7 " +
                std::to_string(r.failures.size()) + " failures")
      << "</text>\n";

  axis(svg, top, iops_step, "disk IOPS (ops/s)");
  axis(svg, bottom, p99_step, "disk p99 latency (\u00b5s)");
  svg << "<text x=\"" << kLeft + 4 << "\" y=\"" << kTop1 - 6 << "\" font-size=\"12\">disk IOPS per "
      << fmt(bucket_s * 1e3, "%g") << " ms</text>\n";
  svg << "<text x=\"" << kLeft + 4 << "\" y=\"" << kTop2 - 6 << "\" font-size=\"12\">disk p99 latency per "
      << fmt(bucket_s * 1e3, "%g") << " ms</text>\n";

  // Time axis under both panels.
  const double t_step = nice_step(total_s, 10);
  svg << "<g class=\"time\" font-size=\"11\" fill=\"#333\">\n";
  for (double t = 0; t <= total_s + t_step / 1000; t += t_step) {
    const double x = kLeft + std::min(t / total_s, 1.0) * kPlotWidth;
    for (const double y : {kTop1 + kPanelHeight, kBottom2}) {
      svg << "<line x1=\"" << fmt(x) << "\" y1=\"" << y << "\" x2=\"" << fmt(x) << "\" y2=\"" << y + 4
          << "\" stroke=\"#999\"/>\n";
      svg << "<text x=\"" << fmt(x) << "\" y=\"" << y + 16 << "\" text-anchor=\"middle\">" << fmt(t, "%g")
          << "</text>\n";
    }
  }
  svg << "<text x=\"" << kLeft + kPlotWidth / 2 << "\" y=\"" << kBottom2 + 34
      << "\" text-anchor=\"middle\" font-size=\"12\">time since drill start (s)</text>\n</g>\n";

  // Fault windows, shaded across both panels and labelled.
  svg << "<g class=\"faults\">\n";
  for (std::size_t i = 0; i < r.faults.size(); ++i) {
    const auto& f = r.faults[i];
    const double x0 = x_of(f.start);
    const double x1 = std::max(x_of(std::max(f.end, f.resume_at)), x0 + 2);
    const std::string label = "step " + std::to_string(f.step) + ": " + f.kind + " " + f.target;
    for (const auto& p : {top, bottom}) {
      svg << "<rect x=\"" << fmt(x0) << "\" y=\"" << p.top << "\" width=\"" << fmt(x1 - x0) << "\" height=\""
          << kPanelHeight << "\" fill=\"#ff9800\" fill-opacity=\"0.22\"><title>" << escape(label) << "</title></rect>\n";
    }
    svg << "<text x=\"" << fmt(x0 + 2) << "\" y=\"" << kTop1 + 12 + 12 * static_cast<double>(i % 4)
        << "\" font-size=\"10\" fill=\"#e65100\">" << escape(label) << "</text>\n";
  }
  svg << "</g>\n";

  series(svg, top, iops, bucket_s, total_s, "#1565c0");
  series(svg, bottom, p99, bucket_s, total_s, "#6a1b9a");

  // Recovery phases: a tick across both panels where each phase ended.
  svg << "<g class=\"phases\" font-size=\"10\">\n";
  for (const auto& f : r.faults) {
    const Nanos at[] = {f.detect_at, f.pause_at, f.restart_at, f.resume_at};
    for (std::size_t k = 0; k < 4; ++k) {
      if (at[k] == 0) continue;
      const double x = x_of(at[k]);
      const std::string tip = "step " + std::to_string(f.step) + " " + kPhases[k].name + " at " +
                              fmt(static_cast<double>(at[k]) / 1e9, "%.3f") + " s";
      svg << "<line x1=\"" << fmt(x) << "\" y1=\"" << kTop1 << "\" x2=\"" << fmt(x) << "\" y2=\"" << kBottom2
          << "\" stroke=\"" << kPhases[k].color << "\" stroke-dasharray=\"3,2\"><title>" << escape(tip)
          << "</title></line>\n";
      svg << "<text x=\"" << fmt(x) << "\" y=\"" << kBottom2 - 4 - 10 * static_cast<double>(k)
          << "\" text-anchor=\"middle\" fill=\"" << kPhases[k].color << "\">" << kPhases[k].letter << "</text>\n";
    }
  }
  svg << "</g>\n";

  // Violations: a red mark on top of the IOPS panel.
  svg << "<g class=\"violations\">\n";
  for (const auto& v : r.violations) {
    const double x = x_of(v.at);
    svg << "<path d=\"M" << fmt(x - 5) << " " << kTop1 - 10 << " L" << fmt(x + 5) << " " << kTop1 - 10 << " L"
        << fmt(x) << " " << kTop1 << " Z\" fill=\"#c62828\"><title>"
        << escape(v.kind + " " + v.device + ": " + v.detail) << "</title></path>\n";
  }
  svg << "</g>\n";

  // Legend.
  double lx = kLeft;
  const double ly = kBottom2 + 62;
  svg << "<g class=\"legend\" font-size=\"11\">\n";
  const auto item = [&](const std::string& mark, const std::string& text) {
    svg << mark << "<text x=\"" << fmt(lx + 18) << "\" y=\"" << ly + 4 << "\">" << escape(text) << "</text>\n";
    lx += 30 + 7 * static_cast<double>(text.size());
  };
  item("<rect x=\"" + fmt(lx) + "\" y=\"" + fmt(ly - 6) + "\" width=\"14\" height=\"10\" fill=\"#ff9800\" fill-opacity=\"0.4\"/>",
       "fault window");
  for (const auto& p : kPhases) {
    item("<line x1=\"" + fmt(lx + 7) + "\" y1=\"" + fmt(ly - 7) + "\" x2=\"" + fmt(lx + 7) + "\" y2=\"" + fmt(ly + 5) +
             "\" stroke=\"" + p.color + "\" stroke-dasharray=\"3,2\"/>",
         std::string(p.letter) + " = " + p.name);
  }
  item("<path d=\"M" + fmt(lx + 2) + " " + fmt(ly - 6) + " L" + fmt(lx + 12) + " " + fmt(ly - 6) + " L" + fmt(lx + 7) +
           " " + fmt(ly + 4) + " Z\" fill=\"#c62828\"/>",
       "violation");
  svg << "</g>\n</svg>\n";
  return svg.str();
}

}  // namespace visorlab::drill
