#include "actors/service/vhba_backend.hpp"

namespace visorlab::service {

namespace io = channel::io;

namespace {
bool is_write(const io::CmdRsp& cmd) {
  const std::uint8_t op = cmd.scsi.cmnd[0];
  return op == 0x2A || op == 0x8A || op == 0xAA;  // WRITE(10), (16), (12)
}
}  // namespace

std::size_t VhbaBackend::skip_queued() {
  std::size_t skipped = 0;
  channel::io::CmdRsp cmd{};
  while (channel_.queue(io::to_iopart).remove_signal(cmd) == 0) ++skipped;
  return skipped;
}

std::size_t VhbaBackend::poll(std::size_t max_commands) {
  auto& rsp = channel_.queue(io::from_iopart);
  while (!backlog_.empty() && rsp.insert_signal(backlog_.front()) == 0) backlog_.pop_front();

  std::size_t done = 0;
  io::CmdRsp cmd{};
  // Stop taking commands while responses are backed up: the guest is not
  // draining, and the cmd queue is its flow control.
  while (done < max_commands && backlog_.empty() && channel_.queue(io::to_iopart).remove_signal(cmd) == 0) {
    switch (cmd.cmdtype) {
      case io::CmdType::scsi:
        if (lose_every_ && is_write(cmd)) {
          if (std::chrono::steady_clock::now() >= lose_until_) {
            lose_every_ = 0;  // the window is over
          } else if (++writes_ % lose_every_ == 0) {
            cmd.scsi.linuxstat = 0;  // the lie: "written"
            cmd.scsi.scsistat = 0;
            ++lost_;
            break;
          }
        }
        target_.execute(cmd, channel_);
        break;
      case io::CmdType::scsitaskmgmt:
        // Commands run to completion as they are taken, so an ABORT or a
        // reset finds nothing in flight here: it succeeds.
        cmd.scsitaskmgmt.result = 0;
        break;
      default:
        continue;  // not a vhba command: dropped, as the IO partition would
    }
    ++done;
    ++executed_;
    if (rsp.insert_signal(cmd) != 0) backlog_.push_back(cmd);
  }
  return done;
}

}  // namespace visorlab::service
