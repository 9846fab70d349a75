// Recovery across real processes: the command partition and a guest (with a
// disk-writing application on its vhba) run in this process; the IO partition
// runs as `visorlab service-partition` in its own, started by its keeper. The
// IO partition is killed with SIGKILL mid-I/O and also recovered as planned;
// afterwards every write completed exactly once, none failed, and the backing
// file holds the latest acknowledged generation of every block. A console
// partition's keeper keeps the input rate a workload set across a crash.
#define BOOST_TEST_MODULE actors_recovery
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "actors/command/command_actor.hpp"
#include "actors/guest/guest_actor.hpp"
#include "actors/recovery/service_keeper.hpp"
#include "actors/runtime/config.hpp"
#include "channel/channel_types.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
namespace io = visorlab::channel::io;
using namespace visorlab::actors;
using namespace std::chrono_literals;
using visorlab::command::CommandPartition;
using visorlab::guest::Guest;

namespace {

constexpr std::uint32_t kBlock = 4096;
constexpr std::uint32_t kBlocks = 256;  // the region written: 1 MiB
constexpr std::uint64_t kDisk = 16 << 20;

// Writes 4 KiB blocks at queue depth 8, never two at once to one block; each
// block's bytes say which block and which generation.
class DiskWriter final : public visorlab::guest::Application {
 public:
  explicit DiskWriter(std::string device) : device_(std::move(device)) {}

  bool step(Guest& guest, Clock::time_point) override {
    std::lock_guard lock(mu_);
    if (!running_) return outstanding_ > 0;
    auto* dev = guest.find(device_);
    if (!dev) return false;
    for (std::uint32_t tries = 0; outstanding_ < 8 && tries < kBlocks; ++tries) {
      const std::uint32_t block = next_++ % kBlocks;
      if (pending_[block]) continue;
      const std::uint64_t gen = ++gen_;
      const std::uint64_t id = ++submitted_;
      visorlab::drivers::ScsiRequest r;
      const std::uint32_t lba = block * (kBlock / 512), count = kBlock / 512;
      r.cdb = {0x2A, 0, static_cast<std::uint8_t>(lba >> 24), static_cast<std::uint8_t>(lba >> 16),
               static_cast<std::uint8_t>(lba >> 8), static_cast<std::uint8_t>(lba), 0,
               static_cast<std::uint8_t>(count >> 8), static_cast<std::uint8_t>(count), 0};
      r.dir = io::DataDir::to_device;
      r.data = contents(block, gen);
      r.done = [this, id, block, gen](const visorlab::drivers::ScsiResult& res) {
        // Called from the driver inside step()'s poll: mu_ is not held then.
        std::lock_guard lock(mu_);
        if (++completions_[id] > 1) ++duplicates_;
        if (res.linuxstat == 0) acked_[block] = gen; else ++failed_;
        resets_ += res.resets;
        pending_[block] = false;
        --outstanding_;
        ++completed_;
      };
      if (guest.hba().submit(*dev, std::move(r)) != 0) {
        ++failed_;
        continue;
      }
      pending_[block] = true;
      ++outstanding_;
    }
    return true;
  }

  static std::vector<std::uint8_t> contents(std::uint32_t block, std::uint64_t gen) {
    std::vector<std::uint8_t> data(kBlock);
    for (std::size_t i = 0; i + 16 <= data.size(); i += 16) {
      std::memcpy(&data[i], &block, sizeof block);
      std::memcpy(&data[i + 8], &gen, sizeof gen);
    }
    return data;
  }

  void stop() {
    std::lock_guard lock(mu_);
    running_ = false;
  }
  std::uint64_t completed() {
    std::lock_guard lock(mu_);
    return completed_;
  }
  std::uint64_t outstanding() {
    std::lock_guard lock(mu_);
    return outstanding_;
  }

  std::mutex mu_;
  std::string device_;
  bool running_ = true;
  std::uint64_t next_ = 0, gen_ = 0, submitted_ = 0, completed_ = 0, outstanding_ = 0;
  std::uint64_t failed_ = 0, duplicates_ = 0, resets_ = 0;
  std::map<std::uint64_t, int> completions_;
  std::map<std::uint32_t, std::uint64_t> acked_;
  bool pending_[kBlocks] = {};
};

std::string visorlab_bin() {
  const char* dir = std::getenv("VISORLAB_BIN");
  BOOST_REQUIRE_MESSAGE(dir, "VISORLAB_BIN must name the directory holding visorlab (CTest sets it)");
  return std::string(dir) + "/visorlab";
}

struct World {
  // `kind`: the one device, a vhba written by the DiskWriter (an IO
  // partition) or a keyboard (a console partition, producing no input until
  // it is told a rate).
  explicit World(bool sriov = false, bool acknowledge_hotplug = true, ch::ChannelKind kind = ch::ChannelKind::vhba)
      : dir(std::filesystem::temp_directory_path() / ("visorlab-recovery-" + std::to_string(getpid()) + "-" +
                                                      std::to_string(++count))),
        sys(cfg),
        self(sys) {
    std::filesystem::create_directories(dir);
    guest_name = "rcv" + std::to_string(getpid()) + "x" + std::to_string(count);
    const bool disk = kind == ch::ChannelKind::vhba;
    device = guest_name + (disk ? "/vhba0" : "/keyboard0");
    writer = std::make_shared<DiskWriter>(device);
    commands = visorlab::command::spawn_command_partition(sys);
    const auto at = ask<Locator>(commands, guest_atom::value, guest_name);
    visorlab::guest::GuestActorOptions o;
    o.guest.name = guest_name;
    o.guest.acknowledge_hotplug = acknowledge_hotplug;
    o.controlvm = at;
    if (disk) o.application = writer;
    guest = visorlab::guest::spawn_guest(sys, o);

    BOOST_REQUIRE(!command(cvm::Id::chipset_init, CommandPartition::init_chipset(cvm::chipset_feature::para_hotplug))
                       .failed);
    BOOST_REQUIRE(command(cvm::Id::bus_create, CommandPartition::bus(2)).status == 0u);
    ChannelOffer offer{0x10, device, "", kind, 2, 0, "local", "127.0.0.1"};
    const auto channel = ask<Locator>(guest, offer_atom::value, offer);
    BOOST_REQUIRE(command(cvm::Id::device_create,
                          CommandPartition::device(2, 0, disk ? ch::guids::vhba : ch::guids::keyboard, 0x10,
                                                   ch::channel_size(ch::type_of(kind).spec())))
                      .status == 0u);

    visorlab::recovery::KeeperOptions k;
    k.process.visorlab_bin = visorlab_bin();
    k.process.service = {(disk ? "io-" : "con-") + guest_name,
                         disk ? visorlab::topology::ServiceKind::io : visorlab::topology::ServiceKind::console};
    k.commands = commands;
    k.listener = caf::actor_cast<caf::actor>(self);
    keeper = visorlab::recovery::spawn_keeper(sys, k);
    stats = ask<ServiceStats>(keeper, start_atom::value);
    ServedDevice served{guest_name, 2, 0, sriov, {device, kind, channel, disk ? (dir / "d0.img").string() : "", disk ? kDisk : 0, "", ""}};
    self->request(keeper, 15s, attach_atom::value, served)
        .receive([] {}, [&](caf::error& e) { BOOST_FAIL("attach failed: " << sys.render(e)); });
  }
  ~World() {
    self->send_exit(keeper, caf::exit_reason::user_shutdown);
    self->send_exit(guest, caf::exit_reason::user_shutdown);
    self->send_exit(commands, caf::exit_reason::user_shutdown);
    self->wait_for(keeper, guest, commands);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  template <class T, class Handle, class... Ts>
  T ask(const Handle& dest, Ts&&... xs) {
    T out{};
    self->request(dest, 15s, std::forward<Ts>(xs)...)
        .receive([&](T& x) { out = std::move(x); },
                 [&](caf::error& e) { BOOST_FAIL("request failed: " << sys.render(e)); });
    return out;
  }
  CommandResult command(cvm::Id id, const cvm::Packet& p) {
    return ask<CommandResult>(commands, command_atom::value, visorlab::command::make_request(guest_name, id, p));
  }
  // Waits (bounded) until the writer has completed `n` more writes.
  void writes(std::uint64_t n) {
    const auto goal = writer->completed() + n;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (writer->completed() < goal && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    BOOST_REQUIRE_MESSAGE(writer->completed() >= goal, "I/O did not flow: " << writer->completed() << " < " << goal);
  }
  static void phases_in_order(const RecoveryTimes& t) {
    BOOST_TEST_MESSAGE(visorlab::actors::to_string(t.kind) << ": detect " << (t.detect_ns - t.start_ns) / 1e6 << " ms, paused "
                              << (t.paused_ns - t.start_ns) / 1e6 << " ms, restarted "
                              << (t.restarted_ns - t.start_ns) / 1e6 << " ms, resumed "
                              << (t.resumed_ns - t.start_ns) / 1e6 << " ms");
    BOOST_TEST(t.ok, t.error);
    BOOST_TEST(t.devices == 1u);
    BOOST_TEST(t.paused_ns >= t.start_ns);
    BOOST_TEST(t.restarted_ns >= t.paused_ns);
    BOOST_TEST(t.resumed_ns >= t.restarted_ns);
  }
  // Stops the writer, waits for its last writes, then checks every one.
  void verify() {
    writer->stop();
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (writer->outstanding() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    std::lock_guard lock(writer->mu_);
    BOOST_TEST(writer->outstanding_ == 0u);
    BOOST_TEST(writer->failed_ == 0u);
    BOOST_TEST(writer->duplicates_ == 0u);
    BOOST_TEST(writer->completions_.size() == writer->submitted_);  // each exactly once
    // The backing file holds the latest acknowledged generation of each block.
    const int fd = ::open((dir / "d0.img").c_str(), O_RDONLY);
    BOOST_REQUIRE(fd >= 0);
    std::size_t wrong = 0;
    for (const auto& [block, gen] : writer->acked_) {
      std::vector<std::uint8_t> got(kBlock);
      BOOST_REQUIRE(::pread(fd, got.data(), kBlock, static_cast<off_t>(block) * kBlock) == kBlock);
      if (got != DiskWriter::contents(block, gen)) ++wrong;
    }
    ::close(fd);
    BOOST_TEST(wrong == 0u);
    BOOST_TEST(writer->acked_.size() > 0u);
  }

  static inline int count = 0;
  std::filesystem::path dir;
  Config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  std::string guest_name, device;
  std::shared_ptr<DiskWriter> writer;
  command_actor commands;
  guest_actor guest;
  keeper_actor keeper;
  ServiceStats stats;
};

}  // namespace

BOOST_AUTO_TEST_CASE(kill_9_mid_io_then_planned_recover_loses_nothing) {
  World w;
  BOOST_TEST(w.stats.pid > 0);
  w.writes(300);
  const auto crash = w.ask<RecoveryTimes>(w.keeper, crash_atom::value, std::int64_t{20});
  World::phases_in_order(crash);
  BOOST_TEST((crash.kind == visorlab::actors::RecoveryKind::crash));
  BOOST_TEST(crash.detect_ns >= crash.start_ns);
  BOOST_TEST(crash.restarted_ns - crash.start_ns >= 20'000'000);  // restart_after was honoured
  w.writes(300);
  const auto planned = w.ask<RecoveryTimes>(w.keeper, recover_atom::value);
  World::phases_in_order(planned);
  BOOST_TEST((planned.kind == visorlab::actors::RecoveryKind::recover));
  w.writes(300);
  const auto after = w.ask<ServiceStats>(w.keeper, stats_atom::value);
  BOOST_TEST(after.pid != w.stats.pid);  // really a new process
  w.verify();
  std::lock_guard lock(w.writer->mu_);
  BOOST_TEST_MESSAGE("writes " << w.writer->completed_ << ", DID_RESET reissues " << w.writer->resets_);
}

BOOST_AUTO_TEST_CASE(an_unexpected_death_is_noticed_and_recovered) {
  World w;
  w.writes(100);
  BOOST_REQUIRE(::kill(static_cast<pid_t>(w.stats.pid), SIGKILL) == 0);
  RecoveryTimes seen;
  bool got = false;
  w.self->receive([&](event_atom, const RecoveryTimes& t) { seen = t, got = true; },
                  caf::after(std::chrono::seconds(15)) >> [] {});
  BOOST_REQUIRE_MESSAGE(got, "the keeper did not report a recovery");
  World::phases_in_order(seen);
  BOOST_TEST((seen.kind == visorlab::actors::RecoveryKind::crash));
  w.writes(200);
  w.verify();
}

BOOST_AUTO_TEST_CASE(sriov_devices_get_parahotplug_around_recovery) {
  World w(true);
  w.writes(100);
  World::phases_in_order(w.ask<RecoveryTimes>(w.keeper, recover_atom::value));
  w.writes(100);
  w.verify();
}

BOOST_AUTO_TEST_CASE(a_missing_devicedisabled_fails_the_recovery_with_udev_timeout) {
  World w(true, false);
  const auto t = w.ask<RecoveryTimes>(w.keeper, recover_atom::value);
  BOOST_TEST(!t.ok);
  BOOST_TEST(t.error.find("sriov disable") != std::string::npos, t.error);
  BOOST_TEST(t.error.find("1400") != std::string::npos, t.error);  // DEVICE_UDEV_TIMEOUT
  w.verify();  // nothing was paused: writes went on
}

// Input is a workload: a console produces nothing until told a rate, keeps
// producing at it through a crash (the restarted process is told again), and
// stops when told 0.
BOOST_AUTO_TEST_CASE(a_console_produces_input_only_at_the_rate_it_was_told_across_a_crash) {
  World w(false, true, ch::ChannelKind::keyboard);
  auto reports = [&] { return w.ask<ServiceStats>(w.keeper, stats_atom::value).reports; };
  // Waits (bounded) until the console delivered `n` reports.
  auto until_reports = [&](std::uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (reports() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return reports();
  };
  std::this_thread::sleep_for(300ms);
  BOOST_TEST(reports() == 0u);  // up and attached, and quiet

  // Paused while it sleeps on the device's doorbell: the channel's memory
  // closes (mprotect) and the sleep must let go first — the process lives on.
  w.self->request(w.keeper, 15s, pause_atom::value, w.device).receive([] {}, [&](caf::error& e) {
    BOOST_FAIL("pause: " << w.sys.render(e));
  });
  std::this_thread::sleep_for(200ms);
  w.self->request(w.keeper, 15s, resume_atom::value, w.device).receive([] {}, [&](caf::error& e) {
    BOOST_FAIL("resume: " << w.sys.render(e));
  });
  BOOST_TEST(w.ask<ServiceStats>(w.keeper, stats_atom::value).pid == w.stats.pid);

  w.self->send(w.keeper, input_atom::value, 500.0);
  BOOST_TEST(until_reports(50) >= 50u);

  World::phases_in_order(w.ask<RecoveryTimes>(w.keeper, crash_atom::value, std::int64_t{20}));
  BOOST_TEST(w.ask<ServiceStats>(w.keeper, stats_atom::value).pid != w.stats.pid);
  BOOST_TEST(until_reports(50) >= 50u);  // the new process counts from 0, at the rate set before

  w.self->send(w.keeper, input_atom::value, 0.0);
  std::this_thread::sleep_for(100ms);  // what was on its way arrives
  const auto stopped = reports();
  std::this_thread::sleep_for(300ms);
  BOOST_TEST(reports() == stopped);

  w.self->request(w.keeper, 15s, input_atom::value, -1.0)
      .receive([] { BOOST_FAIL("a negative rate was taken"); }, [](caf::error&) {});
}
