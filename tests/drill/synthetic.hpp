// Synthetic drill histories for the checker's tests: a Recorder driven by
// hand, with an in-memory disk so reads decode what writes really encoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "drill/recorder.hpp"

namespace visorlab::drill::test {

constexpr Nanos ms(double v) { return static_cast<Nanos>(v * 1e6); }

constexpr std::size_t kBlock = 512;

// One vhba device, its blocks in memory.
struct Disk {
  Recorder& rec;
  std::string name;
  DeviceId id;
  std::vector<std::byte> bytes = std::vector<std::byte>(64 * kBlock);
  std::uint64_t next_op = 1;
  std::uint64_t next_gen = 1;

  Disk(Recorder& r, std::string n) : rec(r), name(std::move(n)), id(r.device(name)) {}

  std::span<std::byte> block(std::uint64_t lba) { return std::span(bytes).subspan(lba * kBlock, kBlock); }

  // A write of `blocks` blocks: the disk changes when it completes (at `done`).
  std::uint64_t write(Nanos at, Nanos done, std::uint64_t lba, std::uint32_t blocks = 1) {
    const auto op = next_op++;
    const auto gen = next_gen++;
    rec.disk_invoke(at, id, op, DiskOp::write, lba, blocks, gen);
    for (std::uint32_t b = 0; b < blocks; ++b) encode_block(block(lba + b), lba + b, gen, device_tag(name));
    rec.disk_ok(done, id, op);
    return op;
  }

  // A read that decodes what is on the disk now.
  std::uint64_t read(Nanos at, Nanos done, std::uint64_t lba, std::uint32_t blocks = 1) {
    std::vector<BlockSeen> seen;
    for (std::uint32_t b = 0; b < blocks; ++b) seen.push_back(decode_block(block(lba + b)));
    return read_seeing(at, done, lba, seen);
  }

  // A read that saw `seen`, whatever the disk holds.
  std::uint64_t read_seeing(Nanos at, Nanos done, std::uint64_t lba, const std::vector<BlockSeen>& seen) {
    const auto op = next_op++;
    rec.disk_invoke(at, id, op, DiskOp::read, lba, static_cast<std::uint32_t>(seen.size()));
    rec.disk_ok(done, id, op, seen);
    return op;
  }

  BlockSeen good(std::uint64_t lba, std::uint64_t gen) const { return BlockSeen{lba, gen, device_tag(name), true}; }
};

inline History finish(const Recorder& rec, Nanos end, std::string name = "synthetic") {
  History h = rec.history();
  h.name = std::move(name);
  h.seed = 7;
  h.end = end;
  return h;
}

// A clean 2 s drill: g0/vhba0 writes then reads an LBA every 20 ms; io0
// crashes at 1000 ms (restarted after 50 ms) and its guests resume at 1070 ms;
// the op in flight at the crash is retried and completes at 1075 ms. One vnic
// frame is sent every 50 ms (the one at 1000 ms drops, inside the fault);
// keyboard reports 1…10 every 100 ms. 193 disk ops, 40 frames.
inline History clean_drill() {
  Recorder rec;
  Disk disk(rec, "g0/vhba0");
  const auto nic0 = rec.device("g0/vnic0");
  const auto nic1 = rec.device("g1/vnic0");
  const auto kbd = rec.device("g0/keyboard0");
  for (int t = 0; t < 2000; t += 20) {
    if (t >= 1000 && t < 1080) continue;
    const auto lba = static_cast<std::uint64_t>(t / 20 % 8);
    disk.write(ms(t), ms(t + 1), lba);
    disk.read(ms(t + 5), ms(t + 6), lba);
  }
  // In flight at the crash: DID_RESET at the pause, reissued after resume.
  const auto op = disk.next_op++;
  rec.disk_invoke(ms(1000), disk.id, op, DiskOp::write, 9, 1, disk.next_gen++);
  rec.disk_retried(ms(1015), disk.id, op);
  rec.disk_ok(ms(1075), disk.id, op);

  std::uint64_t seq = 1;
  for (int t = 0; t < 2000; t += 50, ++seq) {
    rec.frame_sent(ms(t), nic0, nic1, seq);
    if (t != 1000) rec.frame_received(ms(t + 1), nic1, nic0, seq);
  }
  for (std::uint64_t n = 1; n <= 10; ++n) {
    rec.input_produced(ms(100.0 * n), kbd, n);
    rec.input_delivered(ms(100.0 * n + 2), kbd, n);
  }
  rec.fault(FaultWindow{0, "crash", "io0", ms(1000), ms(1050), false,
                        {"g0/vhba0", "g0/vnic0", "g1/vnic0"}});
  rec.recovery(RecoveryPhases{0, ms(1010), ms(1015), ms(1060), ms(1070), true, ""});
  return finish(rec, ms(2000), "clean");
}

}  // namespace visorlab::drill::test
