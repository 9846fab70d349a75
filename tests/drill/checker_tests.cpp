// The checker: a clean drill passes, and every invariant and limit it judges
// fails a history that breaks it, naming the first offending operation.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

#include "drill/checker.hpp"
#include "synthetic.hpp"

using namespace visorlab::drill;
using namespace visorlab::drill::test;
namespace topo = visorlab::topology;

namespace {

const Failure* find_failure(const CheckResult& r, std::string_view what) {
  const auto it = std::find_if(r.failures.begin(), r.failures.end(), [&](const Failure& f) { return f.what == what; });
  return it == r.failures.end() ? nullptr : &*it;
}

std::string failures(const CheckResult& r) {
  std::string out;
  for (const auto& f : r.failures) out += f.message() + "\n";
  return out;
}

topo::Expect expect_with(std::string what, double limit) {
  topo::Expect e;
  e.others.push_back({std::move(what), limit});
  return e;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(checker)

BOOST_AUTO_TEST_CASE(a_clean_drill_passes_with_every_total_right) {
  topo::Expect expect;
  expect.lost_io = 0;
  expect.max_recovery = std::chrono::milliseconds(100);
  const auto r = check(clean_drill(), expect);
  BOOST_TEST(r.pass, failures(r));
  BOOST_TEST(r.failures.empty());
  BOOST_TEST(r.duration_s == 2.0);
  BOOST_TEST(r.disk.issued == 193u);
  BOOST_TEST(r.disk.completed == 193u);
  BOOST_TEST(r.disk.retried == 1u);
  BOOST_TEST(r.disk.lost == 0u);
  BOOST_TEST(r.disk.duplicated == 0u);
  BOOST_TEST(r.disk.verify_errors == 0u);
  BOOST_TEST(r.disk.iops == 96.5);
  BOOST_TEST(r.disk.latency_us.p50 == 1000.0);
  BOOST_TEST(r.disk.latency_us.p99 == 1000.0);
  BOOST_TEST(r.disk.latency_us.max == 75000.0);
  BOOST_TEST(r.net.sent == 40u);
  BOOST_TEST(r.net.received == 39u);
  BOOST_TEST(r.net.dropped == 1u);
  BOOST_TEST(r.net.dropped_outside_faults == 0u);
  BOOST_TEST(r.input.sent == 10u);
  BOOST_TEST(r.input.delivered == 10u);
  BOOST_TEST(r.input.lost == 0u);
  BOOST_TEST(r.input.out_of_order == 0u);
  BOOST_REQUIRE_EQUAL(r.expect.size(), 2u);
  BOOST_TEST(r.expect[0].what == "lost_io");
  BOOST_TEST(r.expect[1].what == "max_recovery_ms");
  BOOST_TEST(r.expect[1].value == 70.0);
  BOOST_TEST(r.expect[1].ok);
}

BOOST_AUTO_TEST_CASE(recovery_phases_and_stall_are_timed) {
  const auto r = check(clean_drill(), {});
  BOOST_REQUIRE_EQUAL(r.faults.size(), 1u);
  const auto& f = r.faults[0];
  BOOST_TEST(f.step == 0u);
  BOOST_TEST(f.kind == "crash");
  BOOST_TEST(f.target == "io0");
  BOOST_TEST(f.start == ms(1000));
  BOOST_TEST(f.detect_ms == 10.0);
  BOOST_TEST(f.pause_ms == 5.0);
  BOOST_TEST(f.restart_ms == 45.0);
  BOOST_TEST(f.resume_ms == 10.0);
  BOOST_TEST(f.total_ms == 70.0);
  // Last completion before the crash 986 ms (read at 980 + 6), next after it 1075 ms (the retried op).
  BOOST_TEST(f.stall_ms == 89.0);
}

BOOST_AUTO_TEST_CASE(phases_that_do_not_apply_are_skipped_and_held_faults_time_from_their_end) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  disk.write(ms(0), ms(1), 0);
  // A planned recover: nothing to detect; pause measured from the start.
  rec.fault(FaultWindow{0, "recover", "io0", ms(100), ms(140), false, {}});
  rec.recovery(RecoveryPhases{0, 0, ms(104), ms(130), ms(140), true, ""});
  // A pause held for 300 ms: its recovery is the 8 ms after it is lifted.
  rec.fault(FaultWindow{1, "pause", "g0/vhba0", ms(500), ms(800), true, {"g0/vhba0"}});
  rec.recovery(RecoveryPhases{1, 0, ms(501), 0, ms(808), true, ""});
  const auto r = check(finish(rec, ms(1000)), {});
  BOOST_REQUIRE_EQUAL(r.faults.size(), 2u);
  BOOST_TEST(r.faults[0].detect_ms == 0.0);
  BOOST_TEST(r.faults[0].detect_at == 0);
  BOOST_TEST(r.faults[0].pause_ms == 4.0);
  BOOST_TEST(r.faults[0].restart_ms == 26.0);
  BOOST_TEST(r.faults[0].resume_ms == 10.0);
  BOOST_TEST(r.faults[0].total_ms == 40.0);
  BOOST_TEST(r.faults[1].pause_ms == 1.0);
  BOOST_TEST(r.faults[1].restart_ms == 0.0);
  BOOST_TEST(r.faults[1].resume_ms == 307.0);  // from the pause phase
  BOOST_TEST(r.faults[1].total_ms == 8.0);
}

BOOST_AUTO_TEST_CASE(max_recovery_ms_zero_fails_naming_the_fault) {
  topo::Expect expect;
  expect.max_recovery = std::chrono::milliseconds(0);
  const auto r = check(clean_drill(), expect);
  BOOST_TEST(!r.pass);
  const auto* f = find_failure(r, "max_recovery_ms");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->id == 0u);
  BOOST_TEST(f->at == ms(1000));
  BOOST_TEST(f->detail.find("step 0 crash io0") != std::string::npos, f->detail);
  BOOST_REQUIRE_EQUAL(r.expect.size(), 1u);
  BOOST_TEST(!r.expect[0].ok);
  BOOST_TEST(r.expect[0].value == 70.0);

  expect.max_recovery = std::chrono::microseconds(70'000);
  BOOST_TEST(check(clean_drill(), expect).pass);
}

// max_recovery_ms judges recoveries (recover, crash), not a resume step
// however long it took: a resume recovers nothing (seen: a 469 ms resume
// failed a drill whose recoveries all met the limit). max_stall_ms still
// judges every fault.
BOOST_AUTO_TEST_CASE(max_recovery_ms_judges_recoveries_not_a_resume) {
  History h = clean_drill();
  h.faults.push_back(FaultWindow{1, "resume", "g0/vhba0", ms(1500), ms(1969), false, {"g0/vhba0"}});
  topo::Expect expect;
  expect.max_recovery = std::chrono::milliseconds(100);
  const auto r = check(h, expect);
  BOOST_REQUIRE_EQUAL(r.faults.size(), 2u);
  BOOST_TEST(r.faults[1].total_ms == 469.0);  // reported as it was
  BOOST_REQUIRE_EQUAL(r.expect.size(), 1u);
  BOOST_TEST(r.expect[0].value == 70.0);  // the crash's recovery, the only one
  BOOST_TEST(r.pass);
}

BOOST_AUTO_TEST_CASE(an_acknowledged_write_a_later_read_does_not_see_is_lost) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  disk.write(ms(10), ms(11), 5);                      // op 1, gen 1
  const auto old_block = std::vector<std::byte>(disk.block(5).begin(), disk.block(5).end());
  const auto lost = disk.write(ms(20), ms(21), 5);    // op 2, gen 2: acknowledged…
  std::copy(old_block.begin(), old_block.end(), disk.block(5).begin());  // …but the disk lost it
  const auto read = disk.read(ms(30), ms(31), 5);
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.disk.lost == 1u);
  BOOST_TEST(r.disk.lost_writes == 1u);
  BOOST_TEST(r.disk.verify_errors == 0u);
  const auto* f = find_failure(r, "lost_io");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->device == "g0/vhba0");
  BOOST_TEST(f->id == lost);
  BOOST_TEST(f->detail.find("read op " + std::to_string(read)) != std::string::npos, f->detail);
  BOOST_TEST(f->detail.find("saw gen 1") != std::string::npos, f->detail);
}

BOOST_AUTO_TEST_CASE(reading_zeros_after_an_acknowledged_write_is_a_lost_write) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  const auto w = disk.write(ms(10), ms(11), 3);
  disk.read_seeing(ms(20), ms(21), 3, {BlockSeen{0, 0, 0, true}});
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_REQUIRE(find_failure(r, "lost_io"));
  BOOST_TEST(find_failure(r, "lost_io")->id == w);
}

BOOST_AUTO_TEST_CASE(a_read_may_see_either_of_two_overlapping_writes_or_one_still_in_flight) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  disk.next_op = 10;  // ops 1…3 below are by hand
  // Writes gen 1 and gen 2 to lba 0 run concurrently: either may land last.
  rec.disk_invoke(ms(10), disk.id, 1, DiskOp::write, 0, 1, 1);
  rec.disk_invoke(ms(11), disk.id, 2, DiskOp::write, 0, 1, 2);
  rec.disk_ok(ms(12), disk.id, 2);
  rec.disk_ok(ms(13), disk.id, 1);
  disk.read_seeing(ms(20), ms(21), 0, {disk.good(0, 1)});
  // A write still in flight when a read completes may or may not be seen.
  rec.disk_invoke(ms(30), disk.id, 3, DiskOp::write, 0, 1, 3);
  disk.read_seeing(ms(31), ms(32), 0, {disk.good(0, 3)});
  disk.read_seeing(ms(33), ms(34), 0, {disk.good(0, 2)});
  rec.disk_ok(ms(40), disk.id, 3);
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(r.pass, failures(r));
}

BOOST_AUTO_TEST_CASE(an_io_never_completed_is_lost_and_named) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  disk.write(ms(1), ms(2), 0);
  rec.disk_invoke(ms(50), disk.id, 41, DiskOp::write, 7, 2, 9);  // never completes
  rec.disk_invoke(ms(60), disk.id, 42, DiskOp::read, 7, 2);      // nor this, later
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.disk.issued == 3u);
  BOOST_TEST(r.disk.completed == 1u);
  BOOST_TEST(r.disk.lost == 2u);
  const auto* f = find_failure(r, "lost_io");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->count == 2u);
  BOOST_TEST(f->id == 41u);  // the first
  BOOST_TEST(f->at == ms(50));
  BOOST_TEST(f->detail.find("write lba 7 x2 gen 9") != std::string::npos, f->detail);
  BOOST_TEST(f->detail.find("never completed") != std::string::npos, f->detail);

  topo::Expect loose;
  loose.lost_io = 2;
  BOOST_TEST(check(finish(rec, ms(100)), loose).pass);
}

// A dead disk (every read fails, writes "succeed") must not pass: a failure
// outside every fault window is an io_error, named, unless expect allows it.
BOOST_AUTO_TEST_CASE(failed_io_outside_a_fault_window_is_an_io_error) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  const auto reason = std::string("medium error");
  for (int i = 0; i < 5; ++i) {
    disk.write(ms(10 * i), ms(10 * i + 1), static_cast<std::uint64_t>(i));
    const auto op = disk.next_op++;
    rec.disk_invoke(ms(10 * i + 2), disk.id, op, DiskOp::read, static_cast<std::uint64_t>(i), 1);
    rec.disk_fail(ms(10 * i + 3), disk.id, op, reason);
  }
  // One more inside a crash of its service: the fault's, not an error.
  const auto op = disk.next_op++;
  rec.disk_invoke(ms(200), disk.id, op, DiskOp::read, 1, 1);
  rec.disk_fail(ms(210), disk.id, op, "DID_TIME_OUT");
  rec.fault(FaultWindow{0, "crash", "io0", ms(190), ms(205), false, {"g0/vhba0"}});
  const auto r = check(finish(rec, ms(300)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.disk.failed == 6u);
  BOOST_TEST(r.disk.io_errors == 5u);
  const auto* f = find_failure(r, "io_errors");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->count == 5u);
  BOOST_TEST(f->device == "g0/vhba0");
  BOOST_TEST(f->id == 2u);  // the first read
  BOOST_TEST(f->detail.find("medium error") != std::string::npos, f->detail);
  const auto v = std::find_if(r.violations.begin(), r.violations.end(), [](const Violation& x) { return x.kind == "io_error"; });
  BOOST_REQUIRE(v != r.violations.end());
  BOOST_TEST(v->device == "g0/vhba0");
  BOOST_TEST(v->detail.find("and 4 more") != std::string::npos, v->detail);
  BOOST_TEST(check(finish(rec, ms(300)), expect_with("io_errors", 5)).pass);
}

// Jepsen's final read: after the drill's end every block with an
// acknowledged write is read again and holds its latest generation.
BOOST_AUTO_TEST_CASE(the_final_read_must_cover_every_acknowledged_block_with_its_latest_write) {
  CheckOptions final_read;
  final_read.final_read = true;
  {
    Recorder rec;
    Disk disk(rec, "g0/vhba0");
    disk.write(ms(1), ms(2), 0, 2);
    disk.write(ms(3), ms(4), 5);
    disk.read(ms(101), ms(102), 0, 2);  // after the end (100 ms): the final read
    disk.read(ms(103), ms(104), 5);
    const auto r = check(finish(rec, ms(100)), {}, final_read);
    BOOST_TEST(r.pass, failures(r));
    BOOST_TEST(r.disk.final_read.checked);
    BOOST_TEST(r.disk.final_read.blocks == 3u);
    BOOST_TEST(r.disk.final_read.ok == 3u);
    BOOST_TEST(r.disk.final_read.bad == 0u);
  }
  {  // lba 5 never read back: named
    Recorder rec;
    Disk disk(rec, "g0/vhba0");
    disk.write(ms(1), ms(2), 0);
    const auto lost = disk.write(ms(3), ms(4), 5);
    disk.read(ms(101), ms(102), 0);
    const auto r = check(finish(rec, ms(100)), {}, final_read);
    BOOST_TEST(!r.pass);
    BOOST_TEST(r.disk.final_read.bad == 1u);
    const auto* f = find_failure(r, "final_read");
    BOOST_REQUIRE(f);
    BOOST_TEST(f->id == lost);
    BOOST_TEST(f->detail.find("lba 5") != std::string::npos, f->detail);
    BOOST_TEST(check(finish(rec, ms(100)), {}).pass);  // not judged when the workload does not read back
  }
  {  // read back stale: a lost write, and a bad block of the final read
    Recorder rec;
    Disk disk(rec, "g0/vhba0");
    disk.write(ms(1), ms(2), 3);
    const auto second = disk.write(ms(5), ms(6), 3);
    disk.read_seeing(ms(101), ms(102), 3, {disk.good(3, 1)});
    const auto r = check(finish(rec, ms(100)), {}, final_read);
    BOOST_TEST(!r.pass);
    BOOST_TEST(r.disk.final_read.blocks == 1u);
    BOOST_TEST(r.disk.final_read.bad == 1u);
    const auto* f = find_failure(r, "lost_io");
    BOOST_REQUIRE(f);
    BOOST_TEST(f->id == second);
  }
  {  // a device destroyed by a step is not read back
    Recorder rec;
    Disk disk(rec, "g0/vhba0");
    disk.write(ms(1), ms(2), 0);
    rec.fault(FaultWindow{0, "destroy", "g0/vhba0", ms(50), ms(51), false, {"g0/vhba0"}});
    const auto r = check(finish(rec, ms(100)), {}, final_read);
    BOOST_TEST(r.pass, failures(r));
    BOOST_TEST(r.disk.final_read.blocks == 0u);
  }
}

BOOST_AUTO_TEST_CASE(a_retried_io_is_one_op_not_lost_nor_duplicated) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  rec.disk_invoke(ms(1), disk.id, 1, DiskOp::write, 0, 1, 1);
  rec.disk_retried(ms(2), disk.id, 1);
  rec.disk_retried(ms(3), disk.id, 1);
  rec.disk_ok(ms(4), disk.id, 1);
  const auto r = check(finish(rec, ms(10)), {});
  BOOST_TEST(r.pass, failures(r));
  BOOST_TEST(r.disk.issued == 1u);
  BOOST_TEST(r.disk.completed == 1u);
  BOOST_TEST(r.disk.retried == 2u);
}

BOOST_AUTO_TEST_CASE(a_second_completion_is_a_duplicate) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  const auto op = disk.write(ms(1), ms(2), 0);
  rec.disk_ok(ms(5), disk.id, op);
  rec.disk_fail(ms(7), disk.id, 99, "never issued");
  const auto r = check(finish(rec, ms(10)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.disk.duplicated == 2u);
  BOOST_TEST(r.disk.completed == 1u);
  const auto* f = find_failure(r, "duplicated_io");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->id == op);
  BOOST_TEST(f->at == ms(5));
  BOOST_TEST(f->detail.find("completed again") != std::string::npos, f->detail);
}

BOOST_AUTO_TEST_CASE(corrupt_misdirected_and_foreign_blocks_are_verify_errors) {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  disk.write(ms(1), ms(2), 0, 4);  // gen 1 on lba 0…3
  disk.block(1)[100] ^= std::byte{1};                                        // torn
  std::copy(disk.block(3).begin(), disk.block(3).end(), disk.block(2).begin());  // lba 3's data on lba 2
  const auto bad = disk.read(ms(10), ms(11), 0, 4);
  // A block another guest wrote.
  disk.read_seeing(ms(20), ms(21), 0, {BlockSeen{0, 1, device_tag("g1/vhba0"), true}});
  // A generation never written.
  disk.read_seeing(ms(30), ms(31), 0, {disk.good(0, 77)});
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.disk.verify_errors == 4u);
  const auto* f = find_failure(r, "verify_errors");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->id == bad);
  BOOST_TEST(f->detail.find("lba 1 checksum bad") != std::string::npos, f->detail);
  BOOST_TEST(r.disk.lost == 0u);

  BOOST_TEST(check(finish(rec, ms(100)), expect_with("verify_errors", 4)).pass);
}

BOOST_AUTO_TEST_CASE(an_input_gap_is_lost_input) {
  Recorder rec;
  const auto kbd = rec.device("g0/keyboard0");
  for (std::uint64_t n = 1; n <= 5; ++n) rec.input_produced(ms(10.0 * n), kbd, n);
  for (std::uint64_t n : {1, 2, 4, 5}) rec.input_delivered(ms(10.0 * n + 1), kbd, n);
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.input.sent == 5u);
  BOOST_TEST(r.input.delivered == 4u);
  BOOST_TEST(r.input.lost == 1u);
  BOOST_TEST(r.input.out_of_order == 0u);
  const auto* f = find_failure(r, "lost_input");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->device == "g0/keyboard0");
  BOOST_TEST(f->id == 3u);
  BOOST_TEST(f->at == ms(30));
}

BOOST_AUTO_TEST_CASE(input_must_start_at_one_and_the_tail_counts_when_the_producer_says) {
  Recorder rec;
  const auto mouse = rec.device("g0/mouse0");
  rec.input_produced(ms(1), mouse, 3);  // only the high-water mark recorded
  rec.input_delivered(ms(2), mouse, 2);
  const auto r = check(finish(rec, ms(10)), {});
  BOOST_TEST(r.input.sent == 3u);
  BOOST_TEST(r.input.lost == 2u);  // 1 and 3
  BOOST_REQUIRE(find_failure(r, "lost_input"));
  BOOST_TEST(find_failure(r, "lost_input")->id == 1u);
}

BOOST_AUTO_TEST_CASE(input_delivered_out_of_order_is_named) {
  Recorder rec;
  const auto kbd = rec.device("g0/keyboard0");
  for (std::uint64_t n = 1; n <= 4; ++n) rec.input_produced(ms(10.0 * n), kbd, n);
  rec.input_delivered(ms(51), kbd, 1);
  rec.input_delivered(ms(52), kbd, 3);
  rec.input_delivered(ms(53), kbd, 2);
  rec.input_delivered(ms(54), kbd, 4);
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.input.out_of_order == 1u);
  BOOST_TEST(r.input.lost == 0u);
  const auto* f = find_failure(r, "out_of_order_input");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->id == 2u);
  BOOST_TEST(f->at == ms(53));
  BOOST_TEST(f->detail.find("after seq_no 3") != std::string::npos, f->detail);
}

BOOST_AUTO_TEST_CASE(frames_may_drop_inside_a_fault_window_affecting_them_only) {
  const auto run = [](Nanos sent_at, std::vector<std::string> affected) {
    Recorder rec;
    const auto a = rec.device("g0/vnic0");
    const auto b = rec.device("g1/vnic0");
    rec.frame_sent(ms(10), a, b, 1);
    rec.frame_received(ms(11), b, a, 1);
    rec.frame_sent(sent_at, a, b, 2);  // never received
    rec.fault(FaultWindow{3, "partition", "a,b", ms(500), ms(600), true, std::move(affected)});
    return check(finish(rec, ms(2000)), {});
  };
  const auto inside = run(ms(550), {"g1/vnic0"});
  BOOST_TEST(inside.pass, failures(inside));
  BOOST_TEST(inside.net.dropped == 1u);
  BOOST_TEST(inside.net.dropped_outside_faults == 0u);
  BOOST_TEST(run(ms(650), {"g1/vnic0"}).pass);  // within the 100 ms grace after it
  BOOST_TEST(run(ms(495), {}).pass);            // in flight as it struck

  const auto outside = run(ms(900), {"g1/vnic0"});
  BOOST_TEST(!outside.pass);
  BOOST_TEST(outside.net.dropped_outside_faults == 1u);
  const auto* f = find_failure(outside, "dropped_outside_faults");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->device == "g0/vnic0");
  BOOST_TEST(f->id == 2u);
  BOOST_TEST(f->at == ms(900));

  const auto elsewhere = run(ms(550), {"g7/vnic0"});  // a fault, but not on this path
  BOOST_TEST(!elsewhere.pass);
  BOOST_TEST(elsewhere.net.dropped_outside_faults == 1u);
}

BOOST_AUTO_TEST_CASE(a_frame_received_twice_or_never_sent_fails) {
  Recorder rec;
  const auto a = rec.device("g0/vnic0");
  const auto b = rec.device("g1/vnic0");
  rec.frame_sent(ms(10), a, b, 1);
  rec.frame_received(ms(11), b, a, 1);
  rec.frame_received(ms(12), b, a, 1);
  const auto r = check(finish(rec, ms(20)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.net.duplicated == 1u);
  BOOST_REQUIRE(find_failure(r, "net_duplicated"));
}

BOOST_AUTO_TEST_CASE(recorded_violations_are_carried_through_and_fail) {
  Recorder rec;
  rec.violation(Violation{"pause_guard", "g0/vhba0", ms(40), "insert on queue 0 while paused"});
  rec.violation(Violation{"pause_guard", "g1/vhba0", ms(20), "remove on queue 1 while paused"});
  const auto h = finish(rec, ms(100));
  const auto r = check(h, {});
  BOOST_TEST(!r.pass);
  BOOST_REQUIRE_EQUAL(r.violations.size(), 2u);
  BOOST_TEST(r.violations[0].device == "g1/vhba0");  // in time order
  const auto* f = find_failure(r, "violations");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->device == "g1/vhba0");
  BOOST_TEST(f->at == ms(20));
  BOOST_TEST(check(h, expect_with("violations", 2)).pass);
}

BOOST_AUTO_TEST_CASE(a_failed_recovery_fails) {
  Recorder rec;
  rec.fault(FaultWindow{2, "crash", "io0", ms(10), ms(10), false, {}});
  rec.recovery(RecoveryPhases{2, ms(12), ms(15), 0, 0, false, "restart timed out"});
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(!r.faults.at(0).recovered);
  const auto* f = find_failure(r, "recovery_failed");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->id == 2u);
  BOOST_TEST(f->detail.find("restart timed out") != std::string::npos, f->detail);
}

BOOST_AUTO_TEST_CASE(several_services_recovering_for_one_step_end_each_phase_together) {
  Recorder rec;
  rec.fault(FaultWindow{5, "kill_agent", "b", ms(100), ms(1100), false, {}});
  rec.recovery(RecoveryPhases{5, ms(110), ms(115), ms(1150), ms(1180), true, ""});  // io0
  rec.recovery(RecoveryPhases{5, ms(120), ms(125), ms(1140), ms(1160), true, ""});  // con0
  auto r = check(finish(rec, ms(2000)), {});
  BOOST_TEST(r.pass, failures(r));
  BOOST_TEST(r.faults.at(0).detect_ms == 20.0);
  BOOST_TEST(r.faults.at(0).pause_ms == 5.0);
  BOOST_TEST(r.faults.at(0).restart_ms == 1025.0);
  BOOST_TEST(r.faults.at(0).resume_ms == 30.0);
  BOOST_TEST(r.faults.at(0).total_ms == 1080.0);

  rec.recovery(RecoveryPhases{5, ms(130), 0, 0, 0, false, "console partition never came back"});
  r = check(finish(rec, ms(2000)), {});
  BOOST_TEST(!r.pass);
  BOOST_TEST(!r.faults.at(0).recovered);
  BOOST_REQUIRE(find_failure(r, "recovery_failed"));
}

BOOST_AUTO_TEST_CASE(recovery_phases_without_a_fault_window_are_a_broken_history) {
  Recorder rec;
  rec.recovery(RecoveryPhases{4, ms(12), ms(15), ms(20), ms(25), true, ""});
  const auto r = check(finish(rec, ms(100)), {});
  BOOST_TEST(!r.pass);
  BOOST_REQUIRE(find_failure(r, "history"));
  BOOST_TEST(find_failure(r, "history")->id == 4u);
}

BOOST_AUTO_TEST_CASE(max_stall_ms_judges_the_longest_stall) {
  const auto h = clean_drill();
  const auto tight = check(h, expect_with("max_stall_ms", 50));
  BOOST_TEST(!tight.pass);
  BOOST_REQUIRE(find_failure(tight, "max_stall_ms"));
  BOOST_TEST(find_failure(tight, "max_stall_ms")->id == 0u);
  BOOST_TEST(tight.expect.at(0).value == 89.0);
  BOOST_TEST(check(h, expect_with("max_stall_ms", 90)).pass);
}

BOOST_AUTO_TEST_CASE(max_disk_p99_us_names_the_first_slow_op) {
  const auto h = clean_drill();
  const auto r = check(h, expect_with("max_disk_p99_us", 999));
  BOOST_TEST(!r.pass);
  const auto* f = find_failure(r, "max_disk_p99_us");
  BOOST_REQUIRE(f);
  BOOST_TEST(f->device == "g0/vhba0");
  BOOST_TEST(f->id == 1u);  // the first op, completed at 1 ms
  BOOST_TEST(check(h, expect_with("max_disk_p99_us", 1000)).pass);
}

BOOST_AUTO_TEST_CASE(min_disk_iops_is_a_lower_limit) {
  const auto h = clean_drill();
  BOOST_TEST(check(h, expect_with("min_disk_iops", 96)).pass);
  const auto r = check(h, expect_with("min_disk_iops", 97));
  BOOST_TEST(!r.pass);
  BOOST_REQUIRE(find_failure(r, "min_disk_iops"));
  BOOST_TEST(!r.expect.at(0).ok);
  BOOST_TEST(r.expect.at(0).value == 96.5);
}

BOOST_AUTO_TEST_CASE(expect_results_keep_the_files_order) {
  topo::Expect e;
  e.lost_io = 0;
  e.others = {{"violations", 0}, {"duplicated_io", 0}, {"max_stall_ms", 1000}, {"out_of_order_input", 0}};
  const auto r = check(clean_drill(), e);
  BOOST_TEST(r.pass, failures(r));
  std::vector<std::string> order;
  for (const auto& x : r.expect) order.push_back(x.what);
  const std::vector<std::string> want{"lost_io", "violations", "duplicated_io", "max_stall_ms", "out_of_order_input"};
  BOOST_TEST(order == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
