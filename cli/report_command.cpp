// `visorlab report HISTORY`: a drill judged again from the history it saved
// (history.jsonl in its run dir) — the summary printed, the report and the
// plot written again — for a post-mortem, or after the drill's own process
// was lost.
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/output_files.hpp"
#include "drill/checker.hpp"
#include "drill/history_file.hpp"
#include "drill/plot.hpp"
#include "drill/report.hpp"
#include "topology/error.hpp"
#include "topology/load.hpp"

namespace visorlab::cli {
namespace {

struct ReportOptions {
  std::string history;
  std::string file;  // the drill file: its expect limits and whether disks were verified
  std::string report;
  std::string plot;
};

int run_report_command(const ReportOptions& o) {
  topology::Expect expect;
  drill::CheckOptions options;
  drill::History history;
  try {
    check_writable(o.report, "--report");
    check_writable(o.plot, "--plot");
    if (!o.file.empty()) {
      const topology::Topology t = topology::load_file(o.file);
      expect = t.expect;
      options.final_read = t.workload.disk.verify;
    }
    history = drill::load_history(o.history);
  } catch (const std::exception& e) {  // a bad file names itself (and its line)
    std::cerr << "visorlab report: " << e.what() << "\n";
    return kBadInput;
  }
  const drill::CheckResult result = drill::check(history, expect, options);
  std::cout << drill::report_text(history, result) << std::flush;
  try {
    if (!o.report.empty()) write_file(o.report, drill::report_json(history, result).dump(2) + "\n");
    if (!o.plot.empty()) write_file(o.plot, drill::render_svg(history, result));
  } catch (const std::exception& e) {
    std::cerr << "visorlab report: " << e.what() << "\n";
    return kInfrastructure;
  }
  return result.pass ? kPass : kInvariantFailed;
}

}  // namespace

void add_report_command(CLI::App& app, Action& action) {
  auto o = std::make_shared<ReportOptions>();
  auto* report = app.add_subcommand("report", "Judge a drill again from its saved history: summary, report, plot");
  report->add_option("HISTORY", o->history, "A drill's history (history.jsonl in its run dir)")->required();
  report->add_option("--file", o->file,
                     "The drill's file: judge its expect limits and final read (without it: the built-in checks only)");
  report->add_option("--report", o->report, "Write the JSON report here");
  report->add_option("--plot", o->plot, "Write an SVG timeline here");
  report->callback([&action, o] { action = [o] { return run_report_command(*o); }; });
}

}  // namespace visorlab::cli
