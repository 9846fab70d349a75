#include "actors/service/scsi_target.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace visorlab::service {
namespace {

namespace io = channel::io;

constexpr Sense kInvalidOpcode{0x05, 0x20, 0x00};
constexpr Sense kLbaOutOfRange{0x05, 0x21, 0x00};
constexpr Sense kInvalidField{0x05, 0x24, 0x00};
constexpr Sense kReadError{0x03, 0x11, 0x00};
constexpr Sense kWriteError{0x03, 0x0C, 0x00};

std::uint64_t be(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

void put_be(std::uint8_t* p, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

}  // namespace

ScsiTarget::ScsiTarget(std::string path, std::uint64_t size_bytes) : path_(std::move(path)) {
  if (size_bytes == 0 || size_bytes % kBlockSize != 0)
    throw std::invalid_argument(path_ + ": disk size " + std::to_string(size_bytes) + " is not a positive multiple of 512");
  blocks_ = size_bytes / kBlockSize;
  // O_DIRECT where the filesystem takes it (tmpfs does not).
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_DIRECT, 0644);
  direct_ = fd_ >= 0;
  if (fd_ < 0 && errno == EINVAL) fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "open " + path_);
  buffer_ = static_cast<std::uint8_t*>(std::aligned_alloc(4096, kMaxTransfer));
  if (!buffer_) {
    ::close(fd_);
    throw std::bad_alloc();
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !provision(static_cast<std::uint64_t>(st.st_size), size_bytes)) {
    const int e = errno;
    std::free(buffer_);
    ::close(fd_);
    throw std::system_error(e, std::generic_category(), "size " + path_);
  }
}

// Grows the file to `to` bytes with zeros really written, as a provisioned
// disk image is: a direct write into a hole allocates blocks and converts
// extents through the filesystem's journal, which stalls the IO partition's
// thread in the kernel (and a kill -9 of it with it) for as long as the
// journal takes. Images beyond kFillLimit are only extended (sparse).
bool ScsiTarget::provision(std::uint64_t from, std::uint64_t to) {
  constexpr std::uint64_t kFillLimit = std::uint64_t{1} << 30;
  if (from >= to) return true;
  // (An odd-sized existing file is only extended: its last bytes are data.)
  if (to > kFillLimit || from % 4096 != 0) return ::ftruncate(fd_, static_cast<off_t>(to)) == 0;
  std::memset(buffer_, 0, kMaxTransfer);
  for (std::uint64_t at = from; at < to;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kMaxTransfer, to - at));
    const ssize_t w = ::pwrite(fd_, buffer_, n, static_cast<off_t>(at));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EINVAL && direct_) {
      reopen_buffered();
      continue;
    }
    if (w <= 0) return false;
    at += static_cast<std::uint64_t>(w);
  }
  // No fdatasync: the blocks are allocated and written (direct I/O completes
  // on the device); the journal commits the extents on its own schedule, and
  // a sync per new disk would serialise bringing up many disks.
  return true;
}

ScsiTarget::~ScsiTarget() {
  std::free(buffer_);
  if (fd_ >= 0) ::close(fd_);
}

void ScsiTarget::reopen_buffered() {
  const int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  ::close(fd_);
  fd_ = fd;
  direct_ = false;
}

bool ScsiTarget::file_read(std::uint64_t offset, std::size_t length) {
  for (std::size_t done = 0; done < length;) {
    const ssize_t n = ::pread(fd_, buffer_ + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && direct_) {  // alignment the device wants more of
      reopen_buffered();
      continue;
    }
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool ScsiTarget::file_write(std::uint64_t offset, std::size_t length) {
  for (std::size_t done = 0; done < length;) {
    const ssize_t n = ::pwrite(fd_, buffer_ + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && direct_) {
      reopen_buffered();
      continue;
    }
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool ScsiTarget::check_gpi(const io::Scsi& scsi, std::size_t length) const {
  const std::uint16_t entries = scsi.guest_phys_entries;
  if (entries > io::kMaxPhysInfo || (length > 0 && entries == 0)) return false;
  std::uint64_t total = 0;
  for (std::uint16_t i = 0; i < entries; ++i) {
    const std::uint64_t len = scsi.gpi_list[i].length;
    if (len > kMaxTransfer) return false;
    total += len;
  }
  return total == length;
}

bool ScsiTarget::gather(const io::Scsi& scsi, channel::Channel& ch, std::size_t length) {
  std::size_t off = 0;
  for (std::uint16_t i = 0; i < scsi.guest_phys_entries && off < length; ++i) {
    const std::size_t len = scsi.gpi_list[i].length;
    if (ch.read(scsi.gpi_list[i].address, buffer_ + off, len) != 0) return false;
    off += len;
  }
  return true;
}

bool ScsiTarget::scatter(const io::Scsi& scsi, channel::Channel& ch, std::size_t length) {
  std::size_t off = 0;
  for (std::uint16_t i = 0; i < scsi.guest_phys_entries && off < length; ++i) {
    const std::size_t len = std::min<std::size_t>(scsi.gpi_list[i].length, length - off);
    if (ch.write(scsi.gpi_list[i].address, buffer_ + off, len) != 0) return false;
    off += len;
  }
  return true;
}

void ScsiTarget::fail(io::CmdRsp& cmd, Sense sense) {
  auto& s = cmd.scsi;
  s.linuxstat = kStatusCheckCondition;  // the status byte of the Linux result: sense is valid
  s.scsistat = kStatusCheckCondition;
  s.addlstat = 0;
  std::memset(s.sensebuf, 0, sizeof s.sensebuf);
  s.sensebuf[0] = 0x70;  // fixed format, current error
  s.sensebuf[2] = sense.key;
  s.sensebuf[7] = 10;  // additional length
  s.sensebuf[12] = sense.asc;
  s.sensebuf[13] = sense.ascq;
  last_sense_ = sense;
}

// Data-in commands (INQUIRY, READ CAPACITY, REQUEST SENSE): at most what the
// command's buffer holds.
void ScsiTarget::reply_data(io::CmdRsp& cmd, channel::Channel& ch, const std::uint8_t* data, std::size_t n) {
  const std::size_t length = std::min<std::size_t>(n, cmd.scsi.bufflen);
  if (cmd.scsi.bufflen > kMaxTransfer || !check_gpi(cmd.scsi, cmd.scsi.bufflen)) return fail(cmd, kInvalidField);
  std::memcpy(buffer_, data, length);
  if (!scatter(cmd.scsi, ch, length)) return fail(cmd, kInvalidField);
}

void ScsiTarget::read_write(io::CmdRsp& cmd, channel::Channel& ch, Transfer t, bool write) {
  auto& s = cmd.scsi;
  if (t.lba > blocks_ || t.blocks > blocks_ - t.lba) return fail(cmd, kLbaOutOfRange);
  const std::uint64_t length = std::uint64_t{t.blocks} * kBlockSize;
  const auto want_dir = write ? io::DataDir::to_device : io::DataDir::from_device;
  if (length > kMaxTransfer || s.bufflen != length || (length > 0 && s.data_dir != want_dir) || !check_gpi(s, length))
    return fail(cmd, kInvalidField);
  const std::uint64_t offset = t.lba * kBlockSize;
  if (write) {
    if (!gather(s, ch, length)) return fail(cmd, kInvalidField);
    if (!file_write(offset, length) || (t.fua && ::fdatasync(fd_) != 0)) return fail(cmd, kWriteError);
  } else {
    if (!file_read(offset, length)) return fail(cmd, kReadError);
    if (!scatter(s, ch, length)) return fail(cmd, kInvalidField);
  }
}

void ScsiTarget::execute(io::CmdRsp& cmd, channel::Channel& ch) {
  auto& s = cmd.scsi;
  const std::uint8_t* cdb = s.cmnd;
  s.linuxstat = kDidOk;
  s.scsistat = kStatusGood;
  s.addlstat = 0;
  switch (cdb[0]) {
    case 0x00:  // TEST UNIT READY
      return;
    case 0x03: {  // REQUEST SENSE: the last sense, then no sense
      std::uint8_t data[18] = {0x70};
      data[2] = last_sense_.key;
      data[7] = 10;
      data[12] = last_sense_.asc;
      data[13] = last_sense_.ascq;
      last_sense_ = {};
      return reply_data(cmd, ch, data, std::min<std::size_t>(sizeof data, cdb[4]));
    }
    case 0x12: {  // INQUIRY
      const std::size_t alloc = be(cdb + 3, 2);
      if (cdb[1] & 0x01) {  // EVPD: only the list of supported pages
        if (cdb[2] != 0x00) return fail(cmd, kInvalidField);
        const std::uint8_t pages[5] = {0x00, 0x00, 0x00, 0x01, 0x00};
        return reply_data(cmd, ch, pages, std::min(sizeof pages, alloc));
      }
      std::uint8_t data[36] = {};
      data[0] = 0x00;  // direct-access block device
      data[2] = 0x05;  // SPC-3
      data[3] = 0x02;  // response data format
      data[4] = sizeof data - 5;
      std::memcpy(data + 8, "VISORLAB", 8);
      std::memcpy(data + 16, "vhba disk       ", 16);
      std::memcpy(data + 32, "0001", 4);
      return reply_data(cmd, ch, data, std::min(sizeof data, alloc));
    }
    case 0x25: {  // READ CAPACITY(10)
      std::uint8_t data[8];
      put_be(data, std::min<std::uint64_t>(blocks_ - 1, 0xFFFFFFFF), 4);
      put_be(data + 4, kBlockSize, 4);
      return reply_data(cmd, ch, data, sizeof data);
    }
    case 0x9E: {  // SERVICE ACTION IN(16)
      if ((cdb[1] & 0x1F) != 0x10) return fail(cmd, kInvalidField);  // READ CAPACITY(16) only
      std::uint8_t data[32] = {};
      put_be(data, blocks_ - 1, 8);
      put_be(data + 8, kBlockSize, 4);
      return reply_data(cmd, ch, data, std::min<std::size_t>(sizeof data, be(cdb + 10, 4)));
    }
    case 0x28:  // READ(10)
    case 0x2A:  // WRITE(10)
      return read_write(cmd, ch, {be(cdb + 2, 4), static_cast<std::uint32_t>(be(cdb + 7, 2)), (cdb[1] & 0x08) != 0},
                        cdb[0] == 0x2A);
    case 0x88:  // READ(16)
    case 0x8A:  // WRITE(16)
      return read_write(cmd, ch, {be(cdb + 2, 8), static_cast<std::uint32_t>(be(cdb + 10, 4)), (cdb[1] & 0x08) != 0},
                        cdb[0] == 0x8A);
    case 0x35:  // SYNCHRONIZE CACHE(10)
    case 0x91:  // SYNCHRONIZE CACHE(16)
      if (::fdatasync(fd_) != 0) return fail(cmd, kWriteError);
      return;
    default:
      return fail(cmd, kInvalidOpcode);
  }
}

}  // namespace visorlab::service
