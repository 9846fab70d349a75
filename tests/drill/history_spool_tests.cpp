// The history spool: sources appended piece by piece come back as one
// timeline (devices and texts unified, blocks with their reads, a little
// lateness absorbed), and the streaming checker judges it as it judges the
// same history in memory — in memory that does not grow with its length.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "drill/checker.hpp"
#include "drill/checks.hpp"
#include "drill/history_spool.hpp"
#include "synthetic.hpp"

using namespace visorlab::drill;
using namespace visorlab::drill::test;
namespace fs = std::filesystem;

namespace {

struct Dir {
  fs::path path = fs::temp_directory_path() / ("visorlab-spool-test-" + std::to_string(::getpid()));
  ~Dir() { fs::remove_all(path); }
};

// Events [from, to) of `h` that are `mine`, as a piece of a source's history.
History piece_of(const History& h, const std::function<bool(const Event&)>& mine, std::size_t from, std::size_t to) {
  History p;
  p.devices = h.devices;
  p.texts = h.texts;
  for (std::size_t i = from; i < to && i < h.events.size(); ++i) {
    const Event& e = h.events[i];
    if (!mine(e)) continue;
    Event copy = e;
    if (e.kind == EventKind::disk_ok) {
      copy.ok.first_block = p.blocks.size();
      for (const auto& b : h.seen(e)) p.blocks.push_back(b);
    }
    p.events.push_back(copy);
  }
  return p;
}

[[maybe_unused]] std::size_t rss_kib() {  // unused where sanitizers skip the memory test
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(history_spool)

BOOST_AUTO_TEST_CASE(sources_spooled_in_pieces_replay_as_one_timeline_and_judge_alike) {
  const History h = clean_drill();
  Dir dir;
  const auto disk = [&](const Event& e) { return h.device_name(e.device) == "g0/vhba0"; };
  const auto rest = [&](const Event& e) { return !disk(e); };
  {
    HistorySpool spool(dir.path);
    // Two sources, each in pieces, in an order that interleaves them.
    for (std::size_t from = 0; from < h.events.size(); from += 50) {
      spool.add("g0", piece_of(h, disk, from, from + 50));
      spool.add("g1", piece_of(h, rest, from, from + 50));
    }
    History nemesis;
    nemesis.faults = h.faults;
    nemesis.recoveries = h.recoveries;
    spool.add("nemesis", nemesis);
    BOOST_TEST(spool.events() == h.events.size());

    History summary = spool.summary();
    summary.name = h.name;
    summary.seed = h.seed;
    summary.end = h.end;
    BOOST_TEST(summary.events.empty());
    BOOST_TEST(summary.faults == h.faults);

    History back = summary;
    Checker checker(summary, {});
    spool.replay([&](const Event& e, std::span<const BlockSeen> seen) {
      checker.add(e, seen);
      Event copy = e;
      if (e.kind == EventKind::disk_ok) {
        copy.ok.first_block = back.blocks.size();
        back.blocks.insert(back.blocks.end(), seen.begin(), seen.end());
      }
      back.events.push_back(copy);
    });
    BOOST_TEST((back == h));  // the same events, devices by name, blocks and all, in time order
    const CheckResult streamed = checker.finish();
    const CheckResult whole = check(h, {});
    BOOST_TEST(streamed.pass);
    BOOST_TEST(streamed.disk.issued == whole.disk.issued);
    BOOST_TEST(streamed.disk.completed == whole.disk.completed);
    BOOST_TEST(streamed.net.received == whole.net.received);
    BOOST_TEST(streamed.faults.at(0).stall_ms == whole.faults.at(0).stall_ms);
    BOOST_TEST(fs::exists(dir.path));
  }
  BOOST_TEST(!fs::exists(dir.path));  // what the spool wrote goes with it
}

BOOST_AUTO_TEST_CASE(an_event_recorded_late_within_the_window_comes_out_in_order) {
  Dir dir;
  HistorySpool spool(dir.path);
  History a, b;
  a.devices = {"g0/vhba0"};
  b.devices = {"g1/vhba0"};
  const auto event = [](Nanos at, EventKind kind, std::uint64_t op) {
    Event e;
    e.at = at;
    e.kind = kind;
    e.retried = DiskRetried{op};
    return e;
  };
  // g0 notes a retry at 15 ms only when its op completes at 80 ms.
  a.events = {event(ms(10), EventKind::disk_retried, 1), event(ms(80), EventKind::disk_retried, 2),
              event(ms(15), EventKind::disk_retried, 3)};
  b.events = {event(ms(12), EventKind::disk_retried, 4), event(ms(20), EventKind::disk_retried, 5)};
  spool.add("g0", a);
  spool.add("g1", b);
  std::vector<Nanos> times;
  spool.replay([&](const Event& e, std::span<const BlockSeen>) { times.push_back(e.at); }, ms(100));
  BOOST_TEST(times == (std::vector<Nanos>{ms(10), ms(12), ms(15), ms(20), ms(80)}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_piece_referring_outside_itself_is_refused) {
  Dir dir;
  HistorySpool spool(dir.path);
  History p;
  p.devices = {"g0/vhba0"};
  Event e;
  e.device = 3;
  p.events.push_back(e);
  BOOST_CHECK_THROW(spool.add("g0", p), std::runtime_error);
}

// An hour of I/O on a small disk needs no more memory than a minute of it:
// the checker keeps ops in flight and each sector's recent writes, not the past.
BOOST_AUTO_TEST_CASE(the_checkers_memory_does_not_grow_with_the_drill) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  BOOST_TEST_MESSAGE("skipped: a sanitizer keeps freed memory in quarantine");
#else
  constexpr std::uint64_t kOps = 3'000'000, kBlocks = 4096;  // a 2 MiB disk in 512-byte blocks
  History summary;
  summary.devices = {"g0/vhba0"};
  summary.end = static_cast<Nanos>(kOps) * 10'000;
  Checker checker(summary, visorlab::topology::Expect{}, CheckOptions{});
  const std::uint64_t tag = device_tag("g0/vhba0");
  std::vector<std::uint64_t> gen_on(kBlocks, 0);
  std::mt19937_64 random(7);
  std::size_t at_third = 0;
  std::uint64_t gen = 0;  // a device's writes are numbered one after another
  for (std::uint64_t op = 1; op <= kOps; ++op) {
    const Nanos t = static_cast<Nanos>(op) * 10'000;
    const std::uint64_t lba = random() % kBlocks;
    Event invoke;
    invoke.at = t;
    Event ok;
    ok.at = t + 5'000;
    ok.kind = EventKind::disk_ok;
    if (op % 2) {
      invoke.invoke = DiskInvoke{op, lba, ++gen, 1, DiskOp::write};
      checker.add(invoke);
      gen_on[lba] = gen;
      ok.ok = DiskOk{op, 0, 0};
      checker.add(ok);
    } else {
      invoke.invoke = DiskInvoke{op, lba, 0, 1, DiskOp::read};
      checker.add(invoke);
      const BlockSeen seen{lba, gen_on[lba], gen_on[lba] ? tag : 0, true};
      ok.ok = DiskOk{op, 0, 1};
      checker.add(ok, std::span(&seen, 1));
    }
    if (op == kOps / 3) at_third = rss_kib();
  }
  const std::size_t at_end = rss_kib();
  const CheckResult r = checker.finish();
  BOOST_TEST(r.pass);
  BOOST_TEST(r.disk.completed == kOps);
  // A history in memory would hold 6 M events (240 MiB): 2 M more ops may cost a few pages.
  BOOST_TEST_MESSAGE(at_third << " KiB after 1 M ops, " << at_end << " KiB after 3 M");
  BOOST_TEST(at_end <= at_third + 2048, at_third << " KiB after 1 M ops, " << at_end << " KiB after 3 M");
#endif
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(checker_parts)

BOOST_AUTO_TEST_CASE(latency_percentiles_are_exact_then_within_one_percent) {
  checks::LatencySketch small;
  for (int v : {5, 1, 4, 2, 3}) small.add(v);
  BOOST_TEST(small.quantile(0.5) == 3.0);
  BOOST_TEST(small.quantile(0.99) == 5.0);
  BOOST_TEST(small.max() == 5.0);

  checks::LatencySketch big;
  std::mt19937_64 random(1);
  std::vector<double> values;
  for (int i = 0; i < 300'000; ++i) {
    const double v = 50.0 + static_cast<double>(random() % 100'000) / 10.0;
    values.push_back(v);
    big.add(v);
  }
  std::sort(values.begin(), values.end());
  for (const double q : {0.5, 0.9, 0.99}) {
    const double exact = values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1];
    BOOST_TEST(std::abs(big.quantile(q) - exact) <= exact * 0.01, "q " << q << ": " << big.quantile(q) << " vs " << exact);
  }
  BOOST_TEST(big.max() == values.back());
}

BOOST_AUTO_TEST_CASE(an_id_set_keeps_runs_and_answers_for_every_id) {
  checks::IdSet ids;
  for (std::uint64_t id : {5, 7, 6, 1, 2, 3, 10}) BOOST_TEST(ids.insert(id));
  BOOST_TEST(!ids.insert(6));
  BOOST_TEST(!ids.insert(1));
  for (std::uint64_t id : {1, 2, 3, 5, 6, 7, 10}) BOOST_TEST(ids.contains(id), id);
  for (std::uint64_t id : {0, 4, 8, 9, 11}) BOOST_TEST(!ids.contains(id), id);
  BOOST_TEST(ids.insert(4));  // joins 1…3 and 5…7
  BOOST_TEST(ids.contains(4));
  BOOST_TEST(ids.insert(std::numeric_limits<std::uint64_t>::max()));
  BOOST_TEST(ids.contains(std::numeric_limits<std::uint64_t>::max()));
  BOOST_TEST(ids.insert(0));
}

BOOST_AUTO_TEST_SUITE_END()
