#include "drill/workload/workload.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "actors/drivers/visorhba.hpp"
#include "actors/drivers/visornic.hpp"
#include "actors/guest/guest.hpp"
#include "channel/vnic_config.hpp"
#include "drill/block_format.hpp"
#include "drill/history_file.hpp"
#include "drill/history_wire.hpp"
#include "drill/recorder.hpp"

namespace visorlab::drill {

namespace {

using Clock = std::chrono::steady_clock;
using drivers::ScsiRequest;
using drivers::ScsiResult;
using drivers::VisorHba;
using drivers::VisorNic;

constexpr std::uint32_t kFrameMagic = 0x46574c56;  // "VLWF"
constexpr std::uint64_t kNoSlot = ~std::uint64_t{0};
constexpr auto kProbeRetry = std::chrono::milliseconds(50);
constexpr std::size_t kHeldMax = 1 << 20;  // frames/reports kept before start, at most

// splitmix64: small, fast, and good enough to pick LBAs and op kinds.
struct Rng {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::uint64_t below(std::uint64_t n) noexcept {
    return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

void put_be(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}
std::uint64_t get_be(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
  return v;
}

std::string errno_name(int rc) {
  switch (-rc) {
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EBUSY: return "EBUSY";
    case EAGAIN: return "EAGAIN";
    case EMSGSIZE: return "EMSGSIZE";
    default: return std::to_string(rc);
  }
}

// Why a SCSI command failed, as a reason the report can show.
std::string scsi_reason(const ScsiResult& r) {
  const std::uint32_t host = static_cast<std::uint32_t>(r.linuxstat) >> 16 & 0xff;
  char buf[160];
  const char* name = nullptr;
  switch (host) {
    case 0x00: name = nullptr; break;
    case 0x01: name = "DID_NO_CONNECT"; break;
    case 0x02: name = "DID_BUS_BUSY"; break;
    case 0x03: name = "DID_TIME_OUT"; break;
    case 0x04: name = "DID_BAD_TARGET"; break;
    case 0x05: name = "DID_ABORT"; break;
    case 0x07: name = "DID_ERROR"; break;
    case 0x08: name = "DID_RESET"; break;
    default: name = "DID_?"; break;
  }
  if (name) {
    std::snprintf(buf, sizeof buf, "%s (linuxstat 0x%08x)", name, static_cast<std::uint32_t>(r.linuxstat));
  } else {
    // sense: fixed format, key in byte 2, ASC/ASCQ in bytes 12/13.
    std::snprintf(buf, sizeof buf, "scsi status 0x%02x (linuxstat 0x%08x) sense key 0x%x asc 0x%02x ascq 0x%02x",
                  r.scsistat, static_cast<std::uint32_t>(r.linuxstat), r.sense[2] & 0x0f, r.sense[12], r.sense[13]);
  }
  return buf;
}

std::uint64_t load64(const std::byte* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::byte filler(std::uint64_t seq, std::uint64_t tag, std::size_t i) {
  return static_cast<std::byte>(seq * 131 + tag + i * 7);
}

// What outlives the Workload object: a driver may complete a command after
// the application is gone (the bus removes its devices when the guest goes),
// so completions hold this, never the Workload.
struct Core {
  struct Held {
    Clock::time_point at;
    EventKind kind;
    DeviceId device;
    DeviceId peer;
    std::uint64_t seq;
  };
  struct HeldViolation {
    Clock::time_point at;
    Violation v;
  };
  // Per device name, so a device that leaves and comes back goes on numbering.
  struct DiskCounters {
    std::uint64_t next_op = 1;
    std::uint64_t next_gen = 1;
  };

  explicit Core(std::string g) : guest(std::move(g)) {}

  Nanos now() const { return clock.now(); }

  void violation(Clock::time_point at, std::string kind, std::string device, std::string detail) {
    if (!record) return;
    Violation v{std::move(kind), std::move(device), 0, std::move(detail)};
    if (clock_set) {
      v.at = clock.at(at);
      recorder.violation(std::move(v));
    } else if (held_violations.size() < 1024) {
      held_violations.push_back({at, std::move(v)});
    }
  }

  std::string guest;
  actors::WorkloadSpec spec;  // from the first start
  bool record = true;         // spec.record once started; until then what arrives is held
  Recorder recorder;
  DrillClock clock;
  bool clock_set = false;
  bool running = false;
  WorkloadStats stats;
  std::unordered_map<std::string, DiskCounters> disk_counters;
  std::vector<Held> held;
  std::vector<HeldViolation> held_violations;
};

// One vhba device in use.
struct Disk {
  struct Slot {
    std::uint64_t op_id = 0;
    std::uint64_t lba = 0;
    std::uint64_t gen = 0;
    Nanos invoked = 0;
    DiskOp op = DiskOp::read;
    bool used = false;
  };
  enum class Phase { probe, probing, ready, unusable };

  Disk(std::shared_ptr<Core> c, std::string n, bus::Device* d)
      : core(std::move(c)), name(std::move(n)), id(core->recorder.device(name)), tag(device_tag(name)), dev(d),
        counters(&core->disk_counters[name]) {
    rng.state = core->spec.seed * 0x9E3779B97F4A7C15ull ^ device_tag(core->guest) ^ (tag << 1);
    const std::uint32_t depth = std::clamp<std::uint32_t>(core->spec.queue_depth, 0, 128);
    slots.resize(depth);
    for (std::uint32_t i = depth; i-- > 0;) free_slots.push_back(i);
    resets_seen = VisorHba::counts(*dev).resets;
  }

  std::uint64_t in_flight() const { return slots.size() - free_slots.size() + (phase == Phase::probing ? 1 : 0); }
  bool busy() const { return in_flight() > 0 || reading_back(); }

  // Notices commands failed with DID_RESET (a pause): when, for disk_retried.
  void observe_resets(Nanos t) {
    const std::uint64_t resets = VisorHba::counts(*dev).resets;
    if (resets != resets_seen) {
      resets_seen = resets;
      reset_epochs.push_back(t);
    }
  }

  void probe(guest::Guest& g, Clock::time_point now, const std::shared_ptr<Disk>& self) {
    ScsiRequest r;
    r.cdb[0] = 0x9E;  // SERVICE ACTION IN(16)
    r.cdb[1] = 0x10;  // READ CAPACITY(16)
    put_be(&r.cdb[10], 32, 4);
    r.dir = channel::io::DataDir::from_device;
    r.data_in = 32;
    r.done = [self](const ScsiResult& res) { self->capacity(res); };
    phase = Phase::probing;
    next_probe = now + kProbeRetry;
    if (g.hba().submit(*dev, std::move(r)) != 0) phase = Phase::probe;
  }

  void capacity(const ScsiResult& r) {
    phase = Phase::probe;  // again after kProbeRetry, unless this worked
    if (r.linuxstat != 0 || r.data.size() < 12) return;
    const std::uint64_t last_lba = get_be(r.data.data(), 8);
    const std::uint32_t sector = static_cast<std::uint32_t>(get_be(r.data.data() + 8, 4));
    const std::uint32_t bs = core->spec.block_size;
    if (sector < kMinBlockSize || sector % 8 != 0 || bs % sector != 0) {
      phase = Phase::unusable;
      return;
    }
    sector_size = sector;
    sectors_per_block = bs / sector;
    blocks = (last_lba + 1) / sectors_per_block;
    phase = blocks > 0 ? Phase::ready : Phase::unusable;
    written.assign(blocks, false);  // one bit a block: bounded by the disk, not the drill
  }

  // Fills the queue up to queue_depth.
  void issue(guest::Guest& g, Nanos t, const std::shared_ptr<Disk>& self) {
    while (!free_slots.empty()) {
      std::uint64_t block = kNoSlot;
      for (int tries = 0; tries < 8 && block == kNoSlot; ++tries) {
        const std::uint64_t b = rng.below(blocks);
        const std::uint64_t lba = b * sectors_per_block;
        const bool busy = std::any_of(slots.begin(), slots.end(), [&](const Slot& s) { return s.used && s.lba == lba; });
        if (!busy) block = b;
      }
      if (block == kNoSlot) return;  // a small disk crowded by the queue: next step
      const DiskOp op = rng.unit() < core->spec.read_ratio ? DiskOp::read : DiskOp::write;
      if (!submit(g, t, self, block, op)) return;
    }
  }

  // Jepsen's final read: once the workload stopped and its last ops are in,
  // reads every block it ever had a write acknowledged on, so the checker
  // sees the latest generation of each (a lost write cannot hide in a block
  // nobody read again).
  void read_back(guest::Guest& g, Nanos t, const std::shared_ptr<Disk>& self) {
    if (readback == Readback::waiting) {
      if (in_flight() > 0) return;
      readback = Readback::reading;
    }
    while (readback == Readback::reading && !free_slots.empty()) {
      while (next_readback < written.size() && !written[next_readback]) ++next_readback;
      if (next_readback == written.size()) {
        readback = Readback::done;
        return;
      }
      if (!submit(g, t, self, next_readback, DiskOp::read)) return;
      ++next_readback;
    }
  }
  bool reading_back() const { return readback == Readback::waiting || readback == Readback::reading; }

  // Issues one op on `block` in a free slot; false if the driver refused it
  // (recorded as failed; the slot stays free).
  bool submit(guest::Guest& g, Nanos t, const std::shared_ptr<Disk>& self, std::uint64_t block, DiskOp op) {
    const actors::WorkloadSpec& spec = core->spec;
    const std::uint32_t index = free_slots.back();
    Slot& s = slots[index];
    s.op = op;
    s.lba = block * sectors_per_block;
    s.op_id = counters->next_op++;
    s.gen = s.op == DiskOp::write ? counters->next_gen++ : 0;
    s.invoked = t;

    ScsiRequest r;
    const bool write = s.op == DiskOp::write;
    r.cdb[0] = write ? 0x8A : 0x88;  // WRITE(16) / READ(16)
    put_be(&r.cdb[2], s.lba, 8);
    put_be(&r.cdb[10], sectors_per_block, 4);
    if (write) {
      r.dir = channel::io::DataDir::to_device;
      r.data.resize(spec.block_size);
      auto bytes = std::as_writable_bytes(std::span(r.data));
      for (std::uint32_t i = 0; i < sectors_per_block; ++i)
        encode_block(bytes.subspan(std::size_t{i} * sector_size, sector_size), s.lba + i, s.gen, tag);
      ++core->stats.writes;
    } else {
      r.dir = channel::io::DataDir::from_device;
      r.data_in = spec.block_size;
      ++core->stats.reads;
    }
    r.done = [self, index](const ScsiResult& res) { self->complete(index, res); };
    if (core->record) core->recorder.disk_invoke(t, id, s.op_id, s.op, s.lba, sectors_per_block, s.gen);
    ++core->stats.invoked;
    const int rc = g.hba().submit(*dev, std::move(r));
    if (rc != 0) {
      if (core->record) core->recorder.disk_fail(t, id, s.op_id, "submit refused: " + errno_name(rc));
      ++core->stats.failed;
      ++core->stats.completed;
      return false;  // the device is going away or refuses: next step
    }
    s.used = true;
    free_slots.pop_back();
    return true;
  }

  // The time of the k-th reset after `invoked` (a pause noticed), else `done`.
  Nanos retry_at(Nanos invoked, std::uint32_t k, Nanos done) const {
    auto it = std::upper_bound(reset_epochs.begin(), reset_epochs.end(), invoked);
    it += std::min<std::ptrdiff_t>(k, reset_epochs.end() - it);
    return it == reset_epochs.end() ? done : std::min(*it, done);
  }

  void complete(std::uint32_t index, const ScsiResult& r) {
    Slot& s = slots[index];
    if (!s.used) return;  // never: a completion is handed over once
    const Nanos t = core->now();
    WorkloadStats& st = core->stats;
    st.retried += r.resets;
    ++st.completed;
    if (core->record) {
      for (std::uint32_t k = 0; k < r.resets; ++k) core->recorder.disk_retried(retry_at(s.invoked, k, t), id, s.op_id);
    }
    if (r.linuxstat != 0) {
      ++st.failed;
      if (core->record) core->recorder.disk_fail(t, id, s.op_id, scsi_reason(r));
    } else if (s.op == DiskOp::read && core->spec.verify) {
      seen.clear();
      const auto bytes = std::as_bytes(std::span(r.data));
      for (std::uint32_t i = 0; i < sectors_per_block; ++i) {
        const std::size_t at = std::size_t{i} * sector_size;
        const BlockSeen b =
            at + sector_size <= bytes.size() ? decode_block(bytes.subspan(at, sector_size)) : BlockSeen{};
        if (!b.checksum_ok || (b.gen != 0 && (b.lba != s.lba + i || b.device_tag != tag))) ++st.bad_sectors;
        seen.push_back(b);
      }
      if (core->record) core->recorder.disk_ok(t, id, s.op_id, seen);
    } else if (core->record) {
      core->recorder.disk_ok(t, id, s.op_id);
    }
    if (r.linuxstat == 0 && s.op == DiskOp::write) written[s.lba / sectors_per_block] = true;
    s.used = false;
    free_slots.push_back(index);
  }

  std::shared_ptr<Core> core;
  std::string name;
  DeviceId id;
  std::uint64_t tag;
  bus::Device* dev;
  Core::DiskCounters* counters;  // in core: stable
  Phase phase = Phase::probe;
  Clock::time_point next_probe{};
  std::uint32_t sector_size = 512;
  std::uint32_t sectors_per_block = 8;
  std::uint64_t blocks = 0;  // of block_size
  // Blocks with an acknowledged write, and the final read over them.
  enum class Readback { none, waiting, reading, done };
  std::vector<bool> written;
  Readback readback = Readback::none;
  std::uint64_t next_readback = 0;
  std::vector<Slot> slots;
  std::vector<std::uint32_t> free_slots;
  bool quiesced = false;
  Rng rng{};
  std::uint64_t resets_seen = 0;
  std::vector<Nanos> reset_epochs;
  std::vector<BlockSeen> seen;  // scratch
};

struct Peer {
  std::string name;
  DeviceId id;
  std::uint64_t tag;
  drivers::Mac mac;
};

// One vnic device in use.
struct Nic {
  std::string name;
  DeviceId id;
  std::uint64_t tag;
  bus::Device* dev;
  drivers::Mac mac{};
  std::size_t size = 0;  // of every frame sent
  bool with_name = true;
  std::vector<const Peer*> peers;  // every peer but itself
  std::vector<std::uint64_t*> next_seq;  // per peer, in Core-lifetime storage
  std::size_t rr = 0;
  double tokens = 0;
  Clock::time_point refilled{};
  bool throttled = false;
  bool quiesced = false;
  std::vector<std::byte> frame;
};

}  // namespace

struct Workload::Impl {
  explicit Impl(std::string guest) : core(std::make_shared<Core>(std::move(guest))) {}

  void start(guest::Guest& g, const actors::WorkloadStart& start);
  void discover(guest::Guest& g);
  void build_nic_peers(Nic& n);
  void send(guest::Guest& g, Nic& n, Clock::time_point now, Nanos t);
  DeviceId receiver_id(const std::string& device);
  bool quiesce(guest::Guest& g, const std::string& device);
  bool idle() const;
  WorkloadStats stats() const;
  History history() const;
  void record_frame_received(Clock::time_point at, DeviceId device, DeviceId peer, std::uint64_t seq);
  void record_input(Clock::time_point at, DeviceId device, std::uint64_t seq_no);

  std::shared_ptr<Core> core;
  std::map<std::string, std::shared_ptr<Disk>> disks;  // by device name
  std::map<std::string, Nic> nics;
  std::vector<const bus::Device*> seen_devices;  // the bus as last discovered
  std::vector<std::string> quiesced;             // devices asked to quiesce, until they leave
  std::vector<std::unique_ptr<Peer>> peers;      // from start
  std::map<std::pair<DeviceId, DeviceId>, std::uint64_t> next_seq;  // (src, dst) → next seq to send
  std::unordered_map<std::uint64_t, DeviceId> by_tag;               // frame sources, by device tag
  std::unordered_map<std::uint64_t, std::uint64_t> last_seq;        // (dst << 32 | src) → highest received
  std::string last_receiver;  // on_frame/on_input name cache
  DeviceId last_receiver_id = 0;
  std::filesystem::path abandoned_dir;  // where abandon() keeps the history
};

void Workload::Impl::start(guest::Guest& g, const actors::WorkloadStart& start) {
  const actors::WorkloadSpec& s = start.spec;
  if (s.block_size < kMinBlockSize || s.block_size % kMinBlockSize != 0 || s.block_size > channel::io::kVhbaBufferSize)
    throw std::invalid_argument("block_size " + std::to_string(s.block_size) + " must be a multiple of 512 up to " +
                                std::to_string(channel::io::kVhbaBufferSize));
  if (!(s.read_ratio >= 0 && s.read_ratio <= 1)) throw std::invalid_argument("read_ratio must lie in [0, 1]");
  if (!(s.net_rate >= 0) || !std::isfinite(s.net_rate)) throw std::invalid_argument("net_rate must be ≥ 0");
  if (core->running) throw std::logic_error("already started");
  const std::int64_t start_ns = start.start_ns;
  const DrillClock clock = DrillClock::from_start_ns(start_ns);
  if (core->clock_set && clock.start != core->clock.start)
    throw std::logic_error(
        "this workload already ran a drill (its disks and history carry on from it): tear the topology down "
        "(`visorlab down`) and apply it again for another drill");
  if (!core->clock_set) {
    // The first start brings the spec: what was found on the bus before it
    // is set up again by it (nothing was issued yet).
    core->spec = s;
    core->record = s.record;
    if (!core->record) {
      core->held.clear();
      core->held_violations.clear();
    }
    disks.clear();
    nics.clear();
    seen_devices.clear();
  }
  core->clock = clock;
  core->clock_set = true;

  // Peers: any order, duplicates ignored.
  peers.clear();
  for (const std::string& name : start.peers) {
    if (name.empty()) continue;
    if (std::any_of(peers.begin(), peers.end(), [&](const auto& p) { return p->name == name; })) continue;
    auto p = std::make_unique<Peer>(Peer{name, core->recorder.device(name), device_tag(name), channel::io::mac_for(name)});
    by_tag.emplace(p->tag, p->id);
    peers.push_back(std::move(p));
  }
  discover(g);
  for (auto& [name, n] : nics) build_nic_peers(n);

  // What arrived before there was a clock.
  for (const auto& h : core->held) {
    const Nanos at = std::max<Nanos>(0, core->clock.at(h.at));
    if (h.kind == EventKind::frame_received) core->recorder.frame_received(at, h.device, h.peer, h.seq);
    else core->recorder.input_delivered(at, h.device, h.seq);
  }
  core->held.clear();
  core->held.shrink_to_fit();
  for (auto& h : core->held_violations) {
    h.v.at = std::max<Nanos>(0, core->clock.at(h.at));
    core->recorder.violation(std::move(h.v));
  }
  core->held_violations.clear();
  core->running = true;
}

void Workload::Impl::build_nic_peers(Nic& n) {
  n.peers.clear();
  n.next_seq.clear();
  for (const auto& p : peers) {
    if (p->name == n.name) continue;  // never to itself: the switch would drop it
    n.peers.push_back(p.get());
    n.next_seq.push_back(&next_seq.try_emplace({n.id, p->id}, 1).first->second);
  }
  n.rr = 0;
}

// Which vhba and vnic devices the guest has: joins new ones, drops gone ones.
void Workload::Impl::discover(guest::Guest& g) {
  std::map<std::string, bus::Device*> vhba, vnic;
  for (const actors::DeviceInfo& info : g.devices()) {
    if (info.device.empty()) continue;
    bus::Device* d = g.bus().find(info.bus_no, info.dev_no);
    if (!d) continue;
    if (info.driver == "visorhba") vhba[info.device] = d;
    else if (info.driver == "visornic") vnic[info.device] = d;
  }
  const auto is_quiesced = [&](const std::string& name) {
    return std::find(quiesced.begin(), quiesced.end(), name) != quiesced.end();
  };
  // Gone (or replaced by another device of the same name): its commands were
  // completed (DID_NO_CONNECT) when the bus removed it.
  for (auto it = disks.begin(); it != disks.end();) {
    const auto now = vhba.find(it->first);
    it = now == vhba.end() || now->second != it->second->dev ? disks.erase(it) : std::next(it);
  }
  for (auto it = nics.begin(); it != nics.end();) {
    const auto now = vnic.find(it->first);
    it = now == vnic.end() || now->second != it->second.dev ? nics.erase(it) : std::next(it);
  }
  std::erase_if(quiesced, [&](const std::string& name) { return !vhba.contains(name) && !vnic.contains(name); });

  for (const auto& [name, d] : vhba) {
    if (disks.contains(name)) continue;
    auto disk = std::make_shared<Disk>(core, name, d);
    disk->quiesced = is_quiesced(name);
    disks.emplace(name, std::move(disk));
  }
  for (const auto& [name, d] : vnic) {
    if (nics.contains(name)) continue;
    Nic n;
    n.name = name;
    n.id = core->recorder.device(name);
    n.tag = device_tag(name);
    n.dev = d;
    n.mac = VisorNic::mac(*d);
    n.quiesced = is_quiesced(name);
    const std::size_t max_frame = std::max<std::size_t>(VisorNic::limits(*d).max_frame, drivers::kEthMinFrame);
    n.with_name = kFrameHeader + name.size() <= max_frame && name.size() <= 0xffff;
    n.size = std::clamp<std::size_t>(core->spec.frame_size, kFrameHeader + (n.with_name ? name.size() : 0), max_frame);
    n.size = std::max(n.size, drivers::kEthMinFrame);
    n.frame.assign(n.size, std::byte{0});
    std::memcpy(n.frame.data() + 6, n.mac.data(), 6);
    n.frame[12] = static_cast<std::byte>(kFrameEtherType >> 8);
    n.frame[13] = static_cast<std::byte>(kFrameEtherType & 0xff);
    const std::uint32_t magic = kFrameMagic;
    std::memcpy(n.frame.data() + 14, &magic, 4);
    const std::uint16_t len = n.with_name ? static_cast<std::uint16_t>(name.size()) : 0;
    std::memcpy(n.frame.data() + 18, &len, 2);
    std::memcpy(n.frame.data() + 30, &n.tag, 8);
    if (n.with_name) std::memcpy(n.frame.data() + kFrameHeader, name.data(), name.size());
    by_tag.emplace(n.tag, n.id);
    build_nic_peers(n);
    nics.emplace(name, std::move(n));
  }
  seen_devices = g.bus().devices();
}

void Workload::Impl::send(guest::Guest& g, Nic& n, Clock::time_point now, Nanos t) {
  const double rate = core->spec.net_rate;
  if (rate <= 0 || n.peers.empty()) return;
  // A bucket of 20 ms worth (at least 2): the guest may poll only every few
  // hundred µs when idle, and must still keep the rate.
  const double burst = std::max(2.0, rate * 0.02);
  if (n.refilled == Clock::time_point{}) n.refilled = now;
  n.tokens = std::min(burst, n.tokens + rate * std::chrono::duration<double>(now - n.refilled).count());
  n.refilled = now;
  n.throttled = false;
  WorkloadStats& st = core->stats;
  const std::size_t names_end = kFrameHeader + (n.with_name ? n.name.size() : 0);
  while (n.tokens >= 1) {
    const std::size_t k = n.rr % n.peers.size();
    const Peer& p = *n.peers[k];
    const std::uint64_t seq = *n.next_seq[k];
    std::byte* f = n.frame.data();
    std::memcpy(f, p.mac.data(), 6);
    std::memcpy(f + 22, &seq, 8);
    std::memcpy(f + 38, &p.tag, 8);
    for (std::size_t i = names_end; i < n.size; ++i) f[i] = filler(seq, n.tag, i);
    const int rc = g.nic().transmit(*n.dev, n.frame);
    if (rc == -EBUSY) {
      ++st.frames_busy;  // the same frame again once XMIT_DONEs come back
      n.throttled = true;
      return;
    }
    n.tokens -= 1;
    if (rc != 0) {
      ++(rc == -EAGAIN ? st.frames_down : st.frames_refused);
      continue;  // not sent: the next one carries the same seq
    }
    ++*n.next_seq[k];
    ++n.rr;
    ++st.frames_sent;
    if (core->record) core->recorder.frame_sent(t, n.id, p.id, seq);
  }
}

DeviceId Workload::Impl::receiver_id(const std::string& device) {
  if (device != last_receiver) {
    last_receiver = device;
    last_receiver_id = core->recorder.device(device);
  }
  return last_receiver_id;
}

void Workload::Impl::record_frame_received(Clock::time_point at, DeviceId device, DeviceId peer, std::uint64_t seq) {
  if (!core->record) return;
  if (core->clock_set) core->recorder.frame_received(core->clock.at(at), device, peer, seq);
  else if (core->held.size() < kHeldMax) core->held.push_back({at, EventKind::frame_received, device, peer, seq});
}

void Workload::Impl::record_input(Clock::time_point at, DeviceId device, std::uint64_t seq_no) {
  if (!core->record) return;
  if (core->clock_set) core->recorder.input_delivered(core->clock.at(at), device, seq_no);
  else if (core->held.size() < kHeldMax) core->held.push_back({at, EventKind::input_delivered, device, 0, seq_no});
}

bool Workload::Impl::quiesce(guest::Guest& g, const std::string& device) {
  discover(g);  // the device as the bus has it now
  const bool known = disks.contains(device) || nics.contains(device);
  if (!known) return true;  // not in use: nothing in flight on it
  if (std::find(quiesced.begin(), quiesced.end(), device) == quiesced.end()) quiesced.push_back(device);
  if (const auto it = disks.find(device); it != disks.end()) {
    it->second->quiesced = true;
    it->second->readback = Disk::Readback::none;  // it is going away: nothing to read back
    return it->second->in_flight() == 0;
  }
  Nic& n = nics.at(device);
  n.quiesced = true;
  return VisorNic::outstanding(*n.dev) == 0;
}

bool Workload::Impl::idle() const {
  // Disk ops only: a frame is fire-and-forget, and a transmit whose IO
  // partition died is never answered — waiting on it would never end.
  for (const auto& [name, d] : disks)
    if (d->busy()) return false;
  return true;
}

History Workload::Impl::history() const {
  History h = core->recorder.history();
  h.name = core->guest;
  h.seed = core->spec.seed;
  return h;
}

WorkloadStats Workload::Impl::stats() const {
  WorkloadStats s = core->stats;
  s.in_flight = 0;
  for (const auto& [name, d] : disks) s.in_flight += d->in_flight();
  s.disks = disks.size();
  s.nics = nics.size();
  s.events = core->recorder.events();
  return s;
}

Workload::Workload(std::string guest, std::filesystem::path abandoned_dir)
    : impl_(std::make_unique<Impl>(std::move(guest))) {
  impl_->abandoned_dir = std::move(abandoned_dir);
}

Workload::~Workload() = default;

bool Workload::step(guest::Guest& g, Clock::time_point now) {
  Impl& m = *impl_;
  Core& core = *m.core;
  // The bus's device list is cheap; the names behind it are not: look them
  // up only when the list changed.
  if (g.bus().devices() != m.seen_devices) m.discover(g);
  if (m.disks.empty() && m.nics.empty()) return false;

  const Nanos t = core.clock_set ? core.now() : 0;
  const std::uint64_t invoked = core.stats.invoked, sent = core.stats.frames_sent;
  for (auto& [name, d] : m.disks) {
    d->observe_resets(t);
    if (core.running && !d->quiesced) {
      if (d->phase == Disk::Phase::probe && now >= d->next_probe) d->probe(g, now, d);
      if (d->phase == Disk::Phase::ready) d->issue(g, t, d);
    } else if (d->reading_back() && !d->quiesced) {
      d->read_back(g, t, d);
    }
  }
  for (auto& [name, n] : m.nics)
    if (core.running && !n.quiesced) m.send(g, n, now, t);
  return core.stats.invoked != invoked || core.stats.frames_sent != sent;
}

void Workload::start(guest::Guest& g, const actors::WorkloadStart& start) { impl_->start(g, start); }

void Workload::stop(guest::Guest&) {
  Core& core = *impl_->core;
  if (!core.running) return;
  core.running = false;
  if (!core.record || !core.spec.verify) return;  // nothing would judge what it reads
  for (auto& [name, d] : impl_->disks) {
    if (d->phase != Disk::Phase::ready || d->quiesced) continue;
    d->readback = Disk::Readback::waiting;
    d->next_readback = 0;
  }
}

bool Workload::quiesce(guest::Guest& g, const std::string& device) { return impl_->quiesce(g, device); }

bool Workload::idle(guest::Guest& g) {
  impl_->discover(g);
  return impl_->idle();
}

actors::HistoryChunk Workload::collect(std::uint64_t first) {
  Recorder& r = impl_->core->recorder;
  // Asking from `first` says everything below it is stored: forgotten here,
  // so a history drained as the drill runs stays small. A chunk lost on its
  // way is asked for again from the same `first`.
  r.forget_before(first);
  History piece = r.slice(first, kHistoryChunkEvents);
  piece.name = impl_->core->guest;
  piece.seed = impl_->core->spec.seed;
  actors::HistoryChunk c = history_chunk(piece, 0, kHistoryChunkEvents);
  c.first = std::max(first, r.first_kept());  // past `first`: what lay between is gone, the drill says so
  c.more = c.first + c.records.size() < r.events();
  return c;
}

void Workload::on_frame(const std::string& device, std::span<const std::byte> f) {
  Impl& m = *impl_;
  Core& core = *m.core;
  const auto at = Clock::now();
  const bool ours = f.size() >= kFrameHeader && f[12] == static_cast<std::byte>(kFrameEtherType >> 8) &&
                    f[13] == static_cast<std::byte>(kFrameEtherType & 0xff) &&
                    std::memcmp(f.data() + 14, &kFrameMagic, 4) == 0;
  if (!ours || device.empty()) {
    ++core.stats.frames_foreign;
    return;
  }
  std::uint16_t name_len;
  std::memcpy(&name_len, f.data() + 18, 2);
  const std::uint64_t seq = load64(f.data() + 22);
  const std::uint64_t src_tag = load64(f.data() + 30);
  const std::uint64_t dst_tag = load64(f.data() + 38);
  const DeviceId rcv = m.receiver_id(device);

  std::string bad;
  std::optional<DeviceId> src;
  if (const auto it = m.by_tag.find(src_tag); it != m.by_tag.end()) src = it->second;
  if (kFrameHeader + name_len > f.size()) {
    bad = "name length " + std::to_string(name_len) + " past the frame's end";
  } else if (!src) {
    const std::string_view name(reinterpret_cast<const char*>(f.data() + kFrameHeader), name_len);
    if (name_len == 0 || device_tag(name) != src_tag) {
      bad = "from an unknown device (tag " + std::to_string(src_tag) + ")";
    } else {
      src = core.recorder.device(name);
      m.by_tag.emplace(src_tag, *src);
    }
  }
  if (bad.empty() && dst_tag != device_tag(device)) bad = "addressed to another device (tag " + std::to_string(dst_tag) + ")";
  if (bad.empty()) {
    const std::size_t end = kFrameHeader + name_len;
    for (std::size_t i = end; i < f.size(); ++i) {
      if (f[i] != filler(seq, src_tag, i)) {
        bad = "corrupt at byte " + std::to_string(i) + " of " + std::to_string(f.size());
        break;
      }
    }
  }
  if (!bad.empty()) {
    ++core.stats.frames_bad;
    core.violation(at, "frame_bad", device, "frame seq " + std::to_string(seq) + " " + bad);
    return;
  }
  ++core.stats.frames_received;
  std::uint64_t& last = m.last_seq[std::uint64_t{rcv} << 32 | *src];
  if (seq <= last) ++core.stats.frames_reordered;
  else core.stats.frames_skipped += seq - last - 1;
  last = std::max(last, seq);
  m.record_frame_received(at, rcv, *src, seq);
}

void Workload::on_input(const std::string& device, const channel::input::Report& report) {
  if (device.empty()) return;
  Impl& m = *impl_;
  ++m.core->stats.inputs;
  m.record_input(Clock::now(), m.receiver_id(device), report.seq_no);
}

WorkloadStats Workload::stats() const { return impl_->stats(); }

History Workload::history() const { return impl_->history(); }

bool Workload::abandon(guest::Guest& g) {
  const bool was_running = running();
  stop(g);
  if (!was_running || impl_->abandoned_dir.empty()) return was_running;
  // What it recorded so far; ops still in flight stay open (indeterminate).
  const auto file = impl_->abandoned_dir / (impl_->core->guest + ".history.jsonl");
  try {
    std::filesystem::create_directories(impl_->abandoned_dir);
    save_history(history(), file);
    spdlog::warn("workload of {}: its history is kept in {}", impl_->core->guest, file.string());
  } catch (const std::exception& e) {
    spdlog::error("workload of {}: cannot keep its history in {}: {}", impl_->core->guest, file.string(), e.what());
  }
  return true;
}

bool Workload::running() const { return impl_->core->running; }

bool Workload::keeps_time() const { return impl_->core->clock_set; }

}  // namespace visorlab::drill
