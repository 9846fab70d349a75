#define BOOST_TEST_MODULE cli_drill
#include <boost/test/unit_test.hpp>
// `visorlab drill [FILE]` run as a user would: the real binary starts a local
// cluster (agent, partition-host and service-partition processes, shared
// memory, TCP between hosts), runs the drill, tears down and judges. Each case
// writes a small drill file into its own scratch directory, runs the drill
// with --run-dir there, checks the exit code, the summary and the report
// against DESIGN.md, and afterwards that no process it started and no shared
// memory name of its orchestrator is left behind.
//
// Small on purpose: one host unless the fault needs two, two guests, 3–4 s,
// so the whole suite stays within a few minutes on 2 cores.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/leftovers.hpp"
#include "tests/support/run.hpp"
#include "tests/support/scratch.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;
using visorlab::test::bin;
using visorlab::test::run;
using visorlab::test::RunResult;
using visorlab::test::read_text;
using visorlab::test::Scratch;
using visorlab::test::write_text;

namespace {

bool contains(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

// The last `n` lines of `text`.
std::string tail(const std::string& text, std::size_t n) {
  std::size_t pos = text.size();
  for (std::size_t lines = 0; pos > 0 && lines <= n; --pos)
    if (text[pos - 1] == '\n') ++lines;
  return pos == 0 ? text : text.substr(pos + 1);
}

// ---------------------------------------------------------------------------
// Drill files. One host: io0 and con0 on a, two guests with every device
// kind. Two hosts: io0 on b, con0 on a, guests round-robin, so g0's disk and
// NIC cross hosts over TCP.

std::string single_host(const std::string& name, const std::string& duration, const std::string& steps,
                        const std::string& expect = "{lost_io: 0, max_recovery_ms: 1000}") {
  return "version: 1\n"
         "name: " + name + "\n"
         "hosts:\n"
         "  - {name: a}\n"
         "command: {host: a}\n"
         "services:\n"
         "  - name: io0\n"
         "    kind: io\n"
         "    host: a\n"
         "    switches: [{name: sw0}]\n"
         "  - {name: con0, kind: console, host: a}\n"
         "guests:\n"
         "  - name: g\n"
         "    count: 2\n"
         "    host: a\n"
         "    devices:\n"
         "      - {kind: vhba, service: io0, disk_size: 16MiB}\n"
         "      - {kind: vnic, service: io0, switch: sw0}\n"
         "      - {kind: keyboard, service: con0}\n"
         "      - {kind: mouse, service: con0}\n"
         "workload:\n"
         "  disk:  {block_size: 4KiB, queue_depth: 8, read_ratio: 0.5, verify: true}\n"
         "  net:   {frame_size: 1500, rate: 1000/s}\n"
         "  input: {rate: 200/s}\n"
         "drill:\n"
         "  seed: 7\n"
         "  duration: " + duration + "\n" +
         (steps.empty() ? std::string() : "  steps:\n" + steps) +
         (expect.empty() ? std::string() : "expect: " + expect + "\n");
}

std::string two_hosts(const std::string& name, const std::string& duration, const std::string& steps) {
  return "version: 1\n"
         "name: " + name + "\n"
         "hosts:\n"
         "  - {name: a}\n"
         "  - {name: b}\n"
         "command: {host: a}\n"
         "services:\n"
         "  - name: io0\n"
         "    kind: io\n"
         "    host: b\n"
         "    switches: [{name: sw0}]\n"
         "  - {name: con0, kind: console, host: a}\n"
         "guests:\n"
         "  - name: g\n"
         "    count: 2\n"
         "    host: [a, b]\n"
         "    devices:\n"
         "      - {kind: vhba, service: io0, disk_size: 16MiB}\n"
         "      - {kind: vnic, service: io0, switch: sw0}\n"
         "      - {kind: keyboard, service: con0}\n"
         "workload:\n"
         "  disk:  {block_size: 4KiB, queue_depth: 8, read_ratio: 0.5, verify: true}\n"
         "  net:   {frame_size: 1500, rate: 1000/s}\n"
         "  input: {rate: 200/s}\n"
         "drill:\n"
         "  seed: 11\n"
         "  duration: " + duration + "\n"
         "  steps:\n" + steps +
         "expect: {lost_io: 0, max_recovery_ms: 1000}\n";
}

// ---------------------------------------------------------------------------
// A scratch directory per test case (tests/support/scratch.hpp), and the
// drills run in it.

struct DrillRun {
  RunResult r;
  pid_t pid = 0;        // the drill process, which is the orchestrator: its shared memory is "visorlab-o<pid>.*"
  std::string tag;      // in the environment of every process it starts
  fs::path run_dir;
  double seconds = 0;

  std::string output() const { return r.out + r.err; }

  // Everything useful when an expectation fails: the output and the end of
  // every log of the run.
  std::string describe() const {
    std::ostringstream s;
    s << "exit " << r.exit_code << (r.timed_out ? " (TIMED OUT)" : "") << " after " << seconds << " s, run dir "
      << run_dir.string() << "\n--- stdout ---\n"
      << r.out << "--- stderr ---\n"
      << r.err;
    std::error_code ec;
    if (!run_dir.empty() && fs::is_directory(run_dir, ec))
      for (const auto& e : fs::recursive_directory_iterator(run_dir, ec))
        if (e.path().extension() == ".log")
          s << "--- " << e.path().string() << " (last 25 lines) ---\n" << tail(read_text(e.path()), 25) << "\n";
    return s.str();
  }
};

void expect_nothing_left(const DrillRun& d);

// Runs `visorlab drill ARGS… --run-dir DIR` (DIR in the scratch directory)
// with VAR=VALUE pairs `env` added to its environment, then checks it left
// nothing behind. `bash -c 'echo $$; exec …'` tells us the drill's pid: exec
// keeps it.
DrillRun drill(const Scratch& s, std::vector<std::string> args, const std::vector<std::string>& env = {},
               std::chrono::seconds timeout = 90s) {
  static std::atomic<int> next{0};
  DrillRun d;
  d.tag = std::to_string(getpid()) + "-" + std::to_string(next++);
  d.run_dir = s.dir / ("run-" + d.tag);
  args.insert(args.end(), {"--run-dir", d.run_dir.string()});
  // The wrapper also closes every descriptor above 2: run() leaves its pipes'
  // write ends open in the child, and a drill's agents would inherit them, so
  // a process the drill left behind would hold run() until its timeout
  // instead of being reported below.
  std::vector<std::string> argv{
      "/bin/bash", "-c",
      "echo \"visorlab-test-pid $$\"; for fd in $(ls /proc/$$/fd); do "
      "if [ \"$fd\" -gt 2 ]; then eval \"exec $fd>&-\" 2>/dev/null; fi; done; exec \"$@\"",
      "bash", "/usr/bin/env", "VISORLAB_DRILL_TEST_TAG=" + d.tag};
  argv.insert(argv.end(), env.begin(), env.end());
  argv.insert(argv.end(), {bin("visorlab"), "drill"});
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = std::chrono::steady_clock::now();
  d.r = run(argv, timeout);
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string marker = "visorlab-test-pid ";
  if (d.r.out.rfind(marker, 0) == 0) {
    const auto eol = d.r.out.find('\n');
    d.pid = static_cast<pid_t>(std::atol(d.r.out.c_str() + marker.size()));
    d.r.out.erase(0, eol == std::string::npos ? d.r.out.size() : eol + 1);
  }
  BOOST_TEST_MESSAGE("drill " << d.tag << ": exit " << d.r.exit_code << (d.r.timed_out ? " (timed out)" : "")
                               << " in " << d.seconds << " s");
  expect_nothing_left(d);
  return d;
}

// ---------------------------------------------------------------------------
// Leftovers.

// `visorlab agent|partition-host|service-partition` processes this drill
// started: they carry its tag in their environment or its run dir in their
// command line. (What `pgrep -f "visorlab (agent|partition-host|service-partition)"`
// finds, narrowed to ours: other drills may run on this machine.)
std::map<pid_t, std::string> processes_of(const DrillRun& d) {
  return visorlab::test::visorlab_processes([&](const auto& argv, const auto& environ) {
    if (argv.size() < 2 || (argv[1] != "agent" && argv[1] != "partition-host" && argv[1] != "service-partition"))
      return false;
    return std::find(environ.begin(), environ.end(), "VISORLAB_DRILL_TEST_TAG=" + d.tag) != environ.end() ||
           std::find(argv.begin(), argv.end(), d.run_dir.string()) != argv.end();
  });
}

// Shared memory names of the drill's orchestrator (they carry its tag).
std::vector<std::string> shm_of(const DrillRun& d) { return visorlab::test::shm_of_orchestrator(d.pid); }

// After the drill has exited nothing of it may remain. A process still
// exiting gets a moment; whatever stays is reported, then removed so the next
// case starts clean.
void expect_nothing_left(const DrillRun& d) {
  BOOST_TEST(d.pid > 0, "the drill's pid is unknown; stdout:\n" << d.r.out);
  auto left = processes_of(d);
  for (int i = 0; i < 20 && !left.empty(); ++i) {
    std::this_thread::sleep_for(100ms);
    left = processes_of(d);
  }
  for (const auto& [pid, cmdline] : left) {
    BOOST_ERROR("drill " << d.tag << " left process " << pid << " running: " << cmdline);
    ::kill(pid, SIGKILL);
  }
  for (const auto& name : shm_of(d)) {
    BOOST_ERROR("drill " << d.tag << " left /dev/shm/" << name);
    fs::remove(fs::path("/dev/shm") / name);
  }
}

// ---------------------------------------------------------------------------
// The report (DESIGN.md "Report").

bool is_count(const json& j) { return j.is_number_unsigned() || (j.is_number_integer() && j.get<long long>() >= 0); }

void expect_report_contract(const json& j) {
  BOOST_TEST_REQUIRE(j.is_object());
  BOOST_TEST(j.value("visorlab_report", 0) == 1);
  BOOST_TEST(j["name"].is_string());
  BOOST_TEST(is_count(j["seed"]));
  BOOST_TEST((j["result"] == "pass" || j["result"] == "fail"));
  BOOST_TEST(j["duration_s"].is_number());

  const json& io = j["io"];
  BOOST_TEST_REQUIRE(io.is_object());
  const std::vector<std::pair<std::string, std::vector<std::string>>> counts{
      {"disk", {"issued", "completed", "retried", "lost", "duplicated", "verify_errors"}},
      {"net", {"sent", "received", "dropped", "dropped_outside_faults"}},
      {"input", {"sent", "delivered", "lost", "out_of_order"}}};
  for (const auto& [group, fields] : counts) {
    BOOST_TEST_REQUIRE(io[group].is_object(), "io." << group);
    for (const auto& f : fields) BOOST_TEST(is_count(io[group][f]), "io." << group << "." << f << " = " << io[group][f]);
  }
  BOOST_TEST(io["disk"]["iops"].is_number());
  for (const char* p : {"p50", "p99", "max"}) BOOST_TEST(io["disk"]["latency_us"][p].is_number(), "latency_us." << p);

  BOOST_TEST_REQUIRE(j["faults"].is_array());
  for (const auto& f : j["faults"]) {
    BOOST_TEST(is_count(f["step"]));
    BOOST_TEST(f["kind"].is_string());
    BOOST_TEST(f["target"].is_string());
    for (const char* k : {"at_s", "detect_ms", "pause_ms", "restart_ms", "resume_ms", "total_ms", "stall_ms"})
      BOOST_TEST(f[k].is_number(), "faults[].'" << k << "' in " << f.dump());
  }
  BOOST_TEST_REQUIRE(j["violations"].is_array());
  for (const auto& v : j["violations"]) {
    BOOST_TEST(v["kind"].is_string());
    BOOST_TEST(v["device"].is_string());
    BOOST_TEST(v["at_s"].is_number());
    BOOST_TEST(v["detail"].is_string());
  }
  BOOST_TEST_REQUIRE(j["expect"].is_array());
  for (const auto& e : j["expect"]) {
    BOOST_TEST(e["what"].is_string());
    BOOST_TEST(e["limit"].is_number());
    BOOST_TEST(e["value"].is_number());
    BOOST_TEST(e["ok"].is_boolean());
  }
}

json load_report(const fs::path& file) {
  const std::string text = read_text(file);
  BOOST_TEST_REQUIRE(!text.empty(), "no report at " << file);
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    BOOST_FAIL("the report " << file << " is not JSON: " << e.what() << "\n" << text);
  }
  return {};
}

// The report's fault entries, in step order.
std::vector<json> faults_of(const json& report) {
  std::vector<json> faults(report["faults"].begin(), report["faults"].end());
  std::sort(faults.begin(), faults.end(), [](const json& a, const json& b) { return a["step"] < b["step"]; });
  return faults;
}

// A recovery's phases: the ones that apply are above zero, none is negative
// (each is timed from the end of the one before, so a negative phase is one
// out of order), and together they make up the total.
void expect_phases(const json& f, bool detected) {
  BOOST_TEST_CONTEXT("fault " << f.dump()) {
    const double detect = f["detect_ms"], pause = f["pause_ms"], restart = f["restart_ms"], resume = f["resume_ms"];
    if (detected) BOOST_TEST(detect > 0.0);
    BOOST_TEST(detect >= 0.0);
    BOOST_TEST(pause > 0.0);
    BOOST_TEST(restart > 0.0);
    BOOST_TEST(resume > 0.0);
    const double total = f["total_ms"];
    BOOST_TEST(total > 0.0);
    BOOST_TEST(std::abs(detect + pause + restart + resume - total) < 0.05);
    BOOST_TEST(f["stall_ms"].get<double>() >= 0.0);
  }
}

// ---------------------------------------------------------------------------
// SVG: well-formed XML with an <svg> root. A small checker — the plot is our
// own output, so elements, attributes, text, comments and entities suffice.

std::string svg_problem(const std::string& text) {
  std::vector<std::string> open;
  std::size_t elements = 0;
  bool root_closed = false;
  auto entity_ok = [&](std::size_t amp) {
    const auto semi = text.find(';', amp);
    if (semi == std::string::npos || semi - amp > 10) return false;
    const std::string name = text.substr(amp + 1, semi - amp - 1);
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") return true;
    if (name.size() > 1 && name[0] == '#')
      return std::all_of(name.begin() + 1, name.end(), [](unsigned char c) { return std::isxdigit(c) || c == 'x'; });
    return false;
  };
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c != '<') {
      if (c == '&' && !entity_ok(i)) return "bad entity at offset " + std::to_string(i);
      if (c == '>') return "stray '>' at offset " + std::to_string(i);
      if (open.empty() && !std::isspace((unsigned char)c)) return "text outside the root at offset " + std::to_string(i);
      ++i;
      continue;
    }
    if (text.compare(i, 4, "<!--") == 0) {
      const auto end = text.find("-->", i + 4);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    if (text.compare(i, 2, "<?") == 0 || text.compare(i, 2, "<!") == 0) {
      if (!open.empty() || elements) return "declaration inside the document at offset " + std::to_string(i);
      const auto end = text.find('>', i);
      if (end == std::string::npos) return "unterminated declaration";
      i = end + 1;
      continue;
    }
    const bool closing = text.compare(i, 2, "</") == 0;
    std::size_t j = i + (closing ? 2 : 1);
    const std::size_t name_start = j;
    while (j < text.size() && (std::isalnum((unsigned char)text[j]) || text[j] == '-' || text[j] == ':' || text[j] == '_'))
      ++j;
    const std::string name = text.substr(name_start, j - name_start);
    if (name.empty()) return "a tag without a name at offset " + std::to_string(i);
    // Attributes: name="value" or name='value'.
    bool self_closing = false;
    for (;;) {
      while (j < text.size() && std::isspace((unsigned char)text[j])) ++j;
      if (j >= text.size()) return "unterminated tag <" + name;
      if (text[j] == '>') {
        ++j;
        break;
      }
      if (text.compare(j, 2, "/>") == 0 && !closing) {
        self_closing = true;
        j += 2;
        break;
      }
      if (closing) return "attributes in </" + name + ">";
      const std::size_t attr = j;
      while (j < text.size() && !std::isspace((unsigned char)text[j]) && text[j] != '=' && text[j] != '>') ++j;
      if (j == attr || j >= text.size() || text[j] != '=') return "bad attribute in <" + name + "> at offset " + std::to_string(attr);
      ++j;
      if (j >= text.size() || (text[j] != '"' && text[j] != '\'')) return "unquoted attribute in <" + name + ">";
      const char quote = text[j];
      const auto end = text.find(quote, j + 1);
      if (end == std::string::npos) return "unterminated attribute value in <" + name + ">";
      for (std::size_t k = j + 1; k < end; ++k) {
        if (text[k] == '<') return "'<' in an attribute of <" + name + ">";
        if (text[k] == '&' && !entity_ok(k)) return "bad entity in an attribute of <" + name + ">";
      }
      j = end + 1;
    }
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
      if (open.empty()) root_closed = true;
    } else {
      if (root_closed) return "a second root element <" + name + ">";
      if (open.empty() && elements == 0 && name != "svg") return "the root is <" + name + ">, not <svg>";
      ++elements;
      if (!self_closing) open.push_back(name);
      else if (open.empty()) root_closed = true;
    }
    i = j;
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (!root_closed) return "no root element";
  if (elements < 5) return "only " + std::to_string(elements) + " elements";
  return "";
}

void expect_plot(const fs::path& plot) {
  const std::string svg = read_text(plot);
  BOOST_TEST_REQUIRE(!svg.empty(), "no plot at " << plot);
  BOOST_TEST(svg_problem(svg) == "", "first 400 bytes:\n" << svg.substr(0, 400));
}

// ---------------------------------------------------------------------------
// The usual outcome of a drill that should pass.

json expect_pass(const DrillRun& d, const fs::path& report) {
  BOOST_TEST_REQUIRE(!d.r.timed_out, d.describe());
  BOOST_TEST(d.r.exit_code == 0, d.describe());
  BOOST_TEST(contains(d.r.out, "result: PASS"));
  const json j = load_report(report);
  expect_report_contract(j);
  BOOST_TEST(j["result"] == "pass", j.dump(2));
  BOOST_TEST(j["io"]["disk"]["issued"].get<long long>() > 0);
  BOOST_TEST(j["io"]["disk"]["lost"] == 0);
  BOOST_TEST(j["io"]["disk"]["verify_errors"] == 0);
  BOOST_TEST(j["violations"].empty(), j["violations"].dump(2));
  for (const auto& e : j["expect"]) BOOST_TEST(e["ok"] == true, e.dump());
  return j;
}

// One fault kind on its own: the drill passes and its report lists exactly
// the given steps with their kinds and targets.
std::vector<json> run_fault_drill(const std::string& yaml_name, const std::string& yaml,
                                  const std::vector<std::pair<std::string, std::string>>& kinds_and_targets) {
  Scratch s;
  const fs::path file = s.file(yaml_name, yaml);
  const fs::path report = s.dir / "r.json";
  const fs::path plot = s.dir / "p.svg";
  const DrillRun d = drill(s, {file.string(), "--report", report.string(), "--plot", plot.string()});
  const json j = expect_pass(d, report);
  expect_plot(plot);
  const auto faults = faults_of(j);
  BOOST_TEST_REQUIRE(faults.size() == kinds_and_targets.size(), j["faults"].dump(2));
  for (std::size_t i = 0; i < faults.size(); ++i) {
    BOOST_TEST(faults[i]["step"] == i);
    BOOST_TEST(faults[i]["kind"] == kinds_and_targets[i].first, faults[i].dump());
    BOOST_TEST(faults[i]["target"] == kinds_and_targets[i].second, faults[i].dump());
    BOOST_TEST(faults[i]["at_s"].get<double>() > 0.0);
  }
  return faults;
}

// A malformed file: exit 2 at once, and stderr names FILE:LINE:COLUMN: FIELD.
void expect_bad_input(const std::string& yaml, const std::string& point_at, const std::string& field,
                      const std::string& says) {
  Scratch s;
  const fs::path file = s.file("bad.yaml", yaml);
  // The position of the first character of `point_at` ('^' marks it inside).
  const auto caret = point_at.find('^');
  const std::string needle = caret == std::string::npos ? point_at : point_at.substr(0, caret) + point_at.substr(caret + 1);
  const auto at = yaml.find(needle);
  BOOST_TEST_REQUIRE(at != std::string::npos, "'" << needle << "' is not in the file");
  const auto offset = at + (caret == std::string::npos ? 0 : caret);
  const auto line = 1 + std::count(yaml.begin(), yaml.begin() + offset, '\n');
  const auto line_start = yaml.rfind('\n', offset == 0 ? 0 : offset - 1);
  const auto column = offset - (line_start == std::string::npos || offset == 0 ? 0 : line_start + 1) + 1;
  const std::string where = file.string() + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + field;

  const DrillRun d = drill(s, {file.string()}, {}, 30s);
  BOOST_TEST_REQUIRE(!d.r.timed_out);
  BOOST_TEST(d.r.exit_code == 2, d.describe());
  BOOST_TEST(contains(d.r.err, where), "expected '" << where << "' in stderr:\n" << d.r.err);
  BOOST_TEST(contains(d.r.err, says), "expected '" << says << "' in stderr:\n" << d.r.err);
  // Refused before anything started.
  BOOST_TEST(!contains(d.r.out, "starting the local cluster"), d.r.out);
  BOOST_TEST(!fs::exists(d.run_dir), "the run dir was created: " << d.run_dir);
}

}  // namespace

// ---------------------------------------------------------------------------

// The SVG check below judges the plots: it must tell good from bad.
BOOST_AUTO_TEST_CASE(the_svg_check_tells_well_formed_from_broken) {
  const std::string good = "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\">"
                           "<!-- c --><title>a &amp; b</title><g><rect x='1'/><text>&#8212;</text></g><line/></svg>\n";
  BOOST_TEST(svg_problem(good) == "");
  BOOST_TEST(svg_problem("") != "");
  BOOST_TEST(svg_problem("<svg><g></svg>") != "");
  BOOST_TEST(svg_problem("<svg><g><rect/><rect/><rect/></g></svg><svg/>") != "");
  BOOST_TEST(svg_problem("<svg><g><rect x=1/><rect/><rect/></g></svg>") != "");
  BOOST_TEST(svg_problem("<svg><text>a & b</text><rect/><rect/><rect/></svg>") != "");
  BOOST_TEST(svg_problem("<html><g><rect/><rect/><rect/></g></html>") != "");
  BOOST_TEST(svg_problem("<svg><g><rect/><rect/><rect/></g>") != "");
}

BOOST_AUTO_TEST_SUITE(usage)

BOOST_AUTO_TEST_CASE(help_exits_0_and_names_report_and_plot) {
  const auto r = run({bin("visorlab"), "drill", "--help"}, 30s);
  BOOST_TEST_INFO("stdout:\n" << r.out << "\nstderr:\n" << r.err);
  BOOST_TEST(r.exit_code == 0);
  BOOST_TEST(contains(r.out, "--report"));
  BOOST_TEST(contains(r.out, "--plot"));
  BOOST_TEST(contains(r.out, "FILE"));
}

BOOST_AUTO_TEST_CASE(an_unwritable_report_or_plot_exits_2_before_anything_starts) {
  Scratch s;
  for (const std::string option : {"--report", "--plot"}) {
    const std::string path = "/nonexistent-dir/out." + std::string(option == "--report" ? "json" : "svg");
    const DrillRun d = drill(s, {option, path}, {}, 30s);
    BOOST_TEST_REQUIRE(!d.r.timed_out);
    BOOST_TEST(d.r.exit_code == 2, d.describe());
    BOOST_TEST(contains(d.r.err, "/nonexistent-dir"), d.r.err);
    BOOST_TEST(!contains(d.r.out, "starting the local cluster"), d.r.out);
    BOOST_TEST(!fs::exists(d.run_dir), "the run dir was created: " << d.run_dir);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_files)

const std::string kGood = single_host("bad", "3s", "    - {at: 1s, recover: io0}\n");

std::string edit(const std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  BOOST_TEST_REQUIRE(at != std::string::npos, "'" << from << "' is not in the file");
  return text.substr(0, at) + to + text.substr(at + from.size());
}

BOOST_AUTO_TEST_CASE(a_yaml_syntax_error) {
  // A second ':' in a plain scalar: yaml-cpp stops right at it.
  expect_bad_input(edit(kGood, "  duration: 3s\n", "  duration: 3s: 4s\n"), "3s^: 4s", "(document)",
                   "illegal map value");
}

BOOST_AUTO_TEST_CASE(an_unknown_key) {
  expect_bad_input(edit(kGood, "  seed: 7\n", "  seed: 7\n  duratoin: 3s\n"), "duratoin", "drill.duratoin",
                   "unknown key 'duratoin'");
}

BOOST_AUTO_TEST_CASE(a_step_naming_an_unknown_service) {
  expect_bad_input(edit(kGood, "recover: io0}", "recover: io9}"), "io9}", "drill.steps[0].recover",
                   "unknown service 'io9'");
}

BOOST_AUTO_TEST_CASE(a_bad_duration) {
  expect_bad_input(edit(kGood, "  duration: 3s\n", "  duration: 3q\n"), "3q", "drill.duration", "'3q'");
  expect_bad_input(edit(kGood, "{at: 1s, recover: io0}", "{at: soon, recover: io0}"), "soon", "drill.steps[0].at",
                   "'soon'");
}

// `--check` validates and starts nothing: exit 0 with a one-line summary,
// or 2 with FILE:LINE:COLUMN: field — also for what only the runtime used to
// refuse (a fault window past the drill's end, a /dev/null disk).
BOOST_AUTO_TEST_CASE(check_validates_without_starting_anything) {
  Scratch s;
  const fs::path good = s.dir / "good.yaml";
  write_text(good, kGood);
  DrillRun d = drill(s, {good.string(), "--check"}, {}, 30s);
  BOOST_TEST(d.r.exit_code == 0, d.describe());
  BOOST_TEST(contains(d.r.out, good.string() + ": ok (1 hosts, 2 guests, 8 devices, 1 steps"), d.r.out);
  BOOST_TEST(!contains(d.r.out, "starting the local cluster"), d.r.out);
  BOOST_TEST(!fs::exists(d.run_dir), "the run dir was created: " << d.run_dir);

  const fs::path late = s.dir / "late.yaml";
  write_text(late, edit(kGood, "{at: 1s, recover: io0}", "{at: 1s, crash: io0, restart_after: 2m}"));
  d = drill(s, {late.string(), "--check"}, {}, 30s);
  BOOST_TEST(d.r.exit_code == 2, d.describe());
  BOOST_TEST(contains(d.r.err, late.string() + ":"), d.r.err);
  BOOST_TEST(contains(d.r.err, "drill.steps[0].restart_after: the fault lasts until 121s"), d.r.err);
  BOOST_TEST(!fs::exists(d.run_dir));

  const fs::path null_disk = s.dir / "null.yaml";
  write_text(null_disk, edit(kGood, "    switches: [{name: sw0}]\n",
                             "    switches: [{name: sw0}]\n    disks: [{name: d0, size: 64MiB, path: /dev/null}]\n"));
  d = drill(s, {null_disk.string(), "--check"}, {}, 30s);
  BOOST_TEST(d.r.exit_code == 2, d.describe());
  BOOST_TEST(contains(d.r.err, "services[0].disks[0].path: /dev/null is a character device"), d.r.err);
}

BOOST_AUTO_TEST_CASE(a_missing_file) {
  Scratch s;
  const fs::path file = s.dir / "no-such-drill.yaml";
  const DrillRun d = drill(s, {file.string()}, {}, 30s);
  BOOST_TEST_REQUIRE(!d.r.timed_out);
  BOOST_TEST(d.r.exit_code == 2, d.describe());
  BOOST_TEST(contains(d.r.err, file.string()), d.r.err);
  BOOST_TEST(!contains(d.r.out, "starting the local cluster"), d.r.out);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(drills)

// The built-in default (examples/default.yaml): two hosts over TCP, every
// fault kind, the DESIGN.md expect of 0 lost I/O and 100 ms recoveries.
BOOST_AUTO_TEST_CASE(the_default_drill_passes_with_a_complete_report_and_plot) {
  Scratch s;
  const fs::path report = s.dir / "r.json";
  const fs::path plot = s.dir / "p.svg";
  const DrillRun d = drill(s, {"--report", report.string(), "--plot", plot.string()}, {}, 150s);
  const json j = expect_pass(d, report);
  BOOST_TEST(j["name"] == "default");
  BOOST_TEST(j["seed"] == 1);
  BOOST_TEST(j["duration_s"].get<double>() >= 9.5);
  BOOST_TEST(j["io"]["disk"]["duplicated"] == 0);
  BOOST_TEST(j["io"]["input"]["delivered"].get<std::uint64_t>() > 0u);  // the workload started the consoles' input
  BOOST_TEST(j["io"]["input"]["lost"] == 0);
  BOOST_TEST(j["io"]["input"]["out_of_order"] == 0);
  BOOST_TEST(j["io"]["net"]["dropped_outside_faults"] == 0);

  const std::vector<std::pair<std::string, std::string>> steps{
      {"recover", "io0"}, {"crash", "io0"}, {"pause", "g1/vnic0"}, {"destroy", "g2/vhba0"},
      {"create", "g2"},   {"partition", "a,b"}, {"kill_agent", "b"}};
  const auto faults = faults_of(j);
  BOOST_TEST_REQUIRE(faults.size() == steps.size(), j["faults"].dump(2));
  const std::vector<double> at{2, 4, 6, 7, 7.5, 8, 9};
  for (std::size_t i = 0; i < faults.size(); ++i) {
    BOOST_TEST_CONTEXT("fault " << faults[i].dump()) {
      BOOST_TEST(faults[i]["step"] == i);
      BOOST_TEST(faults[i]["kind"] == steps[i].first);
      BOOST_TEST(contains(faults[i]["target"].get<std::string>(), steps[i].second));
      // Never early; late only by what a loaded CI machine explains — a step
      // seconds late means the one before it held the schedule up.
      BOOST_TEST(faults[i]["at_s"].get<double>() >= at[i] - 0.01);
      BOOST_TEST(faults[i]["at_s"].get<double>() < at[i] + 2.0);
    }
  }
  expect_phases(faults[0], false);
  expect_phases(faults[1], true);

  std::set<std::string> judged;
  for (const auto& e : j["expect"]) judged.insert(e["what"].get<std::string>());
  BOOST_TEST(judged.count("lost_io") == 1u, j["expect"].dump());
  BOOST_TEST(judged.count("max_recovery_ms") == 1u, j["expect"].dump());

  expect_plot(plot);
  BOOST_TEST(contains(read_text(plot), "io0"));

  // --run-dir keeps the run and its history.
  BOOST_TEST(fs::exists(d.run_dir / "history.jsonl"));
  BOOST_TEST(contains(d.r.out, (d.run_dir / "history.jsonl").string()));
  // Spooled to disk as the drill ran, the history is whole — every disk op
  // the report counts is in it — and the spool is gone once judged.
  std::ifstream history(d.run_dir / "history.jsonl");
  std::uint64_t invokes = 0;
  for (std::string line; std::getline(history, line);) invokes += contains(line, "\"ev\":\"invoke\"");
  BOOST_TEST(invokes == j["io"]["disk"]["issued"].get<std::uint64_t>());
  BOOST_TEST(!fs::exists(d.run_dir / "history"));

  // `visorlab report` judges the saved history again: the same verdict and counts.
  const fs::path again = s.dir / "again.json";
  const auto r = run({bin("visorlab"), "report", (d.run_dir / "history.jsonl").string(), "--file",
                      (fs::path(VISORLAB_EXAMPLES_DIR) / "default.yaml").string(), "--report", again.string()},
                     120s);
  BOOST_TEST(r.exit_code == 0, r.out << r.err);
  BOOST_TEST(contains(r.out, "result: PASS"), r.out);
  const json k = load_report(again);
  BOOST_TEST(k["io"] == j["io"]);
  BOOST_TEST(k["faults"] == j["faults"]);
  BOOST_TEST(k["expect"] == j["expect"]);
  // A history it cannot read is bad input, named with its line.
  const fs::path broken = s.file("broken.jsonl", read_text(d.run_dir / "history.jsonl").substr(0, 200) + "\n{oops\n");
  const auto b = run({bin("visorlab"), "report", broken.string()}, 60s);
  BOOST_TEST(b.exit_code == 2, b.out << b.err);
  BOOST_TEST(contains(b.err, "line"), b.err);
}

BOOST_AUTO_TEST_CASE(recover_alone) {
  const auto faults = run_fault_drill("recover.yaml", single_host("recover", "3s", "    - {at: 1s, recover: io0}\n"),
                                      {{"recover", "io0"}});
  if (faults.size() == 1) expect_phases(faults[0], false);
}

BOOST_AUTO_TEST_CASE(crash_alone) {
  const auto faults = run_fault_drill(
      "crash.yaml", single_host("crash", "3s", "    - {at: 1s, crash: io0, restart_after: 50ms}\n"), {{"crash", "io0"}});
  if (faults.size() == 1) {
    expect_phases(faults[0], true);
    // The restart waits restart_after before the partition comes back.
    BOOST_TEST(faults[0]["total_ms"].get<double>() >= 50.0, faults[0].dump());
  }
}

BOOST_AUTO_TEST_CASE(pause_for_alone) {
  const auto faults = run_fault_drill(
      "pause.yaml", single_host("pause", "3s", "    - {at: 1s, pause: g1/vhba0, for: 300ms}\n"), {{"pause", "g1/vhba0"}});
  if (faults.size() == 1) BOOST_TEST(faults[0]["stall_ms"].get<double>() >= 250.0, faults[0].dump());
}

// Steps run each at its own time: a recover of io0 while one of its devices
// is held paused starts on time (not when the pause ends), leaves that device
// paused, and the pause then ends as planned (issue: a recover after a pause
// failed with EBUSY and left every io0 device paused).
BOOST_AUTO_TEST_CASE(overlapping_faults_each_start_on_time) {
  const auto faults = run_fault_drill("overlap.yaml",
                                      single_host("overlap", "6s",
                                                  "    - {at: 1s, pause: g1/vhba0, for: 3s}\n"
                                                  "    - {at: 1.5s, recover: io0}\n"),
                                      {{"pause", "g1/vhba0"}, {"recover", "io0"}});
  if (faults.size() == 2) {
    BOOST_TEST(faults[1]["at_s"].get<double>() >= 1.49, faults[1].dump());
    BOOST_TEST(faults[1]["at_s"].get<double>() < 2.0, faults[1].dump());  // not after the 3 s pause
    expect_phases(faults[1], false);
    BOOST_TEST(faults[0]["stall_ms"].get<double>() >= 2500.0, faults[0].dump());  // held throughout
  }
}

BOOST_AUTO_TEST_CASE(destroy_then_create) {
  run_fault_drill("destroy-create.yaml",
                  single_host("destroy-create", "3s",
                              "    - {at: 1s, destroy: g1/vhba0}\n"
                              "    - {at: 1.5s, create: {guest: g1, device: {kind: vhba, service: io0, disk_size: 16MiB}}}\n"),
                  {{"destroy", "g1/vhba0"}, {"create", "g1"}});
}

BOOST_AUTO_TEST_CASE(partition_of_two_hosts) {
  run_fault_drill("partition.yaml", two_hosts("partition", "4s", "    - {at: 1s, partition: [a, b], for: 500ms}\n"),
                  {{"partition", "a,b"}});
}

BOOST_AUTO_TEST_CASE(kill_agent_and_restart_it) {
  run_fault_drill("kill-agent.yaml",
                  single_host("kill-agent", "4s", "    - {at: 1s, kill_agent: a, restart_after: 500ms}\n"),
                  {{"kill_agent", "a"}});
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(failing_drills)

// An expectation no drill can meet fails the drill: exit 1, naming it.
void expect_unmeetable(const std::string& limit) {
  Scratch s;
  const fs::path file = s.file("expect.yaml", single_host("expect", "3s", "    - {at: 1s, recover: io0}\n",
                                                          "{lost_io: 0, max_recovery_ms: " + limit + "}"));
  const fs::path report = s.dir / "r.json";
  const DrillRun d = drill(s, {file.string(), "--report", report.string()});
  BOOST_TEST_REQUIRE(!d.r.timed_out, d.describe());
  BOOST_TEST(d.r.exit_code == 1, d.describe());
  BOOST_TEST(contains(d.output(), "max_recovery_ms"), "output:\n" << d.output());
  BOOST_TEST(contains(d.r.out, "result: FAIL"));
  if (fs::exists(report)) {
    const json j = load_report(report);
    expect_report_contract(j);
    BOOST_TEST(j["result"] == "fail");
    bool judged = false;
    for (const auto& e : j["expect"]) {
      if (e["what"] != "max_recovery_ms") continue;
      judged = true;
      BOOST_TEST(e["ok"] == false, e.dump());
      BOOST_TEST(e["value"].get<double>() > e["limit"].get<double>(), e.dump());
    }
    BOOST_TEST(judged, j["expect"].dump());
    // Only the expectation failed: the I/O itself was fine.
    BOOST_TEST(j["io"]["disk"]["lost"] == 0);
  }
}

// The issue's own example.
BOOST_AUTO_TEST_CASE(max_recovery_ms_0_exits_1) { expect_unmeetable("0"); }

// One microsecond: positive, and still no recovery is that fast.
BOOST_AUTO_TEST_CASE(max_recovery_ms_one_microsecond_exits_1) { expect_unmeetable("0.001"); }

// The lose_writes step: io0 acknowledges every 20th write without writing it
// for 1 s. The checker must notice, and name the disks that lost writes.
BOOST_AUTO_TEST_CASE(a_lose_writes_step_is_caught_and_the_lost_writes_named) {
  Scratch s;
  const fs::path file = s.file(
      "lose.yaml", single_host("lose", "3s", "    - {at: 500ms, lose_writes: io0, every: 20, for: 1s}\n", "{lost_io: 0}"));
  const fs::path report = s.dir / "r.json";
  const DrillRun d = drill(s, {file.string(), "--report", report.string()});
  BOOST_TEST_REQUIRE(!d.r.timed_out, d.describe());
  BOOST_TEST(d.r.exit_code == 1, d.describe());
  BOOST_TEST(contains(d.r.out, "result: FAIL"));
  const json j = load_report(report);
  expect_report_contract(j);
  BOOST_TEST(j["result"] == "fail");
  const auto lost = j["io"]["disk"]["lost"].get<long long>();
  const auto verify = j["io"]["disk"]["verify_errors"].get<long long>();
  BOOST_TEST(lost + verify > 0, j["io"].dump(2));
  // The summary names the first lost write: its disk and op.
  const auto failures = d.r.out.find("\nfailures\n");
  BOOST_TEST_REQUIRE(failures != std::string::npos, "stdout:\n" << d.r.out);
  const std::string named = d.r.out.substr(failures);
  BOOST_TEST((contains(named, "g0/vhba0") || contains(named, "g1/vhba0")), named);
  bool windowed = false;
  for (const auto& f : j["faults"]) windowed = windowed || (f["kind"] == "lose_writes" && f["target"] == "io0");
  BOOST_TEST(windowed, j["faults"].dump(2));
}

BOOST_AUTO_TEST_SUITE_END()
