// The drill workload inside a real guest: the guest (chipset, bus, visorhba,
// visornic) is driven through the real command partition over a controlvm
// channel; the IO partition's real backends serve it in the same process —
// vhba over a SCSI target on a temp file, two vnics on a software switch.
// The test pumps guest and backends by hand (bounded in rounds and time),
// collects the history the workload serialises, reads it back and lets the
// checker judge it: a clean run and a paused disk pass, a block corrupted on
// the backing file is a verify error, and a quiesced disk can be destroyed
// while a new one joins.
#define BOOST_TEST_MODULE drill_workload
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "actors/command/command_partition.hpp"
#include "actors/guest/guest.hpp"
#include "actors/runtime/device_channels.hpp"
#include "actors/service/input_backend.hpp"
#include "actors/service/scsi_target.hpp"
#include "actors/service/software_switch.hpp"
#include "actors/service/vhba_backend.hpp"
#include "actors/service/vnic_backend.hpp"
#include "channel/channel_types.hpp"
#include "drill/checker.hpp"
#include "drill/history_file.hpp"
#include "drill/history_wire.hpp"
#include "drill/recorder.hpp"
#include "drill/workload/workload.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
namespace svc = visorlab::service;
namespace drill = visorlab::drill;
using visorlab::actors::ChannelOffer;
using visorlab::actors::DeviceAttach;
using visorlab::actors::Locator;
using visorlab::actors::WorkloadSpec;
using visorlab::command::CommandPartition;
using visorlab::drivers::VisorHba;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto kPatience = 10s;  // no loop below runs longer

std::string failures(const drill::CheckResult& r) {
  std::string out;
  for (const auto& f : r.failures) out += f.message() + "\n";
  return out;
}

// One guest with its workload, and the IO partition serving its devices.
struct World {
  struct Vhba {
    std::string name;
    std::uint32_t dev = 0;
    std::filesystem::path file;
    std::unique_ptr<ch::ChannelEnd> end;
    std::unique_ptr<svc::ScsiTarget> target;
    std::unique_ptr<svc::VhbaBackend> backend;
  };
  struct Vnic {
    std::string name;
    std::uint32_t dev = 0;
    std::unique_ptr<ch::ChannelEnd> end;
    std::unique_ptr<svc::VnicBackend> backend;
  };

  explicit World(WorkloadSpec s, bool record = true)
      : name("wl" + std::to_string(getpid()) + "x" + std::to_string(++count)),
        dir(std::filesystem::temp_directory_path() / ("visorlab-" + name)),
        command_end((std::filesystem::create_directories(dir), visorlab::actors::create_controlvm(name, cvm_at))),
        commands(command_end->channel()),
        sw("sw0"),
        guest(visorlab::guest::GuestOptions{name}, visorlab::actors::attach_controlvm(cvm_at)),
        spec(s),
        workload(std::make_shared<drill::Workload>(name)) {
    spec.record = record;
    guest.run(workload);
    BOOST_REQUIRE(!command(cvm::Id::chipset_init, CommandPartition::init_chipset(cvm::chipset_feature::para_hotplug))
                       .failed);
    BOOST_REQUIRE(command(cvm::Id::bus_create, CommandPartition::bus(2)).status == 0u);
  }
  ~World() {
    vnics.clear();
    vhbas.clear();
    keyboard.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  // A controlvm command, answered while everything keeps running. The guest
  // takes it on its next poll, before it reads what the IO partition answered.
  visorlab::command::Answer command(cvm::Id id, const cvm::Packet& p) {
    const auto handle = commands.send(id, p);
    BOOST_REQUIRE(handle);
    guest.poll();
    const auto deadline = Clock::now() + kPatience;
    while (Clock::now() < deadline) {
      round();
      for (const auto& a : commands.poll())
        if (a.handle == *handle) return a;
    }
    BOOST_FAIL("no answer to controlvm command " << static_cast<std::uint32_t>(id));
    return {};
  }

  Locator offer(const std::string& device, const std::string& kind, std::uint32_t dev, std::uint32_t bus = 2) {
    const auto& type = *ch::find_type(kind);
    ChannelOffer o;
    o.addr = next_addr++;
    o.device = device;
    o.kind = type.kind;
    o.bus_no = bus;
    o.dev_no = dev;
    o.service_host = "local";  // shared memory, as the guest's host
    const Locator at = guest.offer(o);
    BOOST_REQUIRE(command(cvm::Id::device_create,
                          CommandPartition::device(bus, dev, type.guid, o.addr, ch::channel_size(type.spec())))
                      .status == 0u);
    return at;
  }

  static DeviceAttach attach(const std::string& device, const std::string& kind, const Locator& at) {
    DeviceAttach a;
    a.device = device;
    a.kind = ch::find_type(kind)->kind;
    a.channel = at;
    return a;
  }

  Vhba& add_vhba(std::uint32_t dev, std::uint64_t bytes) {
    auto v = std::make_unique<Vhba>();
    v->name = name + "/vhba" + std::to_string(dev);
    v->dev = dev;
    v->file = dir / ("vhba" + std::to_string(dev) + ".img");
    const Locator at = offer(v->name, "vhba", dev);
    v->end = visorlab::actors::open_device_service_end(attach(v->name, "vhba", at));
    v->target = std::make_unique<svc::ScsiTarget>(v->file.string(), bytes);
    v->backend = std::make_unique<svc::VhbaBackend>(v->end->channel(), *v->target);
    vhbas.push_back(std::move(v));
    return *vhbas.back();
  }

  // vnic<n> sits at vbus2:dev<8+n>, clear of the disks.
  Vnic& add_vnic(std::uint32_t n) {
    auto v = std::make_unique<Vnic>();
    const std::uint32_t dev = 8 + n;
    v->name = name + "/vnic" + std::to_string(n);
    v->dev = dev;
    const Locator at = offer(v->name, "vnic", dev);
    v->end = visorlab::actors::open_device_service_end(attach(v->name, "vnic", at));
    v->backend = std::make_unique<svc::VnicBackend>(v->end->channel());
    sw.attach(*v->backend);
    vnics.push_back(std::move(v));
    return *vnics.back();
  }

  // A keyboard on the console partition's bus 1.
  svc::InputBackend& add_keyboard() {
    BOOST_REQUIRE(command(cvm::Id::bus_create, CommandPartition::bus(1)).status == 0u);
    keyboard_name = name + "/keyboard0";
    const Locator at = offer(keyboard_name, "keyboard", 0, 1);
    keyboard_end = visorlab::actors::open_device_service_end(attach(keyboard_name, "keyboard", at));
    keyboard = std::make_unique<svc::InputBackend>(keyboard_end->channel(), ch::ChannelKind::keyboard);
    return *keyboard;
  }

  // The IO partition lets a device go (its backend detaches), then the
  // command partition destroys it.
  void destroy_vhba(std::uint32_t dev) {
    std::erase_if(vhbas, [&](const auto& v) { return v->dev == dev; });
    BOOST_REQUIRE(command(cvm::Id::device_destroy, CommandPartition::device(2, dev)).status == 0u);
  }

  std::uint32_t change_state(std::uint32_t dev, std::uint16_t state) {
    return command(cvm::Id::device_changestate, CommandPartition::change_state(2, dev, state)).status;
  }

  // The guest polls (its workload steps), then every backend serves.
  void round() {
    guest.poll();
    for (auto& v : vhbas) v->backend->poll();
    for (auto& v : vnics) v->backend->poll();
    if (keyboard) keyboard->poll();
  }
  void run_for(Clock::duration d) {
    const auto end = Clock::now() + std::min<Clock::duration>(d, kPatience);
    while (Clock::now() < end) round();
  }
  template <class Pred>
  bool pump_until(Pred done, Clock::duration patience = kPatience) {
    const auto deadline = Clock::now() + std::min<Clock::duration>(patience, kPatience);
    for (int i = 0; i < 10'000'000 && Clock::now() < deadline; ++i) {
      if (done()) return true;
      round();
    }
    return done();
  }

  std::vector<std::string> peers() const {
    std::vector<std::string> out;
    for (const auto& v : vnics) out.push_back(v->name);
    return out;
  }
  // The workload's messages, as the guest actor hands them over.
  void start_workload(const WorkloadSpec& with) { workload->start(guest, {with, clock.start_ns(), peers()}); }
  bool idle() { return workload->idle(guest); }
  bool quiesce(const std::string& device) { return workload->quiesce(guest, device); }
  // Every vnic up, receive enabled, every buffer posted: frames sent from now
  // on have somewhere to land.
  void settle() {
    BOOST_REQUIRE(pump_until([&] {
      for (const auto& v : vnics) {
        visorlab::bus::Device* d = guest.find(v->name);
        if (!d || !visorlab::drivers::VisorNic::counts(*d).link_up || !v->backend->rx_enabled() ||
            v->backend->posted() != ch::io::kVnicRcvBufs)
          return false;
      }
      return true;
    }));
  }
  void start() {
    settle();
    start_workload(spec);
  }

  // Stops issuing, waits for what is in flight, reads back what it recorded.
  drill::History stop_and_collect() {
    workload->stop(guest);
    BOOST_REQUIRE_MESSAGE(pump_until([&] { return idle(); }), "the workload never went idle");
    run_for(20ms);  // the last frames reach their receiver
    const auto t0 = Clock::now();
    drill::History h;
    for (std::uint64_t first = 0;; first = h.events.size()) {
      const auto chunk = workload->collect(first);
      ++collected_chunks;
      drill::add_chunk(h, chunk);
      if (!chunk.more) break;
    }
    collect_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (const char* dump = std::getenv("WL_DUMP")) drill::save_history(h, dump);
    h.end = clock.now();
    return h;
  }

  static inline int count = 0;
  std::string name;
  std::filesystem::path dir;
  Locator cvm_at;
  std::unique_ptr<ch::ChannelEnd> command_end;
  CommandPartition commands;
  svc::SoftwareSwitch sw;  // outlives its ports
  visorlab::guest::Guest guest;
  WorkloadSpec spec;
  std::shared_ptr<drill::Workload> workload;
  std::vector<std::unique_ptr<Vhba>> vhbas;
  std::vector<std::unique_ptr<Vnic>> vnics;
  std::string keyboard_name;
  std::unique_ptr<ch::ChannelEnd> keyboard_end;
  std::unique_ptr<svc::InputBackend> keyboard;
  std::uint64_t next_addr = 0x100;
  drill::DrillClock clock;
  std::size_t collected_chunks = 0;
  double collect_ms = 0;
};

WorkloadSpec spec(double read_ratio = 0.5, double net_rate = 2000) {
  WorkloadSpec s;
  s.seed = 7;
  s.block_size = 4096;
  s.queue_depth = 8;
  s.read_ratio = read_ratio;
  s.verify = true;
  s.frame_size = 1500;
  s.net_rate = net_rate;
  return s;
}

struct Counted {
  std::uint64_t invokes = 0, oks = 0, fails = 0, retried = 0, sent = 0, received = 0;
  std::uint64_t seen_written = 0;  // sectors reads saw written by the workload (gen ≥ 1)
};
Counted count_events(const drill::History& h, const std::string& device = "") {
  Counted c;
  for (const auto& e : h.events) {
    if (!device.empty() && h.device_name(e.device) != device) continue;
    switch (e.kind) {
      case drill::EventKind::disk_invoke: ++c.invokes; break;
      case drill::EventKind::disk_ok:
        ++c.oks;
        for (const auto& b : h.seen(e)) c.seen_written += b.gen != 0;
        break;
      case drill::EventKind::disk_fail: ++c.fails; break;
      case drill::EventKind::disk_retried: ++c.retried; break;
      case drill::EventKind::frame_sent: ++c.sent; break;
      case drill::EventKind::frame_received: ++c.received; break;
      default: break;
    }
  }
  return c;
}

// Every (source, destination) pair's frames arrived in the order sent.
bool frames_in_order(const drill::History& h) {
  std::map<std::pair<drill::DeviceId, drill::DeviceId>, std::uint64_t> last;
  for (const auto& e : h.events) {
    if (e.kind != drill::EventKind::frame_received) continue;
    auto& l = last[{e.frame.peer, e.device}];
    if (e.frame.seq <= l) return false;
    l = e.frame.seq;
  }
  return !last.empty();
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_workload_messages_answer_as_documented) {
  World w(spec());
  w.add_vhba(0, 1 << 20);
  BOOST_TEST(w.idle());
  BOOST_TEST(w.workload->stats().completed == 0u);
  BOOST_TEST(w.workload->stats().invoked == 0u);
  BOOST_TEST(w.quiesce("nothing/here"));  // not in use: nothing in flight on it
  w.start();
  BOOST_CHECK_THROW(w.start_workload(w.spec), std::logic_error);  // already started
  BOOST_TEST(w.pump_until([&] { return w.workload->stats().completed > 0u; }));
  const auto h = w.stop_and_collect();
  BOOST_TEST(h.name == w.name);
  BOOST_TEST(h.seed == 7u);  // the spec came with start

  WorkloadSpec bad = spec();
  bad.block_size = 1000;
  World b(spec());
  BOOST_CHECK_THROW(b.start_workload(bad), std::invalid_argument);
  bad = spec();
  bad.read_ratio = 1.5;
  BOOST_CHECK_THROW(b.start_workload(bad), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(collect_hands_out_what_was_recorded) {
  World w(spec());
  w.add_vhba(0, 1 << 20);
  w.add_vnic(0);
  w.add_vnic(1);
  w.start();
  w.run_for(300ms);
  const auto h = w.stop_and_collect();
  BOOST_TEST(h.events.size() > 100u);
  drill::History recorded = w.workload->history();
  recorded.end = h.end;
  BOOST_TEST((h == recorded));
  BOOST_TEST(w.collected_chunks == 1u);  // well under kHistoryChunkEvents
}

// The drain protocol: asking from N says records below N are stored, so the
// workload forgets them; until then it hands the same records out again (an
// answer lost on its way costs nothing), and asking below what it forgot says so.
BOOST_AUTO_TEST_CASE(collect_from_n_forgets_below_n_and_repeats_itself_until_then) {
  World w(spec());
  w.add_vhba(0, 1 << 20);
  w.start();
  w.run_for(200ms);
  const auto a = w.workload->collect(0);
  const std::uint64_t n = a.records.size();
  BOOST_TEST_REQUIRE(n > 50u);
  BOOST_TEST(a.first == 0u);
  const auto again = w.workload->collect(0);
  BOOST_TEST_REQUIRE(again.records.size() == n);
  for (std::size_t i = 0; i < n; ++i)
    BOOST_TEST_REQUIRE((again.records[i].at == a.records[i].at && again.records[i].id == a.records[i].id));

  w.run_for(100ms);
  const auto b = w.workload->collect(n);
  BOOST_TEST(b.first == n);
  BOOST_TEST(!b.records.empty());
  BOOST_TEST(w.workload->history().events.size() == b.records.size());  // the first n are gone
  BOOST_TEST(w.workload->stats().events == n + b.records.size());
  BOOST_TEST(w.workload->collect(0).first == n);  // asked below what is kept: the gap shows
  w.stop_and_collect();
}

BOOST_AUTO_TEST_CASE(a_clean_run_passes_the_checker) {
  World w(spec());
  w.add_vhba(0, 1 << 20);  // 256 blocks: reads often see earlier writes
  w.add_vnic(0);
  w.add_vnic(1);
  auto& keyboard = w.add_keyboard();
  keyboard.produce(10);  // delivered before start: held, recorded at start
  BOOST_REQUIRE(w.pump_until([&] { return w.workload->stats().inputs == 10u; }));
  w.start();
  for (int i = 0; i < 20; ++i) {
    keyboard.produce(20);
    w.run_for(50ms);
  }
  BOOST_REQUIRE(w.pump_until([&] { return w.workload->stats().inputs == 410u; }));
  const auto s = w.workload->stats();
  const auto h = w.stop_and_collect();

  const auto r = drill::check(h, visorlab::topology::Expect{});
  BOOST_TEST(r.pass, failures(r));
  const Counted c = count_events(h);
  BOOST_TEST(r.disk.issued > 100u);
  BOOST_TEST(r.disk.completed == r.disk.issued);
  BOOST_TEST(r.disk.failed == 0u);
  BOOST_TEST(r.disk.lost == 0u);
  BOOST_TEST(r.disk.duplicated == 0u);
  BOOST_TEST(r.disk.verify_errors == 0u);
  BOOST_TEST(c.seen_written > 0u);  // reads really checked what writes wrote
  BOOST_TEST(r.net.sent > 100u);
  BOOST_TEST(r.net.received == r.net.sent);
  BOOST_TEST(r.net.dropped == 0u);
  BOOST_TEST(r.net.duplicated == 0u);
  BOOST_TEST(frames_in_order(h));
  BOOST_TEST(s.frames_bad == 0u);
  BOOST_TEST(s.frames_reordered == 0u);
  BOOST_TEST(s.bad_sectors == 0u);
  BOOST_TEST(r.input.delivered == 410u);
  BOOST_TEST(r.input.sent == 410u);
  BOOST_TEST(r.input.lost == 0u);
  BOOST_TEST(r.input.out_of_order == 0u);
  BOOST_TEST_MESSAGE("1 s: " << r.disk.issued << " disk ops (" << r.disk.iops << " IOPS), " << r.net.sent
                             << " frames, " << h.events.size() << " events, " << h.blocks.size()
                             << " sectors seen; history collected in " << w.collected_chunks << " chunks, "
                             << w.collect_ms << " ms; busy " << s.frames_busy << ", down " << s.frames_down);
}

BOOST_AUTO_TEST_CASE(a_paused_disk_loses_nothing_and_shows_retried_ops) {
  World w(spec());
  auto& disk = w.add_vhba(0, 1 << 20);
  w.add_vnic(0);
  w.add_vnic(1);
  w.start();
  w.run_for(300ms);
  // Pause with commands in flight: the guest has issued them (the IO partition
  // may have answered, the guest has not read it), then the pause comes first
  // and fails them with DID_RESET.
  const auto resets_before = VisorHba::counts(*w.guest.find(disk.name)).resets;
  BOOST_REQUIRE(w.pump_until([&] { return VisorHba::pending(*w.guest.find(disk.name)) > 0; }));
  BOOST_TEST(w.change_state(0, cvm::segment::standby) == 0u);
  const auto paused = w.workload->stats().completed;
  w.run_for(50ms);
  BOOST_TEST(w.workload->stats().completed == paused);  // nothing completes while paused
  BOOST_TEST(w.change_state(0, cvm::segment::running) == 0u);
  w.run_for(300ms);
  BOOST_TEST(VisorHba::counts(*w.guest.find(disk.name)).resets > resets_before);
  const auto h = w.stop_and_collect();

  const auto r = drill::check(h, visorlab::topology::Expect{});
  BOOST_TEST(r.pass, failures(r));
  BOOST_TEST(r.disk.retried > 0u);
  BOOST_TEST(r.disk.lost == 0u);
  BOOST_TEST(r.disk.duplicated == 0u);
  BOOST_TEST(r.disk.failed == 0u);
  BOOST_TEST(r.disk.verify_errors == 0u);
  BOOST_TEST(r.disk.completed == r.disk.issued);
  BOOST_TEST(frames_in_order(h));
  // Each retried op: retried after its invoke, before its one ok.
  std::map<std::uint64_t, drill::Nanos> invoked, retried;
  bool ordered = true;
  for (const auto& e : h.events) {
    if (e.kind == drill::EventKind::disk_invoke) invoked[e.invoke.op_id] = e.at;
    if (e.kind == drill::EventKind::disk_retried) {
      ordered = ordered && invoked.contains(e.retried.op_id) && e.at >= invoked[e.retried.op_id];
      retried[e.retried.op_id] = e.at;
    }
    if (e.kind == drill::EventKind::disk_ok && retried.contains(e.ok.op_id))
      ordered = ordered && e.at >= retried[e.ok.op_id];
  }
  BOOST_TEST(ordered);
  BOOST_TEST_MESSAGE("retried " << r.disk.retried << " of " << r.disk.issued);
}

BOOST_AUTO_TEST_CASE(a_block_corrupted_on_the_backing_file_is_a_verify_error) {
  World w(spec(0.9, 0));  // mostly reads: the corrupted block is read before it is written again
  auto& disk = w.add_vhba(0, 64 << 10);  // 16 blocks
  std::uint64_t corrupted_lba = 0;
  bool caught = false;
  // Write, stop, corrupt the last acknowledged write on the file, run until a
  // read sees it — or a write got there first: again (bounded).
  for (int attempt = 0; attempt < 20 && !caught; ++attempt) {
    w.start();
    w.run_for(30ms);
    const auto h = w.stop_and_collect();
    std::map<std::uint64_t, std::uint64_t> lba_of;  // write op → lba
    std::optional<std::uint64_t> last;
    for (const auto& e : h.events) {
      if (e.kind == drill::EventKind::disk_invoke && e.invoke.op == drill::DiskOp::write)
        lba_of[e.invoke.op_id] = e.invoke.lba;
      if (e.kind == drill::EventKind::disk_ok && lba_of.contains(e.ok.op_id)) last = lba_of[e.ok.op_id];
    }
    if (!last) continue;
    corrupted_lba = *last;
    {
      const int fd = ::open(disk.file.c_str(), O_WRONLY);
      BOOST_REQUIRE(fd >= 0);
      std::vector<char> junk(512);
      for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 13 + attempt);
      BOOST_REQUIRE(::pwrite(fd, junk.data(), junk.size(), static_cast<off_t>(corrupted_lba * 512 + 1024)) == 512);
      ::fsync(fd);
      ::close(fd);
    }
    const auto bad_before = w.workload->stats().bad_sectors;
    w.start();
    // A few hundred ops on 16 blocks: the block is touched, first by a read 9 times in 10.
    caught = w.pump_until([&] { return w.workload->stats().bad_sectors > bad_before; }, 300ms);
    w.workload->stop(w.guest);
  }
  BOOST_REQUIRE_MESSAGE(caught, "no read saw the corrupted block");
  const auto h = w.stop_and_collect();
  const auto r = drill::check(h, visorlab::topology::Expect{});
  BOOST_TEST(!r.pass);
  BOOST_TEST(r.disk.verify_errors >= 1u);
  BOOST_TEST(r.disk.lost == 0u);
  const auto it = std::find_if(r.failures.begin(), r.failures.end(), [](const auto& f) { return f.what == "verify_errors"; });
  BOOST_REQUIRE(it != r.failures.end());
  BOOST_TEST(it->device == disk.name);
  BOOST_TEST(it->detail.find("lba " + std::to_string(corrupted_lba + 2)) != std::string::npos, it->detail);
  BOOST_TEST(it->detail.find("checksum bad") != std::string::npos, it->detail);
}

BOOST_AUTO_TEST_CASE(a_quiesced_disk_is_destroyed_and_a_new_one_joins) {
  World w(spec());
  auto& first = w.add_vhba(0, 1 << 20);
  w.add_vnic(0);
  w.add_vnic(1);
  const std::string first_name = first.name;
  w.start();
  w.run_for(200ms);

  // Quiesce: polled until nothing is in flight on it; then it issues nothing.
  BOOST_REQUIRE(w.pump_until([&] { return w.quiesce(first_name); }));
  visorlab::bus::Device* dev = w.guest.find(first_name);
  BOOST_REQUIRE(dev);
  const auto issued = VisorHba::counts(*dev).issued;
  BOOST_TEST(VisorHba::pending(*dev) == 0u);
  w.run_for(50ms);
  BOOST_TEST(VisorHba::counts(*dev).issued == issued);
  BOOST_TEST(w.quiesce(first_name));

  w.destroy_vhba(0);
  w.run_for(20ms);
  BOOST_TEST(w.guest.find(first_name) == nullptr);
  BOOST_TEST(w.workload->stats().disks == 0u);

  auto& second = w.add_vhba(1, 1 << 20);
  const std::string second_name = second.name;
  const auto before = w.workload->stats().completed;
  BOOST_TEST(w.pump_until([&] { return w.workload->stats().completed > before + 50; }));
  BOOST_TEST(w.workload->stats().disks == 1u);
  const auto h = w.stop_and_collect();

  const auto r = drill::check(h, visorlab::topology::Expect{});
  BOOST_TEST(r.pass, failures(r));
  BOOST_TEST(r.disk.lost == 0u);
  BOOST_TEST(r.disk.failed == 0u);
  const Counted a = count_events(h, first_name), b = count_events(h, second_name);
  BOOST_TEST(a.invokes > 0u);
  BOOST_TEST(a.oks + a.fails == a.invokes);
  BOOST_TEST(b.invokes > 0u);
  BOOST_TEST(b.oks + b.fails == b.invokes);
  BOOST_TEST(frames_in_order(h));
}

// What recording costs: IOPS with the history on vs off, interleaved rounds.
// A measurement, not a check (speed goals live in bench/): run it by name.
BOOST_AUTO_TEST_CASE(recording_overhead, *boost::unit_test::disabled()) {
  std::vector<double> ratios;
  for (int round = 0; round < 5; ++round) {
    double iops[2] = {0, 0};
    for (int record = 1; record >= 0; --record) {
      World w(spec(0.5, 0), record == 1);
      w.add_vhba(0, 64 << 20);
      w.start();
      w.run_for(50ms);
      const auto from = w.workload->stats().completed;
      const auto t0 = Clock::now();
      w.run_for(400ms);
      iops[record] = static_cast<double>(w.workload->stats().completed - from) /
                     std::chrono::duration<double>(Clock::now() - t0).count();
      w.workload->stop(w.guest);
      w.pump_until([&] { return w.idle(); });
    }
    ratios.push_back(iops[1] / iops[0]);
    BOOST_TEST_MESSAGE("round " << round << ": recording " << iops[1] << " IOPS, not recording " << iops[0]
                                << " IOPS, ratio " << ratios.back());
  }
  std::sort(ratios.begin(), ratios.end());
  BOOST_TEST_MESSAGE("median ratio " << ratios[ratios.size() / 2]);
}

// A driver completes commands after the application is gone (replaced, or
// the guest torn down with I/O in flight): nothing dangles.
BOOST_AUTO_TEST_CASE(completions_after_the_workload_is_gone_are_harmless) {
  {
    World w(spec());
    w.add_vhba(0, 1 << 20);
    w.start();
    BOOST_REQUIRE(w.pump_until([&] { return w.workload->stats().in_flight > 0u; }));
    w.workload.reset();
    w.workload = std::make_shared<drill::Workload>(w.name);
    w.guest.run(w.workload);  // the old one goes
    w.run_for(20ms);  // its commands complete into nothing
    BOOST_TEST(w.idle());  // the new one never started
  }
  {
    World w(spec());
    w.add_vhba(0, 1 << 20);
    w.start();
    BOOST_REQUIRE(w.pump_until([&] { return w.workload->stats().in_flight > 0u; }));
  }  // the guest goes with commands in flight: the bus removes the device, DID_NO_CONNECT
}
