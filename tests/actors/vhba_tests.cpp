// vhba end to end on one host: the guest (chipset, bus, visorhba) and the IO
// partition (vhba backend over a SCSI target on a real file) share a vhba
// channel in shared memory; the test plays the command partition. Writes are
// verified by reading them back; a pause with commands in flight loses none
// and completes each exactly once.
#define BOOST_TEST_MODULE actors_vhba
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include "actors/bus/virtual_bus.hpp"
#include "actors/chipset/chipset.hpp"
#include "actors/command/command_partition.hpp"
#include "actors/drivers/visorhba.hpp"
#include "actors/service/vhba_backend.hpp"
#include "channel/channel_types.hpp"
#include "tests/actors/guest_harness.hpp"

namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
namespace io = visorlab::channel::io;
using visorlab::command::CommandPartition;
using visorlab::drivers::ScsiRequest;
using visorlab::drivers::ScsiResult;
using visorlab::drivers::VisorHba;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kDisk = 64 << 20;

std::string channel_name() { return "vhbatest" + std::to_string(getpid()); }

struct World {
  explicit World(std::chrono::milliseconds timeout = 30s)
      : dir(std::filesystem::temp_directory_path() / ("visorlab-vhba-" + std::to_string(getpid()))),
        io_end((std::filesystem::create_directories(dir),
                ch::create_shared_end(channel_name(), ch::type_of(ch::ChannelKind::vhba).spec()))),
        target((dir / "d0.img").string(), kDisk),
        backend(io_end->channel(), target),
        hba(timeout),
        bus([](const cvm::CreateDevice&, const ch::Expect& e) { return ch::attach_shared_end(channel_name(), e); }),
        chipset(controlvm.guest_end, bus),
        commands(controlvm.command_end) {
    bus.register_driver(hba);
    BOOST_REQUIRE(command(cvm::Id::bus_create, CommandPartition::bus(2)) == 0u);  // bus 2: the IO partition's
    BOOST_REQUIRE(command(cvm::Id::device_create, CommandPartition::device(2, 0, ch::guids::vhba)) == 0u);
    device = bus.find(2, 0);
    BOOST_REQUIRE(device);
    BOOST_REQUIRE(device->driver_name() == "visorhba");
  }
  ~World() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::uint32_t command(cvm::Id id, cvm::Packet p) {
    return visorlab::test::run_command(commands, chipset, id, p).status;
  }
  std::uint32_t change_state(std::uint16_t state) {
    return command(cvm::Id::device_changestate, CommandPartition::change_state(2, 0, state));
  }

  // Guest and IO partition take turns until `done` holds (bounded).
  template <typename Pred>
  bool pump(Pred done, int rounds = 10000) {
    for (int i = 0; i < rounds; ++i) {
      if (done()) return true;
      bus.poll();
      backend.poll();
    }
    return done();
  }

  static ScsiRequest rw(bool write, std::uint32_t lba, std::uint16_t blocks, std::uint8_t seed = 0) {
    ScsiRequest r;
    r.cdb = {static_cast<std::uint8_t>(write ? 0x2A : 0x28), 0, static_cast<std::uint8_t>(lba >> 24),
             static_cast<std::uint8_t>(lba >> 16), static_cast<std::uint8_t>(lba >> 8), static_cast<std::uint8_t>(lba),
             0, static_cast<std::uint8_t>(blocks >> 8), static_cast<std::uint8_t>(blocks), 0};
    r.dir = write ? io::DataDir::to_device : io::DataDir::from_device;
    if (write) {
      r.data.resize(blocks * 512u);
      for (std::size_t i = 0; i < r.data.size(); ++i) r.data[i] = static_cast<std::uint8_t>(seed * 31 + i / 512 + lba);
    } else {
      r.data_in = blocks * 512u;
    }
    return r;
  }

  std::filesystem::path dir;
  std::unique_ptr<ch::ChannelEnd> io_end;
  visorlab::service::ScsiTarget target;
  visorlab::service::VhbaBackend backend;
  visorlab::test::ControlvmPair controlvm;
  VisorHba hba;  // drivers outlive the bus that calls them
  visorlab::bus::VirtualBus bus;
  visorlab::chipset::Chipset chipset;
  CommandPartition commands;
  visorlab::bus::Device* device = nullptr;
};

}  // namespace

BOOST_AUTO_TEST_CASE(writes_read_back_through_the_channel_and_the_file) {
  World w;
  constexpr int kWrites = 64;
  int ok = 0;
  std::vector<std::vector<std::uint8_t>> written(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    auto r = World::rw(true, i * 8, 8, static_cast<std::uint8_t>(i));
    written[i] = r.data;
    r.done = [&](const ScsiResult& res) { ok += res.linuxstat == 0; };
    BOOST_REQUIRE(w.hba.submit(*w.device, std::move(r)) == 0);
  }
  BOOST_REQUIRE(w.pump([&] { return ok == kWrites; }));
  int verified = 0;
  for (int i = 0; i < kWrites; ++i) {
    auto r = World::rw(false, i * 8, 8);
    r.done = [&, i](const ScsiResult& res) { verified += res.linuxstat == 0 && res.data == written[i]; };
    w.hba.submit(*w.device, std::move(r));
  }
  BOOST_REQUIRE(w.pump([&] { return VisorHba::counts(*w.device).completed == 2u * kWrites; }));
  BOOST_TEST(verified == kWrites);
  BOOST_TEST(VisorHba::counts(*w.device).issued == 2u * kWrites);
}

BOOST_AUTO_TEST_CASE(a_pause_with_commands_in_flight_loses_none_and_completes_each_once) {
  World w;
  constexpr int kWrites = 40;
  std::vector<int> completions(kWrites, 0);
  std::vector<std::uint32_t> resets(kWrites, 0);
  std::vector<std::vector<std::uint8_t>> written(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    auto r = World::rw(true, 1000 + i * 4, 4, static_cast<std::uint8_t>(i + 1));
    written[i] = r.data;
    r.done = [&, i](const ScsiResult& res) {
      ++completions[i];
      resets[i] = res.resets;
      BOOST_TEST(res.linuxstat == 0);
    };
    w.hba.submit(*w.device, std::move(r));
  }
  w.bus.poll();  // all 40 issued, none executed yet
  BOOST_TEST(VisorHba::pending(*w.device) == static_cast<std::size_t>(kWrites));

  BOOST_TEST(w.change_state(cvm::segment::standby) == 0u);  // pause: every pending → DID_RESET
  BOOST_TEST(VisorHba::pending(*w.device) == 0u);
  BOOST_TEST(VisorHba::counts(*w.device).resets == static_cast<std::uint64_t>(kWrites));
  w.backend.poll();  // the IO partition still runs the old commands
  w.bus.poll();      // paused: the driver is not polled, nothing touches the channel
  BOOST_TEST(w.change_state(cvm::segment::running) == 0u);

  BOOST_REQUIRE(w.pump([&] { return VisorHba::counts(*w.device).completed == static_cast<std::uint64_t>(kWrites); }));
  for (int i = 0; i < kWrites; ++i) {
    BOOST_TEST(completions[i] == 1);  // exactly once
    BOOST_TEST(resets[i] == 1u);      // and it was retried after the reset
  }
  BOOST_REQUIRE(w.pump([&] { return VisorHba::counts(*w.device).stale == static_cast<std::uint64_t>(kWrites); }));
  BOOST_TEST(w.device->channel()->guard().violations() == 0u);

  int verified = 0;
  for (int i = 0; i < kWrites; ++i) {
    auto r = World::rw(false, 1000 + i * 4, 4);
    r.done = [&, i](const ScsiResult& res) { verified += res.data == written[i]; };
    w.hba.submit(*w.device, std::move(r));
  }
  BOOST_REQUIRE(w.pump([&] { return verified == kWrites; }));
}

// A restarted IO partition attached with DeviceAttach::reset skips what the
// guest queued before its pause: the guest re-issues those, so each command
// runs once, not twice, and each completes once.
BOOST_AUTO_TEST_CASE(a_restarted_partition_skips_what_was_queued_before_the_reset) {
  World w;
  constexpr int kWrites = 40;
  std::vector<int> completions(kWrites, 0);
  for (int i = 0; i < kWrites; ++i) {
    auto r = World::rw(true, 2000 + i * 4, 4, static_cast<std::uint8_t>(i + 7));
    r.done = [&, i](const ScsiResult& res) {
      ++completions[i];
      BOOST_TEST(res.linuxstat == 0);
    };
    w.hba.submit(*w.device, std::move(r));
  }
  w.bus.poll();  // all issued; the old partition "died" before taking any
  BOOST_TEST(w.change_state(cvm::segment::standby) == 0u);

  visorlab::service::VhbaBackend restarted(w.io_end->channel(), w.target);
  BOOST_TEST(restarted.skip_queued() == static_cast<std::size_t>(kWrites));
  BOOST_TEST(w.change_state(cvm::segment::running) == 0u);
  for (int i = 0; i < 10000 && VisorHba::counts(*w.device).completed < static_cast<std::uint64_t>(kWrites); ++i) {
    w.bus.poll();
    restarted.poll();
  }
  BOOST_TEST(VisorHba::counts(*w.device).completed == static_cast<std::uint64_t>(kWrites));
  BOOST_TEST(restarted.executed() == static_cast<std::uint64_t>(kWrites));  // the re-issued copies only
  for (int i = 0; i < kWrites; ++i) BOOST_TEST(completions[i] == 1);
  BOOST_TEST(w.device->channel()->guard().violations() == 0u);
}

BOOST_AUTO_TEST_CASE(no_more_than_128_commands_pending) {
  World w;
  int ok = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = World::rw(true, i, 1);
    r.done = [&](const ScsiResult& res) { ok += res.linuxstat == 0; };
    w.hba.submit(*w.device, std::move(r));
  }
  w.bus.poll();
  BOOST_TEST(VisorHba::pending(*w.device) == io::kMaxPendingScsi);
  BOOST_TEST(w.device->channel()->queue(io::to_iopart).pending() == io::kMaxPendingScsi);
  BOOST_REQUIRE(w.pump([&] { return ok == 200; }));
}

BOOST_AUTO_TEST_CASE(a_command_past_its_timeout_is_aborted) {
  World w(1ms);
  std::int32_t status = -1;
  auto r = World::rw(true, 5, 1);
  r.done = [&](const ScsiResult& res) { status = res.linuxstat; };
  w.hba.submit(*w.device, std::move(r));
  w.bus.poll();  // issued; the IO partition does not run
  std::this_thread::sleep_for(5ms);
  w.bus.poll();  // timed out: ABORT sent, the request completes
  BOOST_TEST(status == (visorlab::drivers::kDidTimeOut << 16));
  BOOST_TEST(VisorHba::counts(*w.device).aborts == 1u);
  BOOST_TEST(w.backend.poll() == 2u);  // the write, then the ABORT
  BOOST_REQUIRE(w.pump([&] { return VisorHba::counts(*w.device).stale == 1u; }));  // late answer frees its buffer
}

BOOST_AUTO_TEST_CASE(requests_larger_than_a_buffer_are_refused) {
  World w;
  auto r = World::rw(true, 0, 255);  // 127.5 KiB > 64 KiB buffer
  BOOST_TEST(w.hba.submit(*w.device, std::move(r)) == -EINVAL);
}

// A crash can come with any number of commands in flight, some already run
// by the dying partition, some answered but not yet read: whatever the queue
// depth (1–128) and timing, every request completes exactly once, with its
// data on disk. At depth 128 with nothing run, every buffer is stale; the
// driver must still get them back.
BOOST_AUTO_TEST_CASE(a_crash_at_any_queue_depth_and_moment_completes_every_request_once) {
  std::mt19937 rng(20261207);
  const std::vector<int> forced = {128, 128, 127, 1, 64};  // the edges, then random
  for (int trial = 0; trial < 24; ++trial) {
    const int depth = trial < static_cast<int>(forced.size()) ? forced[trial] : 1 + static_cast<int>(rng() % 128);
    const int total = depth + static_cast<int>(rng() % 64);  // more wait behind the queue
    // The forced trials crash before the partition ran anything (every buffer stale).
    const int ran_before_crash = trial < static_cast<int>(forced.size()) || rng() % 3 == 0
                                     ? 0
                                     : static_cast<int>(rng() % (depth + 1));
    BOOST_TEST_CONTEXT("depth " << depth << ", total " << total << ", run before the crash " << ran_before_crash) {
      World w;
      std::vector<int> completions(total, 0);
      std::vector<std::vector<std::uint8_t>> written(total);
      int submitted = 0;
      auto submit = [&] {
        const int i = submitted++;
        auto r = World::rw(true, 4000 + i * 2, 2, static_cast<std::uint8_t>(i + trial));
        written[i] = r.data;
        r.done = [&, i](const ScsiResult& res) {
          ++completions[i];
          BOOST_TEST(res.linuxstat == 0);
        };
        BOOST_REQUIRE(w.hba.submit(*w.device, std::move(r)) == 0);
      };
      while (submitted < depth) submit();
      w.bus.poll();  // `depth` commands in flight
      BOOST_TEST(VisorHba::pending(*w.device) == static_cast<std::size_t>(depth));
      w.backend.poll(ran_before_crash);  // the old partition runs some, answers them, dies
      while (submitted < total) submit();
      BOOST_TEST(w.change_state(cvm::segment::standby) == 0u);
      visorlab::service::VhbaBackend restarted(w.io_end->channel(), w.target);
      BOOST_TEST(restarted.skip_queued() == static_cast<std::size_t>(depth - ran_before_crash));
      BOOST_TEST(w.change_state(cvm::segment::running) == 0u);
      for (int i = 0; i < 2000 && VisorHba::counts(*w.device).completed < static_cast<std::uint64_t>(total); ++i) {
        w.bus.poll();
        restarted.poll();
      }
      BOOST_REQUIRE(VisorHba::counts(*w.device).completed == static_cast<std::uint64_t>(total));
      for (int i = 0; i < total; ++i) BOOST_TEST(completions[i] == 1);
      int verified = 0;
      for (int i = 0; i < total; ++i) {
        auto r = World::rw(false, 4000 + i * 2, 2);
        r.done = [&, i](const ScsiResult& res) { verified += res.linuxstat == 0 && res.data == written[i]; };
        w.hba.submit(*w.device, std::move(r));
      }
      for (int i = 0; i < 2000 && verified < total; ++i) {
        w.bus.poll();
        restarted.poll();
      }
      BOOST_TEST(verified == total);
      BOOST_TEST(w.device->channel()->guard().violations() == 0u);
    }
  }
}
