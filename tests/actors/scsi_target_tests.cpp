// The IO partition's SCSI target on a real backing file: data written through
// the channel is on disk and reads back; every refusal carries sense data;
// hostile scatter lists are refused, never followed.
#define BOOST_TEST_MODULE actors_scsi_target
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "actors/service/scsi_target.hpp"
#include "channel/channel_types.hpp"

namespace ch = visorlab::channel;
namespace io = visorlab::channel::io;
using visorlab::service::ScsiTarget;

namespace {

constexpr std::uint64_t kDisk = 16 << 20;  // 16 MiB
constexpr std::size_t kDataArea = 1 << 20;

struct Fixture {
  Fixture()
      : dir(std::filesystem::temp_directory_path() / ("visorlab-scsi-" + std::to_string(getpid()))),
        bytes(size()),
        channel(ch::Channel::format(ch::Mapping::borrow(bytes), spec())),
        target((std::filesystem::create_directories(dir), (dir / "d0.img").string()), kDisk) {}
  ~Fixture() { std::filesystem::remove_all(dir); }

  static ch::ChannelSpec spec() {
    auto s = ch::type_of(ch::ChannelKind::vhba).spec();
    s.min_size = ch::channel_size(s) + kDataArea;  // I/O buffers after the slots
    return s;
  }
  static std::size_t size() { return ch::channel_size(spec()); }
  std::uint64_t data_at() const { return size() - kDataArea; }

  // A SCSI command with its buffer split over `pieces` scatter entries.
  io::CmdRsp command(std::initializer_list<std::uint8_t> cdb, io::DataDir dir, std::uint32_t bufflen, int pieces = 1) {
    io::CmdRsp c{};
    c.cmdtype = io::CmdType::scsi;
    c.scsi.handle = 0xABCD;
    std::copy(cdb.begin(), cdb.end(), c.scsi.cmnd);
    c.scsi.bufflen = bufflen;
    c.scsi.data_dir = dir;
    c.scsi.guest_phys_entries = static_cast<std::uint16_t>(bufflen ? pieces : 0);
    for (int i = 0; i < pieces && bufflen; ++i) {
      c.scsi.gpi_list[i].address = data_at() + i * (bufflen / pieces);
      c.scsi.gpi_list[i].length = bufflen / pieces;
    }
    return c;
  }
  io::CmdRsp run(io::CmdRsp c) {
    target.execute(c, channel);
    return c;
  }
  static io::CmdRsp rw10(Fixture& f, bool write, std::uint32_t lba, std::uint16_t blocks, int pieces = 1) {
    return f.command({static_cast<std::uint8_t>(write ? 0x2A : 0x28), 0, static_cast<std::uint8_t>(lba >> 24),
                      static_cast<std::uint8_t>(lba >> 16), static_cast<std::uint8_t>(lba >> 8),
                      static_cast<std::uint8_t>(lba), 0, static_cast<std::uint8_t>(blocks >> 8),
                      static_cast<std::uint8_t>(blocks), 0},
                     write ? io::DataDir::to_device : io::DataDir::from_device, blocks * 512u, pieces);
  }
  void fill(std::uint8_t seed, std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7);
    BOOST_REQUIRE(channel.write(data_at(), v.data(), n) == 0);
  }
  std::vector<std::uint8_t> data(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    BOOST_REQUIRE(channel.read(data_at(), v.data(), n) == 0);
    return v;
  }

  std::filesystem::path dir;
  std::vector<std::byte> bytes;
  ch::Channel channel;
  ScsiTarget target;
};

bool good(const io::CmdRsp& c) { return c.scsi.linuxstat == 0 && c.scsi.scsistat == 0; }
void expect_sense(const io::CmdRsp& c, std::uint8_t key, std::uint8_t asc) {
  BOOST_TEST(+c.scsi.scsistat == 0x02);
  BOOST_TEST(+c.scsi.linuxstat != 0);
  BOOST_TEST(+c.scsi.sensebuf[0] == 0x70);
  BOOST_TEST(+c.scsi.sensebuf[2] == key);
  BOOST_TEST(+c.scsi.sensebuf[12] == asc);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(scsi, Fixture)

BOOST_AUTO_TEST_CASE(written_blocks_are_on_disk_and_read_back) {
  fill(3, 8 * 512);
  auto w = run(rw10(*this, true, 100, 8, 4));  // scattered over 4 pieces
  BOOST_TEST(good(w));
  BOOST_TEST(+w.scsi.handle == 0xABCDu);  // echoed
  const auto written = data(8 * 512);

  // On disk, at LBA 100.
  std::vector<std::uint8_t> disk(8 * 512);
  const int fd = ::open(target.path().c_str(), O_RDONLY);
  BOOST_REQUIRE(fd >= 0);
  BOOST_REQUIRE(::pread(fd, disk.data(), disk.size(), 100 * 512) == static_cast<ssize_t>(disk.size()));
  ::close(fd);
  BOOST_TEST(disk == written);

  fill(0, 8 * 512);  // clobber the buffer, then READ(10) it back
  BOOST_TEST(good(run(rw10(*this, false, 100, 8, 2))));
  BOOST_TEST(data(8 * 512) == written);

  // A fresh target on the same file (a restarted IO partition) sees the same data.
  ScsiTarget again(target.path(), kDisk);
  fill(0, 8 * 512);
  auto r = rw10(*this, false, 100, 8);
  again.execute(r, channel);
  BOOST_TEST(good(r));
  BOOST_TEST(data(8 * 512) == written);
}

BOOST_AUTO_TEST_CASE(sixteen_byte_cdbs_fua_and_synchronize_cache) {
  fill(9, 512);
  auto w = command({0x8A, 0x08, 0, 0, 0, 0, 0, 0, 0x7F, 0xFF, 0, 0, 0, 1, 0, 0}, io::DataDir::to_device, 512);
  BOOST_TEST(good(run(w)));  // WRITE(16) with FUA at the last block
  const auto written = data(512);
  fill(0, 512);
  auto r = command({0x88, 0, 0, 0, 0, 0, 0, 0, 0x7F, 0xFF, 0, 0, 0, 1, 0, 0}, io::DataDir::from_device, 512);
  BOOST_TEST(good(run(r)));
  BOOST_TEST(data(512) == written);
  BOOST_TEST(good(run(command({0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0}, io::DataDir::none, 0))));
}

BOOST_AUTO_TEST_CASE(capacity_inquiry_and_test_unit_ready) {
  BOOST_TEST(good(run(command({0x00, 0, 0, 0, 0, 0}, io::DataDir::none, 0))));
  BOOST_TEST(good(run(command({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, io::DataDir::from_device, 8))));
  auto d = data(8);
  BOOST_TEST((d[0] << 24 | d[1] << 16 | d[2] << 8 | d[3]) == static_cast<int>(kDisk / 512 - 1));
  BOOST_TEST((d[6] << 8 | d[7]) == 512);
  BOOST_TEST(good(run(command({0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, io::DataDir::from_device, 32))));
  d = data(12);
  BOOST_TEST(+d[7] == 0xFFu);  // last LBA 32767 = 0x7FFF, big-endian u64
  BOOST_TEST(+d[6] == 0x7Fu);
  BOOST_TEST(good(run(command({0x12, 0, 0, 0, 36, 0}, io::DataDir::from_device, 36))));
  d = data(36);
  BOOST_TEST(std::string(d.begin() + 8, d.begin() + 16) == "VISORLAB");
}

BOOST_AUTO_TEST_CASE(refusals_carry_sense_and_request_sense_returns_it) {
  expect_sense(run(command({0xC7, 0, 0, 0, 0, 0}, io::DataDir::none, 0)), 0x05, 0x20);  // unknown opcode
  BOOST_TEST(good(run(command({0x03, 0, 0, 0, 18, 0}, io::DataDir::from_device, 18))));
  const auto sense = data(18);
  BOOST_TEST(+sense[2] == 0x05u);
  BOOST_TEST(+sense[12] == 0x20u);

  expect_sense(run(rw10(*this, false, kDisk / 512 - 1, 2)), 0x05, 0x21);  // past the end
  expect_sense(run(rw10(*this, false, 0xFFFFFFFF, 1)), 0x05, 0x21);        // no wrap-around
}

BOOST_AUTO_TEST_CASE(hostile_scatter_lists_are_refused) {
  auto c = rw10(*this, true, 0, 1);
  c.scsi.gpi_list[0].address = size() - 100;  // runs past the channel
  expect_sense(run(c), 0x05, 0x24);
  c = rw10(*this, true, 0, 1);
  c.scsi.gpi_list[0].address = ~0ull - 10;  // address + length overflows
  expect_sense(run(c), 0x05, 0x24);
  c = rw10(*this, true, 0, 1);
  c.scsi.guest_phys_entries = 65;  // more than the list holds
  expect_sense(run(c), 0x05, 0x24);
  c = rw10(*this, true, 0, 2);
  c.scsi.bufflen = 512;  // disagrees with the CDB
  expect_sense(run(c), 0x05, 0x24);
  c = rw10(*this, true, 0, 1);
  c.scsi.gpi_list[0].length = 4096;  // entries add up to more than bufflen
  expect_sense(run(c), 0x05, 0x24);
  c = rw10(*this, true, 0, 1);
  c.scsi.data_dir = io::DataDir::from_device;  // a write that claims data-in
  expect_sense(run(c), 0x05, 0x24);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(disk_sizes_must_be_whole_blocks) {
  BOOST_CHECK_THROW(ScsiTarget("/tmp/visorlab-never", 1000), std::invalid_argument);
  BOOST_CHECK_THROW(ScsiTarget("/nonexistent-dir/d0.img", 4096), std::system_error);
}
