// The history: the block format the workload and checker share, the
// recorder's cheap appends, merging several recorders, and the history file.
#define BOOST_TEST_MODULE drill
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "drill/append_log.hpp"
#include "drill/history_file.hpp"
#include "drill/history_wire.hpp"
#include "drill/recorder.hpp"
#include "synthetic.hpp"

using namespace visorlab::drill;
using namespace visorlab::drill::test;

BOOST_AUTO_TEST_SUITE(block_format)

BOOST_AUTO_TEST_CASE(a_block_decodes_to_what_was_encoded) {
  for (const std::size_t size : {512u, 4096u}) {
    std::vector<std::byte> block(size);
    encode_block(block, 1234, 56, device_tag("g0/vhba0"));
    const auto seen = decode_block(block);
    BOOST_TEST(seen.checksum_ok);
    BOOST_TEST(seen.lba == 1234u);
    BOOST_TEST(seen.gen == 56u);
    BOOST_TEST(seen.device_tag == device_tag("g0/vhba0"));
  }
  BOOST_TEST(device_tag("g0/vhba0") != device_tag("g1/vhba0"));
}

BOOST_AUTO_TEST_CASE(a_change_in_any_word_breaks_the_checksum) {
  for (const std::size_t size : {512u, 520u, 1000u, 4096u}) {  // word counts 64, 65, 125, 512
    std::vector<std::byte> block(size);
    encode_block(block, 7, 3, 99);
    BOOST_REQUIRE(decode_block(block).checksum_ok);
    for (std::size_t word = 0; word < size / 8; ++word) {
      auto copy = block;
      copy[word * 8 + word % 8] ^= std::byte{0x10};
      BOOST_TEST(!decode_block(copy).checksum_ok, "size " << size << " word " << word);
    }
  }
}

BOOST_AUTO_TEST_CASE(a_zero_block_is_never_written_and_garbage_is_bad) {
  std::vector<std::byte> zero(512);
  const auto seen = decode_block(zero);
  BOOST_TEST(seen.checksum_ok);
  BOOST_TEST(seen.gen == 0u);
  std::vector<std::byte> garbage(512, std::byte{0x5a});
  BOOST_TEST(!decode_block(garbage).checksum_ok);
}

BOOST_AUTO_TEST_CASE(bad_sizes_and_generation_zero_are_refused) {
  std::vector<std::byte> small(256), odd(516), ok(512);
  BOOST_CHECK_THROW(encode_block(small, 0, 1, 0), std::invalid_argument);
  BOOST_CHECK_THROW(encode_block(odd, 0, 1, 0), std::invalid_argument);
  BOOST_CHECK_THROW(encode_block(ok, 0, 0, 0), std::invalid_argument);
  BOOST_TEST(!decode_block(small).checksum_ok);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(recorder)

std::vector<std::uint64_t> kept(const AppendLog<std::uint64_t>& log) {
  std::vector<std::uint64_t> out;
  log.for_each([&](std::uint64_t v) { out.push_back(v); });
  return out;
}

BOOST_AUTO_TEST_CASE(an_append_log_keeps_order_across_chunks) {
  AppendLog<std::uint64_t> log(64);
  BOOST_TEST(log.size() == 0u);  // nothing allocated before the first record
  BOOST_TEST(kept(log).empty());
  for (std::uint64_t i = 0; i < 1000; ++i) log.push(i);
  BOOST_TEST(log.size() == 1000u);
  const auto out = kept(log);
  BOOST_REQUIRE_EQUAL(out.size(), 1000u);
  for (std::uint64_t i = 0; i < 1000; ++i) BOOST_TEST(out[i] == i);
}

// Drained as it is written, a log keeps its records' indices and only what
// was not dropped: a day of appends stays a few chunks long.
BOOST_AUTO_TEST_CASE(an_append_log_drained_as_it_grows_keeps_indices_and_forgets_the_rest) {
  AppendLog<std::uint64_t> log(64);
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    log.push(i * 3);
    if (i % 100 == 99) {
      BOOST_TEST_REQUIRE(log[i - 50] == (i - 50) * 3);
      log.drop_before(i - 10);
      BOOST_TEST_REQUIRE(log.size() == 11u);
    }
  }
  BOOST_TEST(log.begin() == 99'989u);
  BOOST_TEST(log.end() == 100'000u);
  BOOST_TEST(log[99'995] == 99'995u * 3);
  BOOST_CHECK_THROW(log[99'988], std::out_of_range);
  BOOST_CHECK_THROW(log[100'000], std::out_of_range);
  log.drop_before(1'000'000);  // past the end: everything
  BOOST_TEST(log.size() == 0u);
  log.push(7);
  BOOST_TEST(log[100'000] == 7u);
}

// The workload's side of a drain: slices from an index with the blocks their
// reads saw, each self-contained, and forgetting below it — memory stays
// bounded however many events pass through.
BOOST_AUTO_TEST_CASE(a_recorder_drained_in_slices_hands_out_every_event_once) {
  Recorder whole(64), drained(64);
  // What the slices brought: each event, the blocks its read saw, its failure's text.
  struct Taken {
    Event event;
    std::vector<BlockSeen> seen;
    std::string text;
  };
  std::vector<Taken> taken;
  std::uint64_t next = 0;
  const auto take = [&](std::size_t max) {
    drained.forget_before(next);
    const History piece = drained.slice(next, max);
    for (const Event& e : piece.events) {
      const auto seen = piece.seen(e);
      taken.push_back({e, {seen.begin(), seen.end()},
                       e.kind == EventKind::disk_fail ? piece.texts.at(e.fail.reason) : std::string()});
    }
    next += piece.events.size();
    return piece.events.size();
  };
  for (std::uint64_t i = 0; i < 5000; ++i) {
    for (Recorder* r : {&whole, &drained}) {
      const auto d = r->device("g0/vhba0");
      r->disk_invoke(ms(i), d, i + 1, DiskOp::read, i, 2);
      const std::vector<BlockSeen> seen{{i, 1, 2, true}, {i + 1, 1, 2, i % 2 == 0}};
      if (i % 7 == 0) r->disk_fail(ms(i + 0.5), d, i + 1, i % 14 == 0 ? "a" : "b");
      else r->disk_ok(ms(i + 0.5), d, i + 1, seen);
    }
    if (i % 333 == 0) {
      take(1000);
      BOOST_TEST_REQUIRE(drained.first_kept() <= next);
      BOOST_TEST_REQUIRE(drained.events() - drained.first_kept() < 1000u);  // what was taken is forgotten
    }
  }
  while (take(1 << 20) != 0) {
  }
  const History h = whole.history();
  BOOST_TEST(h.texts.size() == 2u);  // each reason kept once
  BOOST_REQUIRE_EQUAL(taken.size(), h.events.size());
  for (std::size_t i = 0; i < h.events.size(); ++i) {
    const Event& a = h.events[i];
    const Taken& b = taken[i];
    BOOST_TEST_REQUIRE((a.at == b.event.at && a.kind == b.event.kind), "event " << i);
    const auto sa = h.seen(a);
    BOOST_TEST_REQUIRE(std::equal(sa.begin(), sa.end(), b.seen.begin(), b.seen.end()), "blocks of event " << i);
    if (a.kind == EventKind::disk_fail) BOOST_TEST_REQUIRE(h.texts.at(a.fail.reason) == b.text);
  }
}

BOOST_AUTO_TEST_CASE(a_recorder_gives_a_history_in_time_order_with_reads_blocks) {
  Recorder rec(64);  // small chunks: blocks and events cross chunk boundaries
  const auto d = rec.device("g0/vhba0");
  BOOST_TEST(rec.device("g0/vhba0") == d);
  for (std::uint64_t i = 0; i < 100; ++i) {
    rec.disk_invoke(ms(10.0 * i), d, i, DiskOp::read, i, 3);
    const std::vector<BlockSeen> seen{{i, 1, 2, true}, {i + 1, 1, 2, true}, {i + 2, 1, 2, false}};
    rec.disk_ok(ms(10.0 * i + 5), d, i, seen);
  }
  rec.disk_invoke(ms(1), d, 500, DiskOp::write, 0, 1, 1);  // recorded late, stamped early
  const auto h = rec.history();
  BOOST_REQUIRE_EQUAL(h.events.size(), 201u);
  BOOST_TEST(std::is_sorted(h.events.begin(), h.events.end(),
                            [](const Event& a, const Event& b) { return a.at < b.at; }));
  BOOST_TEST(h.events[1].invoke.op_id == 500u);
  const auto& last = h.events.back();
  BOOST_REQUIRE(last.kind == EventKind::disk_ok);
  const auto seen = h.seen(last);
  BOOST_REQUIRE_EQUAL(seen.size(), 3u);
  BOOST_TEST(seen[0].lba == 99u);
  BOOST_TEST(seen[2].lba == 101u);
  BOOST_TEST(!seen[2].checksum_ok);
}

BOOST_AUTO_TEST_CASE(merging_unifies_devices_texts_and_blocks) {
  Recorder guest0, guest1, nemesis;
  const auto a = guest0.device("g0/vhba0");
  const auto a_nic = guest0.device("g0/vnic0");
  const auto b_nic = guest1.device("g1/vnic0");  // id 0 in its recorder
  const auto b = guest1.device("g1/vhba0");
  const auto b_peer = guest1.device("g0/vnic0");
  guest0.disk_invoke(ms(1), a, 1, DiskOp::read, 4, 1);
  guest0.disk_ok(ms(3), a, 1, std::vector<BlockSeen>{{4, 2, 7, true}});
  guest0.frame_sent(ms(2), a_nic, guest0.device("g1/vnic0"), 9);
  guest1.frame_received(ms(4), b_nic, b_peer, 9);
  guest1.disk_invoke(ms(0.5), b, 1, DiskOp::read, 8, 1);
  guest1.disk_ok(ms(2.5), b, 1, std::vector<BlockSeen>{{8, 5, 6, true}});
  guest1.disk_invoke(ms(5), b, 2, DiskOp::write, 8, 1, 6);
  guest1.disk_fail(ms(6), b, 2, "aborted");
  nemesis.fault(FaultWindow{0, "recover", "io0", ms(1), ms(2), false, {}});

  History h = merge({guest0.history(), guest1.history(), nemesis.history()});
  BOOST_TEST(h.devices.size() == 4u);
  BOOST_REQUIRE_EQUAL(h.events.size(), 8u);
  BOOST_TEST(h.faults.size() == 1u);
  for (const Event& e : h.events) {
    if (e.kind == EventKind::frame_received) {
      BOOST_TEST(h.device_name(e.device) == "g1/vnic0");
      BOOST_TEST(h.device_name(e.frame.peer) == "g0/vnic0");
    }
    if (e.kind == EventKind::disk_ok) {
      const auto seen = h.seen(e);
      BOOST_REQUIRE_EQUAL(seen.size(), 1u);
      BOOST_TEST(seen[0].lba == (h.device_name(e.device) == "g0/vhba0" ? 4u : 8u));
    }
    if (e.kind == EventKind::disk_fail) BOOST_TEST(h.texts.at(e.fail.reason) == "aborted");
  }
  BOOST_TEST(h.device_name(h.events.front().device) == "g1/vhba0");  // 0.5 ms: time order across parts
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(history_file)

History every_kind_of_record() {
  Recorder guest0, guest1;
  const auto d = guest0.device("g0/vhba0");
  const auto n0 = guest0.device("g0/vnic0");
  const auto n1 = guest1.device("g1/vnic0");
  const auto k = guest1.device("g\"1/keyboard0\\");  // a name that needs escaping
  guest0.disk_invoke(ms(1), d, 1, DiskOp::write, 10, 2, 1);
  guest0.disk_ok(ms(2), d, 1);
  guest0.disk_invoke(ms(3), d, 2, DiskOp::read, 10, 2);
  guest0.disk_retried(ms(4), d, 2);
  guest0.disk_ok(ms(5), d, 2, std::vector<BlockSeen>{{10, 1, device_tag("g0/vhba0"), true}, {11, 1, ~0ull, false}});
  guest0.disk_invoke(ms(6), d, 3, DiskOp::read, 0, 1);
  guest0.disk_ok(ms(6.5), d, 3);  // unverified read
  guest0.disk_invoke(ms(7), d, 4, DiskOp::write, 12, 1, 18446744073709551615ull);
  guest0.disk_fail(ms(8), d, 4, "DID_ABORT: \"timeout\"\n");
  guest0.frame_sent(ms(9), n0, guest0.device("g1/vnic0"), 77);
  guest1.frame_received(ms(10), n1, guest1.device("g0/vnic0"), 77);
  guest1.input_produced(ms(11), k, 1);
  guest1.input_delivered(ms(12), k, 1);
  guest1.disk_invoke(ms(2.5), guest1.device("g1/vhba0"), 1, DiskOp::read, 3, 1);
  guest1.disk_ok(ms(3.5), guest1.device("g1/vhba0"), 1, std::vector<BlockSeen>{{3, 0, 0, true}});
  guest1.fault(FaultWindow{1, "partition", "a,b", ms(4), ms(9), true, {"g0/vnic0", "g1/vnic0"}});
  guest1.recovery(RecoveryPhases{1, ms(5), ms(6), 0, ms(10), false, "resume refused"});
  guest0.violation(Violation{"pause_guard", "g0/vhba0", ms(5.5), "write at offset 4096 <while paused>"});
  History h = merge({guest0.history(), guest1.history()});
  h.name = "round \"trip\"";
  h.seed = 42;
  h.end = ms(20);
  return h;
}

BOOST_AUTO_TEST_CASE(a_history_survives_a_round_trip_through_its_file) {
  const History h = every_kind_of_record();
  const auto file = std::filesystem::temp_directory_path() / "visorlab_drill_history_test.jsonl";
  save_history(h, file);
  const History back = load_history(file);
  std::filesystem::remove(file);
  BOOST_TEST(back.name == h.name);
  BOOST_TEST(back.seed == 42u);
  BOOST_TEST(back.end == ms(20));
  BOOST_TEST(back.devices == h.devices, boost::test_tools::per_element());
  BOOST_TEST(back.events.size() == h.events.size());
  BOOST_TEST(back.faults == h.faults);
  BOOST_TEST(back.recoveries == h.recoveries);
  BOOST_TEST(back.violations == h.violations);
  BOOST_TEST((back == h));

  // …and equality can tell: one changed field makes them differ.
  History changed = back;
  changed.blocks.at(1).gen = 2;
  BOOST_TEST(!(changed == h));
}

// What a workload's collect hands out: events in bounded chunks, as typed
// records, rebuilt into the same history whatever the chunk size.
BOOST_AUTO_TEST_CASE(a_history_survives_a_round_trip_in_chunks) {
  History h = clean_drill();
  h.violations.push_back({"frame_bad", "g1/vnic0", ms(3), "frame seq 2 corrupt at byte 60 of 1500"});
  h.end = 0;  // not carried, nor faults and recoveries: the drill has those
  h.faults.clear();
  h.recoveries.clear();
  for (const std::size_t size : {std::size_t{1}, std::size_t{7}, h.events.size(), h.events.size() + 5}) {
    History back;
    std::size_t chunks = 0;
    for (std::uint64_t first = 0;; first = back.events.size()) {
      const auto c = history_chunk(h, first, size);
      BOOST_TEST(c.records.size() <= size);
      ++chunks;
      add_chunk(back, c);
      if (!c.more) break;
    }
    BOOST_TEST(chunks == (h.events.size() + size - 1) / size);
    BOOST_TEST((back == h), "chunks of " << size);
  }
}

BOOST_AUTO_TEST_CASE(a_chunk_that_refers_outside_itself_is_refused) {
  const History h = clean_drill();
  auto c = history_chunk(h, 0, h.events.size());
  {
    auto bad = c;
    bad.records.at(0).device = 99;
    History back;
    BOOST_CHECK_THROW(add_chunk(back, bad), std::invalid_argument);
  }
  {
    auto bad = c;
    bad.blocks.pop_back();  // the last read's blocks are missing
    History back;
    BOOST_CHECK_THROW(add_chunk(back, bad), std::invalid_argument);
  }
  {
    auto bad = c;
    bad.records.at(0).kind = 200;
    History back;
    BOOST_CHECK_THROW(add_chunk(back, bad), std::invalid_argument);
  }
}

BOOST_AUTO_TEST_CASE(the_file_is_one_json_object_per_line_in_time_order) {
  std::ostringstream out;
  write_history(every_kind_of_record(), out);
  std::istringstream in(out.str());
  std::string line;
  std::getline(in, line);
  BOOST_TEST(line.find("\"visorlab_history\":1") != std::string::npos, line);
  std::size_t lines = 1;
  bool saw_op_line = false;
  while (std::getline(in, line)) {
    ++lines;
    saw_op_line |= line.find("\"op_id\":4,") != std::string::npos && line.find("\"ev\":\"fail\"") != std::string::npos;
  }
  BOOST_TEST(saw_op_line);
  BOOST_TEST(lines == 1u + 15u + 1u + 1u + 1u);  // header, events, fault, recovery, violation
}

BOOST_AUTO_TEST_CASE(hand_edited_lines_read_the_same_as_written_ones) {
  const std::string header = "{\"visorlab_history\":1,\"name\":\"x\",\"seed\":1,\"end\":0,\"devices\":[]}\n";
  std::istringstream written(header +
      "{\"t\":5,\"ev\":\"ok\",\"dev\":\"g0/vhba0\",\"op_id\":3,\"seen\":[[4,2,9,true],[5,2,9,false]]}\n"
      "{\"t\":6,\"ev\":\"sent\",\"dev\":\"g0/vnic0\",\"dst\":\"g1/vnic0\",\"seq\":8}\n");
  std::istringstream edited(header +
      "{ \"seen\": [[4, 2, 9, true], [5, 2, 9, false]], \"op_id\": 3, \"dev\": \"g0/vhba0\", \"ev\": \"ok\", \"t\": 5 }\n"
      "{\"seq\":8,\"dst\":\"g1/vnic0\",\"t\":6,\"dev\":\"g0/vnic0\",\"ev\":\"sent\"}\n");
  // Written order, then a field added by hand: the shortcut gives up part-way.
  std::istringstream annotated(header +
      "{\"t\":5,\"ev\":\"ok\",\"dev\":\"g0/vhba0\",\"op_id\":3,\"seen\":[[4,2,9,true],[5,2,9,false]],\"note\":1}\n"
      "{\"t\":6,\"ev\":\"sent\",\"dev\":\"g0/vnic0\",\"dst\":\"g1/vnic0\",\"seq\":8}\n");
  const History a = read_history(written);
  const History b = read_history(edited);
  BOOST_REQUIRE_EQUAL(a.events.size(), 2u);
  const History c = read_history(annotated);
  BOOST_TEST((a == b));
  BOOST_TEST((a == c));
  BOOST_TEST(a.blocks.size() == 2u);
  BOOST_TEST(b.blocks.size() == 2u);
  BOOST_TEST(c.blocks.size() == 2u);  // none left behind by the shortcut
  BOOST_TEST(a.seen(a.events[0]).size() == 2u);
  BOOST_TEST(!a.seen(a.events[0])[1].checksum_ok);
}

BOOST_AUTO_TEST_CASE(a_bad_line_is_named) {
  std::istringstream in(
      "{\"visorlab_history\":1,\"name\":\"x\",\"seed\":1,\"end\":0,\"devices\":[]}\n"
      "{\"t\":1,\"ev\":\"invoke\",\"dev\":\"g0/vhba0\",\"op_id\":1,\"rw\":\"write\",\"lba\":0,\"blocks\":1,\"gen\":1}\n"
      "{\"t\":2,\"ev\":\"teleported\",\"dev\":\"g0/vhba0\"}\n");
  try {
    read_history(in);
    BOOST_FAIL("read a bad history");
  } catch (const std::runtime_error& e) {
    BOOST_TEST(std::string(e.what()).find("line 3") != std::string::npos, e.what());
  }
  std::istringstream empty("");
  BOOST_CHECK_THROW(read_history(empty), std::runtime_error);
}

// Found by tests/fuzz/history_fuzzer.cpp: a number out of its field's range
// (converting it was undefined behaviour) and an op of four billion blocks
// (the checker would allocate for each) are refused, naming the line.
BOOST_AUTO_TEST_CASE(numbers_out_of_range_are_refused_not_converted) {
  const std::string header = "{\"visorlab_history\":1,\"name\":\"x\",\"seed\":1,\"end\":0,\"devices\":[]}\n";
  for (const std::string line :
       {"{\"t\":78027754444444444444444444444444444444444,\"ev\":\"ok\",\"dev\":\"g0/vhba0\",\"op_id\":1}",
        "{\"t\":1.5,\"ev\":\"ok\",\"dev\":\"g0/vhba0\",\"op_id\":1}",
        "{\"t\":1,\"ev\":\"ok\",\"dev\":\"g0/vhba0\",\"op_id\":-1}",
        "{\"t\":1,\"ev\":\"invoke\",\"dev\":\"g0/vhba0\",\"op_id\":1,\"rw\":\"write\",\"lba\":0,\"blocks\":4000000000,\"gen\":1}",
        "{\"t\":1,\"ev\":\"invoke\",\"dev\":\"g0/vhba0\",\"op_id\":1,\"rw\":\"write\",\"lba\":0,\"blocks\":0,\"gen\":1}"}) {
    std::istringstream in(header + line + "\n");
    try {
      read_history(in);
      BOOST_ERROR("read: " << line);
    } catch (const std::runtime_error& e) {
      BOOST_TEST(std::string(e.what()).find("line 2") != std::string::npos, e.what());
    }
  }
  std::istringstream bad_header("{\"visorlab_history\":1e300,\"name\":\"x\",\"seed\":1,\"end\":0,\"devices\":[]}\n");
  BOOST_CHECK_THROW(read_history(bad_header), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()
