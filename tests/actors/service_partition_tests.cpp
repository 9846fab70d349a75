// The IO partition's service loop over real vhba channels in shared memory:
// the test plays the guests, queueing SCSI commands and counting answers.
// Disks are served round robin (a guest that keeps its queue full cannot
// starve the others), and a re-attach after a reset skips what was queued.
#define BOOST_TEST_MODULE actors_service_partition
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "actors/service/service_partition.hpp"
#include "channel/end/channel_end.hpp"
#include "channel/channel_types.hpp"
#include "channel/iochannel.hpp"

namespace ch = visorlab::channel;
namespace io = visorlab::channel::io;
using visorlab::service::ServicePartition;

namespace {

// Two guests' vhba channels (their guest ends) and disk files.
struct Disks {
  Disks() : dir(std::filesystem::temp_directory_path() / ("visorlab-sp-" + std::to_string(getpid()))) {
    std::filesystem::create_directories(dir);
    for (int i = 0; i < 2; ++i)
      guest[i] = ch::create_shared_end(name(i), ch::type_of(ch::ChannelKind::vhba).spec());
  }
  ~Disks() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  static std::string name(int i) { return "sptest" + std::to_string(getpid()) + "-" + std::to_string(i); }

  visorlab::actors::DeviceAttach attach(int i, bool reset = false) const {
    visorlab::actors::DeviceAttach a;
    a.device = "g" + std::to_string(i) + "/vhba0";
    a.kind = visorlab::channel::ChannelKind::vhba;
    a.channel = "shm:" + name(i);
    a.disk_path = (dir / ("d" + std::to_string(i) + ".img")).string();
    a.disk_bytes = 1 << 20;
    a.reset = reset;
    return a;
  }

  // Queues `n` TEST UNIT READY commands (no data) on guest i's channel.
  void queue(int i, int n) {
    for (int k = 0; k < n; ++k) {
      io::CmdRsp cmd{};
      cmd.cmdtype = io::CmdType::scsi;
      cmd.scsi.handle = static_cast<std::uint64_t>(k + 1);
      BOOST_REQUIRE(guest[i]->channel().queue(io::to_iopart).insert_signal(cmd) == 0);
    }
  }
  // Answers waiting for guest i (taken).
  int answers(int i) {
    int n = 0;
    io::CmdRsp rsp{};
    while (guest[i]->channel().queue(io::from_iopart).remove_signal(rsp) == 0) ++n;
    return n;
  }

  std::filesystem::path dir;
  std::unique_ptr<ch::ChannelEnd> guest[2];
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_poll_serves_disks_round_robin) {
  Disks d;
  ServicePartition io({"io0", visorlab::topology::ServiceKind::io});
  io.attach(d.attach(0));
  io.attach(d.attach(1));
  d.queue(0, 40);  // a guest with a deep queue
  d.queue(1, 1);
  BOOST_TEST(io.poll());
  // g1 is answered in the same poll, and g0 got no more than its share
  // (draining a channel at a time took all 40 first).
  BOOST_TEST(d.answers(1) == 1);
  BOOST_TEST(d.answers(0) == static_cast<int>(ServicePartition::kDiskPasses));
  while (io.poll()) {
  }
  BOOST_TEST(d.answers(0) == 40 - static_cast<int>(ServicePartition::kDiskPasses));
  BOOST_TEST(io.stats().commands == 41u);
}

BOOST_AUTO_TEST_CASE(a_reattach_after_a_reset_skips_what_was_queued) {
  Disks d;
  d.queue(0, 5);  // left by a partition that died; the guest re-issues them
  d.queue(1, 3);  // a plain attach: served
  ServicePartition io({"io0", visorlab::topology::ServiceKind::io});
  io.attach(d.attach(0, /*reset=*/true));
  io.attach(d.attach(1));
  while (io.poll()) {
  }
  BOOST_TEST(d.answers(0) == 0);
  BOOST_TEST(d.answers(1) == 3);
  d.queue(0, 2);  // what comes after the reset is served
  while (io.poll()) {
  }
  BOOST_TEST(d.answers(0) == 2);
  BOOST_TEST(io.stats().commands == 5u);
}
