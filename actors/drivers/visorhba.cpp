#include "actors/drivers/visorhba.hpp"

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>

namespace visorlab::drivers {
namespace {

namespace io = channel::io;
using Clock = VisorHba::Clock;

constexpr std::array kClaims = {channel::ChannelKind::vhba};

// A request an IoObserver chose to time (token 0: untimed).
struct Timing {
  Clock::time_point since{};
  std::uint32_t token = 0;
  bool write = false;
};

struct Pending {
  ScsiRequest request;
  std::uint32_t buffer;
  Clock::time_point deadline;
  std::uint32_t resets = 0;
  Timing timing;
};

struct Waiting {
  ScsiRequest request;
  std::uint32_t resets = 0;
  Timing timing;
};

struct HbaState {
  std::uint64_t pool_at = 0;  // data area: buffer i at pool_at + i * kVhbaBufferSize
  std::vector<std::uint32_t> free_buffers;
  std::map<std::uint64_t, Pending> pending;          // by handle
  // Handle failed at a pause or aborted → its buffer, held. The IO partition
  // answers in issue order, so once a later handle is answered, a stale one
  // below it never will be (its command died with a crashed or restarted
  // partition) and its buffer is free again.
  std::map<std::uint64_t, std::uint32_t> stale;
  std::deque<Waiting> waiting;  // not yet issued, in order
  std::uint64_t next_handle = 1;
  // A no-data TEST UNIT READY sent when every buffer is stale, so that some
  // later handle is answered (0: none out). Without it a pause with all 128
  // buffers in flight would hold them forever and nothing could be issued.
  std::uint64_t barrier = 0;
  Clock::time_point barrier_deadline{};
  bool paused = false;
  HbaCounts counts;
  IoObserver* observer = nullptr;
};

HbaState* state_of(const bus::Device& d) { return static_cast<HbaState*>(d.driver_data.get()); }

// The data area starts after the last queue's slots (64-aligned).
std::uint64_t data_area(channel::Channel& ch) {
  std::uint64_t end = 0;
  for (std::uint32_t q = 0; q < ch.queue_count(); ++q) {
    const auto& queue = ch.queue(q);
    const auto h = ch.queue_header(q);
    end = std::max<std::uint64_t>(end, queue.header_offset() + h.sig_base_offset +
                                           std::uint64_t{queue.max_slots()} * queue.signal_size());
  }
  return (end + 63) & ~std::uint64_t{63};
}

// Every stale handle below `answered` is dead: its buffer goes back.
void reclaim_below(HbaState& s, std::uint64_t answered) {
  for (auto st = s.stale.begin(); st != s.stale.end() && st->first < answered; st = s.stale.erase(st))
    s.free_buffers.push_back(st->second);
}

void complete(HbaState& s, ScsiRequest& request, ScsiResult result, const Timing& timing) {
  ++s.counts.completed;
  if (timing.token != 0 && s.observer) s.observer->done(timing.write, Clock::now() - timing.since, timing.token);
  if (request.done) request.done(result);
}

}  // namespace

std::span<const channel::ChannelKind> VisorHba::claims() const { return kClaims; }

int VisorHba::probe(bus::Device& device) {
  channel::Channel* ch = device.channel();
  if (!ch || ch->queue_count() < io::kQueueCount) return -ENODEV;
  auto s = std::make_shared<HbaState>();
  s->pool_at = data_area(*ch);
  if (s->pool_at >= ch->size()) return -ENOMEM;  // a channel with no room for buffers
  const auto buffers = std::min<std::uint64_t>(io::kMaxPendingScsi, (ch->size() - s->pool_at) / io::kVhbaBufferSize);
  if (buffers == 0) return -ENOMEM;
  for (std::uint32_t i = 0; i < buffers; ++i) s->free_buffers.push_back(static_cast<std::uint32_t>(buffers - 1 - i));
  if (observers_) s->observer = observers_(device);
  device.driver_data = std::move(s);
  return 0;
}

void VisorHba::remove(bus::Device& device) {
  HbaState* s = state_of(device);
  if (!s) return;
  ScsiResult gone;
  gone.linuxstat = kDidNoConnect << 16;
  s->observer = nullptr;  // commands failed by the removal are not latencies
  for (auto& [handle, p] : s->pending) complete(*s, p.request, gone, p.timing);
  for (auto& w : s->waiting) complete(*s, w.request, gone, w.timing);
  device.driver_data.reset();
}

int VisorHba::submit(bus::Device& device, ScsiRequest request) {
  HbaState* s = state_of(device);
  if (!s || device.driver_name() != name()) return -ENODEV;
  if (request.data.size() > io::kVhbaBufferSize || request.data_in > io::kVhbaBufferSize) return -EINVAL;
  Timing timing;
  if (s->observer && request.dir != io::DataDir::none) {
    timing.write = request.dir == io::DataDir::to_device;
    timing.token = s->observer->sample(timing.write);
    if (timing.token != 0) timing.since = Clock::now();
  }
  s->waiting.push_back({std::move(request), 0, timing});
  return 0;
}

int VisorHba::pause(bus::Device& device, Done done) {
  HbaState* s = state_of(device);
  if (!s) return -ENODEV;
  if (s->paused) return -EBUSY;
  // Every pending command fails with DID_RESET and goes back, in issue order,
  // before anything not yet issued. Its buffer stays held: the IO partition
  // may still be executing it.
  std::deque<Waiting> reissue;
  for (auto& [handle, p] : s->pending) {
    ++s->counts.resets;
    s->stale[handle] = p.buffer;
    reissue.push_back({std::move(p.request), p.resets + 1, p.timing});
  }
  s->pending.clear();
  s->barrier = 0;  // an answer to it now proves nothing new; resume sends another if needed
  s->waiting.insert(s->waiting.begin(), std::make_move_iterator(reissue.begin()),
                    std::make_move_iterator(reissue.end()));
  s->paused = true;
  done(0);  // from here on the channel is not touched until resume
  return 0;
}

int VisorHba::resume(bus::Device& device, Done done) {
  HbaState* s = state_of(device);
  if (!s) return -ENODEV;
  if (!s->paused) return -EBUSY;
  s->paused = false;
  done(0);  // the kernel forgets this response; visorlab sends it
  return 0;
}

void VisorHba::channel_interrupt(bus::Device& device) {
  HbaState* s = state_of(device);
  channel::Channel* ch = device.channel();
  if (!s || !ch || s->paused) return;
  const auto now = Clock::now();

  // Responses.
  io::CmdRsp rsp{};  // filled by remove_signal; zeroed so no path reads garbage
  while (ch->queue(io::from_iopart).remove_signal(rsp) == 0) {
    if (rsp.cmdtype != io::CmdType::scsi) continue;  // task management answers
    const std::uint64_t handle = rsp.scsi.handle;
    reclaim_below(*s, handle);
    if (handle == s->barrier) {
      s->barrier = 0;
      continue;
    }
    if (auto st = s->stale.find(handle); st != s->stale.end()) {
      ++s->counts.stale;
      s->free_buffers.push_back(st->second);  // its last user is done with it
      s->stale.erase(st);
      continue;
    }
    auto it = s->pending.find(handle);
    if (it == s->pending.end()) {
      ++s->counts.stale;  // aborted, or never ours
      continue;
    }
    Pending& p = it->second;
    ScsiResult result;
    result.linuxstat = rsp.scsi.linuxstat;
    result.scsistat = rsp.scsi.scsistat;
    result.resets = p.resets;
    std::memcpy(result.sense.data(), rsp.scsi.sensebuf, result.sense.size());
    if (p.request.data_in > 0 && rsp.scsi.linuxstat == 0) {
      result.data.resize(p.request.data_in);
      if (ch->read(s->pool_at + std::uint64_t{p.buffer} * io::kVhbaBufferSize, result.data.data(), result.data.size()) != 0)
        result.linuxstat = kDidTimeOut << 16;
    }
    s->free_buffers.push_back(p.buffer);
    ScsiRequest request = std::move(p.request);
    const Timing timing = p.timing;
    s->pending.erase(it);
    complete(*s, request, std::move(result), timing);
  }

  // Timeouts: ABORT, then the request completes with DID_TIME_OUT; its buffer
  // is held until a late response shows up.
  for (auto it = s->pending.begin(); it != s->pending.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    io::CmdRsp abort{};
    abort.cmdtype = io::CmdType::scsitaskmgmt;
    abort.scsitaskmgmt.tasktype = io::TaskMgmt::abort_task;
    abort.scsitaskmgmt.handle = it->first;
    if (ch->queue(io::to_iopart).insert_signal(abort) != 0) break;  // try again next poll
    ++s->counts.aborts;
    s->stale[it->first] = it->second.buffer;
    ScsiResult timed_out;
    timed_out.linuxstat = kDidTimeOut << 16;
    ScsiRequest request = std::move(it->second.request);
    const Timing timing = it->second.timing;
    it = s->pending.erase(it);
    complete(*s, request, timed_out, timing);
  }

  // Every buffer held by stale commands and nothing pending whose answer
  // would free them: ask the IO partition for an answer that needs no buffer.
  if (s->barrier && s->barrier_deadline <= now) s->barrier = 0;  // lost with a partition: ask again
  if (!s->waiting.empty() && s->free_buffers.empty() && s->pending.empty() && !s->stale.empty() && !s->barrier) {
    io::CmdRsp tur{};
    tur.cmdtype = io::CmdType::scsi;
    tur.scsi.handle = s->next_handle;
    tur.scsi.data_dir = io::DataDir::none;  // TEST UNIT READY: an all-zero CDB
    if (ch->queue(io::to_iopart).insert_signal(tur) == 0) {
      s->barrier = s->next_handle++;
      s->barrier_deadline = now + timeout_;
    }
  }

  // Issue what waits, while buffers and queue room last.
  while (!s->waiting.empty() && !s->free_buffers.empty() && s->pending.size() < io::kMaxPendingScsi) {
    Waiting& w = s->waiting.front();
    const std::uint32_t buffer = s->free_buffers.back();
    const std::uint64_t at = s->pool_at + std::uint64_t{buffer} * io::kVhbaBufferSize;
    const std::uint32_t length = static_cast<std::uint32_t>(std::max<std::size_t>(w.request.data.size(), w.request.data_in));
    if (!w.request.data.empty() && ch->write(at, w.request.data.data(), w.request.data.size()) != 0) break;
    io::CmdRsp cmd{};
    cmd.cmdtype = io::CmdType::scsi;
    cmd.scsi.handle = s->next_handle;
    std::memcpy(cmd.scsi.cmnd, w.request.cdb.data(), w.request.cdb.size());
    cmd.scsi.bufflen = length;
    cmd.scsi.data_dir = w.request.dir;
    cmd.scsi.guest_phys_entries = length ? 1 : 0;
    cmd.scsi.gpi_list[0] = {at, length};
    if (ch->queue(io::to_iopart).insert_signal(cmd) != 0) break;  // full: next poll
    ++s->counts.issued;
    s->free_buffers.pop_back();
    s->pending.emplace(s->next_handle++, Pending{std::move(w.request), buffer, now + timeout_, w.resets, w.timing});
    s->waiting.pop_front();
  }
  if (s->observer && s->pending.empty() && s->waiting.empty()) s->observer->idle();
}

HbaCounts VisorHba::counts(const bus::Device& device) {
  const HbaState* s = state_of(device);
  return s ? s->counts : HbaCounts{};
}

std::size_t VisorHba::pending(const bus::Device& device) {
  const HbaState* s = state_of(device);
  return s ? s->pending.size() : 0;
}

}  // namespace visorlab::drivers
