// The IO partition's SCSI target for one vhba device: executes a uiscmdrsp
// SCSI command against a real backing file (pread/pwrite; O_DIRECT where the
// filesystem allows; fdatasync for SYNCHRONIZE CACHE and FUA) and fills in
// the response fields, with sense data for what it refuses.
//
// Data buffers live in the device's channel: each gpi_list entry is
// {byte offset in the channel, length}. Nothing in the command is trusted:
// guest_phys_entries is capped at 64, every range goes through the channel's
// bounds-checked read/write, lengths must add up to bufflen and to the
// transfer the CDB asks for, and a transfer is capped at kMaxTransfer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "channel/channel.hpp"
#include "channel/iochannel.hpp"

namespace visorlab::service {

// Linux SCSI result bytes as visorhba reads linuxstat.
inline constexpr std::int32_t kDidOk = 0x00;
inline constexpr std::int32_t kDidReset = 0x08;
inline constexpr std::int32_t kDidError = 0x07;
inline constexpr std::uint8_t kStatusGood = 0x00;
inline constexpr std::uint8_t kStatusCheckCondition = 0x02;

struct Sense {
  std::uint8_t key = 0;  // ILLEGAL REQUEST 0x05, MEDIUM ERROR 0x03, …
  std::uint8_t asc = 0;
  std::uint8_t ascq = 0;
};

class ScsiTarget {
 public:
  static constexpr std::uint32_t kBlockSize = 512;
  static constexpr std::uint32_t kMaxTransfer = 1u << 20;

  // Opens (creating and sizing if needed) the backing file of `size_bytes`,
  // a multiple of the block size. Throws std::system_error naming the file.
  ScsiTarget(std::string path, std::uint64_t size_bytes);
  ~ScsiTarget();
  ScsiTarget(const ScsiTarget&) = delete;
  ScsiTarget& operator=(const ScsiTarget&) = delete;

  // Runs `cmd` (cmdtype SCSI) with its data in `channel`; `cmd` becomes the
  // response: handle kept, linuxstat/scsistat/sensebuf set.
  void execute(channel::io::CmdRsp& cmd, channel::Channel& channel);

  std::uint64_t blocks() const { return blocks_; }
  const std::string& path() const { return path_; }
  bool direct_io() const { return direct_; }

 private:
  struct Transfer {
    std::uint64_t lba;
    std::uint32_t blocks;
    bool fua;
  };
  void fail(channel::io::CmdRsp& cmd, Sense sense);
  bool gather(const channel::io::Scsi& scsi, channel::Channel& ch, std::size_t length);
  bool scatter(const channel::io::Scsi& scsi, channel::Channel& ch, std::size_t length);
  bool check_gpi(const channel::io::Scsi& scsi, std::size_t length) const;
  bool file_read(std::uint64_t offset, std::size_t length);
  bool file_write(std::uint64_t offset, std::size_t length);
  void reopen_buffered();
  bool provision(std::uint64_t from, std::uint64_t to);
  void read_write(channel::io::CmdRsp& cmd, channel::Channel& ch, Transfer t, bool write);
  void reply_data(channel::io::CmdRsp& cmd, channel::Channel& ch, const std::uint8_t* data, std::size_t n);

  std::string path_;
  std::uint64_t blocks_;
  int fd_ = -1;
  bool direct_ = false;
  std::uint8_t* buffer_ = nullptr;  // aligned bounce buffer, kMaxTransfer bytes
  Sense last_sense_;                // for REQUEST SENSE
};

}  // namespace visorlab::service
