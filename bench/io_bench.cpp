// io_bench: the guest I/O paths end to end against what the same work costs
// without visorlab (DESIGN.md target: vhba disk IOPS >= 0.7x fio on the same
// file).
//
// vhba_iops_4k_randrw — the candidate is the real stack: the guest's visorhba
// driver (actors/drivers) bound by the real device model (actors/bus) to a vhba
// channel in POSIX shared memory, and the IO partition's VhbaBackend over a
// ScsiTarget on a real file (actors/service) in a forked child process, as the
// service partition runs. The baseline is Debian's fio (psync engine) on the
// same file with the same block size, read/write mix, queue depth and O_DIRECT
// choice, run as a subprocess in the same bench run, rounds interleaved.
//
// vnic_frames_1500 — frames/s between two guests on one switch. The candidate
// is again the real stack: two vnic channels in POSIX shared memory; in this
// process guest A's and guest B's visornic drivers, each bound by its own
// VirtualBus (two guests); in the forked IO partition the two VnicBackends on
// one SoftwareSwitch. A streams 1500-byte frames to B (retrying on the
// driver's -EBUSY throttle), B checks each frame's sequence number. There is
// no "same path without visorlab", so the baseline is what moving a
// 1500-byte message between two processes costs on this machine: an AF_UNIX
// SOCK_SEQPACKET stream from this process to a forked child, same pinning.
//
// Adding a bench is one function returning a Bench and one line in main's
// list.
#include <fcntl.h>
#include <poll.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "actors/bus/virtual_bus.hpp"
#include "actors/drivers/visorhba.hpp"
#include "actors/drivers/visornic.hpp"
#include "actors/service/scsi_target.hpp"
#include "actors/service/software_switch.hpp"
#include "actors/service/vhba_backend.hpp"
#include "actors/service/vnic_backend.hpp"
#include "bench/bench_harness.hpp"
#include "bench/subprocess.hpp"
#include "channel/end/channel_end.hpp"
#include "channel/channel_types.hpp"
#include "channel/controlvm.hpp"

namespace {

using namespace visorlab::bench;
namespace ch = visorlab::channel;
namespace cvm = visorlab::channel::controlvm;
namespace io = visorlab::channel::io;
using visorlab::drivers::ScsiRequest;
using visorlab::drivers::ScsiResult;
using visorlab::drivers::VisorHba;
using visorlab::drivers::VisorNic;

// ---- options ----------------------------------------------------------------------

struct IoOptions {
  double seconds = 2.0;         // timed part of one round, each side
  unsigned depth = 1;           // I/Os the issuer keeps outstanding
  std::uint64_t file_mib = 64;  // backing file
  std::string dir;              // where the scratch dir goes; "" = $TMPDIR, else /var/tmp
};

constexpr std::uint32_t kBlock = 4096;             // bytes per I/O
constexpr std::uint32_t kSector = 512;             // the target's logical block
constexpr double kReadShare = 0.5;                 // fio --rwmixread=50
constexpr std::int64_t kSlackNs = 15'000'000'000;  // a round's deadline beyond its length

// ---- small helpers ----------------------------------------------------------------

std::string errno_text() { return std::strerror(errno); }

// xorshift64*: the offsets and the read/write choice, uniform, cheap enough
// not to show next to an I/O.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : s_(seed | 1) {}
  std::uint64_t next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1DULL;
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t s_;
};

// Control messages between the bench and its forked IO partition: a tag byte
// and an int64, over an AF_UNIX socketpair (send(MSG_NOSIGNAL): a dead peer is
// an error, not a SIGPIPE).
void send_message(int fd, char tag, std::int64_t value) {
  char buf[1 + sizeof value];
  buf[0] = tag;
  std::memcpy(buf + 1, &value, sizeof value);
  if (::send(fd, buf, sizeof buf, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof buf))
    fail(std::string("send '") + tag + "': " + errno_text());
}

std::int64_t receive_message(int fd, char tag, std::int64_t deadline, const char* peer) {
  char buf[1 + sizeof(std::int64_t)];
  std::size_t got = 0;
  while (got < sizeof buf) {
    pollfd p{fd, POLLIN, 0};
    const std::int64_t left_ms = (deadline - now_ns()) / 1'000'000;
    if (left_ms <= 0) fail(std::string("no '") + tag + "' from the " + peer + " before the deadline");
    const int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000)));
    if (r < 0 && errno != EINTR) fail("poll: " + errno_text());
    if (r <= 0) continue;
    const ssize_t n = ::read(fd, buf + got, sizeof buf - got);
    if (n == 0) fail(std::string("the ") + peer + " exited before sending '" + tag + "' (it failed; see above)");
    if (n < 0 && errno != EINTR) fail(std::string("read from the ") + peer + ": " + errno_text());
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  if (buf[0] != tag) fail(std::string("the ") + peer + " sent '" + buf[0] + "', expected '" + tag + "'");
  std::int64_t value;
  std::memcpy(&value, buf + 1, sizeof value);
  return value;
}

// A forked child running `body(control_fd)`; it dies with the bench, exits
// with body's return value, and is killed by fail() or by an exception
// unwinding past its owner.
class Child {
 public:
  template <typename Body>
  Child(const char* name, Body body) : name_(name) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair: " + errno_text());
    std::fflush(nullptr);
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) fail("fork: " + errno_text());
    if (pid_ == 0) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) _exit(4);
      ::close(sv[0]);
      on_fail = nullptr;  // the parent's hooks are not ours
      int code = 3;
      try {
        pin_self(1);  // we inherited the parent's (role 0) CPU
        code = body(sv[1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "io_bench: %s: %s\n", name, e.what());
      }
      _exit(code);
    }
    ::close(sv[1]);
    control_ = sv[0];
    previous_on_fail_ = on_fail;
    on_fail = [pid = pid_, prev = previous_on_fail_] {
      ::kill(pid, SIGKILL);
      if (prev) prev();
    };
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      on_fail = previous_on_fail_;
    }
    if (control_ >= 0) ::close(control_);
  }

  int control() const { return control_; }
  std::int64_t expect(char tag, std::int64_t deadline) { return receive_message(control_, tag, deadline, name_); }

  // Tells the child to stop (our sending side shut down), takes its final
  // report, and checks it exited with 0.
  std::int64_t finish(char tag, std::int64_t deadline) {
    ::shutdown(control_, SHUT_WR);
    const std::int64_t value = expect(tag, deadline);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
      if (errno != EINTR) fail("waitpid: " + errno_text());
    }
    pid_ = -1;
    on_fail = previous_on_fail_;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      fail(std::string("the ") + name_ + " exited abnormally (status " + std::to_string(status) + ")");
    return value;
  }

 private:
  const char* name_;
  pid_t pid_ = -1;
  int control_ = -1;
  std::function<void()> previous_on_fail_;
};

// ---- the scratch disk ---------------------------------------------------------------

// A private directory holding the backing file both sides use, filled with
// data (not a sparse or fallocated file: reading a hole or an unwritten extent
// costs no device I/O and would flatter whichever side read more of them).
// Removed on return, fail() and SIGINT/SIGTERM (ExitCleanup).
class ScratchDisk {
 public:
  ScratchDisk(const std::string& parent, std::uint64_t bytes) : bytes_(bytes) {
    // /var/tmp rather than /tmp: /tmp is often tmpfs, and a disk bench on
    // memory measures something else (docs/benchmarks.md).
    const char* tmpdir = std::getenv("TMPDIR");
    const std::filesystem::path base = !parent.empty()             ? std::filesystem::path(parent)
                                       : tmpdir && *tmpdir != '\0' ? std::filesystem::path(tmpdir)
                                                                   : std::filesystem::path("/var/tmp");
    std::string templ = (base / "visorlab-io-bench-XXXXXX").string();
    if (!::mkdtemp(templ.data())) fail("mkdtemp in " + base.string() + ": " + errno_text());
    dir_ = templ;
    file_ = dir_ + "/disk.img";
    if (file_.find(':') != std::string::npos)
      fail("scratch path " + file_ + " contains ':', which fio reads as a file separator; use --dir");
    cleanup_.emplace(&ScratchDisk::remove, this);
    fill();
  }
  ScratchDisk(const ScratchDisk&) = delete;
  ScratchDisk& operator=(const ScratchDisk&) = delete;

  const std::string& file() const { return file_; }
  std::uint64_t bytes() const { return bytes_; }
  bool in_memory() const {
    struct statfs fs {};
    return ::statfs(dir_.c_str(), &fs) == 0 &&
           (fs.f_type == 0x01021994 /* TMPFS_MAGIC */ || fs.f_type == 0x858458f6 /* RAMFS_MAGIC */);
  }

 private:
  static void remove(void* self) {  // async-signal-safe: two syscalls
    auto* s = static_cast<ScratchDisk*>(self);
    ::unlink(s->file_.c_str());
    ::rmdir(s->dir_.c_str());
  }

  void fill() {
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) fail("create " + file_ + ": " + errno_text());
    std::vector<std::uint64_t> chunk((1u << 20) / sizeof(std::uint64_t));
    Rng rng(0x5eed);
    for (std::uint64_t done = 0; done < bytes_;) {
      for (auto& w : chunk) w = rng.next();
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size() * 8, bytes_ - done));
      const ssize_t k = ::pwrite(fd, chunk.data(), n, static_cast<off_t>(done));
      if (k <= 0) {
        const std::string e = errno_text();
        ::close(fd);
        fail("fill " + file_ + ": " + e);
      }
      done += static_cast<std::uint64_t>(k);
    }
    if (::fsync(fd) != 0) fail("fsync " + file_ + ": " + errno_text());
    ::close(fd);
  }

  std::uint64_t bytes_;
  std::string dir_, file_;
  std::optional<ExitCleanup> cleanup_;  // last: registered once the paths exist
};

// Whether the backing file takes O_DIRECT for our I/O, decided as ScsiTarget
// decides: it opens with O_DIRECT and falls back to buffered I/O if the open
// or the first aligned transfer says EINVAL (tmpfs). fio then gets the same
// --direct, and every candidate round checks its target really stayed direct.
bool direct_io_works(const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT);
  if (fd < 0) return false;
  void* buf = std::aligned_alloc(4096, kBlock);
  const bool ok = buf && ::pread(fd, buf, kBlock, 0) == kBlock && ::pwrite(fd, buf, kBlock, 0) == kBlock;
  std::free(buf);
  ::close(fd);
  return ok;
}

// ---- vhba_iops_4k_randrw --------------------------------------------------------------

// What both sides of the vhba bench share, prepared by the first round that
// needs it (so a run with --only for another bench makes no 64 MiB file).
struct VhbaContext {
  IoOptions opt;
  std::string fio;  // path of the fio binary
  std::unique_ptr<ScratchDisk> disk;
  bool direct = false;
  int round = 0;

  void prepare() {
    if (disk) return;
    const auto path = find_program("fio");
    if (!path)
      fail(
          "fio not found in PATH: it is the baseline of vhba_iops_4k_randrw and must run in the same bench run "
          "(Debian: apt-get install fio)");
    fio = *path;
    disk = std::make_unique<ScratchDisk>(opt.dir, opt.file_mib << 20);
    direct = direct_io_works(disk->file());
    std::fprintf(stderr, "io_bench: backing file %s, %llu MiB, %s I/O, queue depth %u, %.3g s per round\n",
                 disk->file().c_str(), static_cast<unsigned long long>(opt.file_mib),
                 direct ? "O_DIRECT" : "buffered (no O_DIRECT on this filesystem)", opt.depth, opt.seconds);
    if (disk->in_memory())
      std::fprintf(stderr,
                   "io_bench: note: the backing file is in memory (tmpfs): vhba_iops_4k_randrw then measures the "
                   "channel's cross-core cost against a memcpy, not a disk; use --dir on a disk filesystem\n");
  }
};

// How the guest and the IO partition wait when a poll found nothing: spin
// (PAUSE) for up to `spin`, then sleep `nap` at a time (timer slack 1 ns) until
// the poll finds work again. Pure spinning is the fastest on a quiet machine,
// but a process that never sleeps loses its CPU to any other runnable task
// for whole time slices, and an I/O needs both processes on CPU: with builds
// running on the 2-core VM it fell to 50-600 IOPS against fio's ~12,000 (fio
// sleeps in the kernel, and a sleeper gets the CPU back as soon as it wakes).
// Spinning 200 µs (longer than a disk I/O here) before napping kept it at
// 1,500-4,000 there, and within a few % of pure spinning when the bench ran
// SCHED_FIFO (as if the machine were quiet): 0.91 against 0.92 of fio.
class IdleWait {
 public:
  IdleWait(std::chrono::nanoseconds spin, std::chrono::nanoseconds nap) : spin_ns_(spin.count()), nap_ns_(nap.count()) {
    ::prctl(PR_SET_TIMERSLACK, 1UL);  // a 10 µs nap, not the default 50 µs of slack on top
  }
  void busy() { idle_since_ = 0; }
  void idle(std::int64_t now) {
    if (idle_since_ == 0) idle_since_ = now;
    if (now - idle_since_ < spin_ns_) {
      cpu_relax();
      return;
    }
    const timespec nap{0, static_cast<long>(nap_ns_)};
    ::nanosleep(&nap, nullptr);
  }

 private:
  std::int64_t spin_ns_, nap_ns_;
  std::int64_t idle_since_ = 0;
};

// The guest waits for disk I/Os (~50-60 µs on the VM's virtio disk); the IO
// partition for the guest's next command, a few µs after its response.
constexpr auto kGuestSpin = std::chrono::microseconds(200), kIopartSpin = std::chrono::microseconds(20);
constexpr auto kNap = std::chrono::microseconds(10);

// The IO partition: formats the vhba channel in shared memory (as the test
// topology's IO partition does), serves it until told to stop, then reports
// whether its target still does O_DIRECT.
int io_partition_main(int control, const std::string& channel_name, const VhbaContext& c) {
  visorlab::service::ScsiTarget target(c.disk->file(), c.disk->bytes());
  auto end = ch::create_shared_end(channel_name, ch::type_of(ch::ChannelKind::vhba).spec());
  visorlab::service::VhbaBackend backend(end->channel(), target);
  send_message(control, 'R', 0);
  const std::int64_t deadline = now_ns() + static_cast<std::int64_t>(c.opt.seconds * 1e9) + 2 * kSlackNs;
  IdleWait wait(kIopartSpin, kNap);
  for (std::uint64_t idle = 0;;) {
    if (backend.poll() > 0) {
      idle = 0;
      wait.busy();
      continue;
    }
    wait.idle(now_ns());
    if ((++idle & 1023) == 0) {
      pollfd p{control, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) break;  // the guest shut its side down: done
      if (now_ns() > deadline) {
        std::fprintf(stderr, "io_bench: IO partition: round deadline exceeded\n");
        return 5;
      }
    }
  }
  send_message(control, 'D', target.direct_io() ? 1 : 0);
  return 0;  // ~end removes the shared memory name, ~target closes the file
}

ScsiRequest rw_request(Rng& rng, std::uint64_t blocks, const std::vector<std::uint8_t>& pattern) {
  const bool read = rng.unit() < kReadShare;
  const std::uint64_t lba = (rng.next() % blocks) * (kBlock / kSector);
  constexpr std::uint16_t n = kBlock / kSector;
  ScsiRequest r;
  r.cdb = {static_cast<std::uint8_t>(read ? 0x28 : 0x2A),  // READ(10) / WRITE(10)
           0,
           static_cast<std::uint8_t>(lba >> 24),
           static_cast<std::uint8_t>(lba >> 16),
           static_cast<std::uint8_t>(lba >> 8),
           static_cast<std::uint8_t>(lba),
           0,
           static_cast<std::uint8_t>(n >> 8),
           static_cast<std::uint8_t>(n),
           0};
  if (read) {
    r.dir = io::DataDir::from_device;
    r.data_in = kBlock;
  } else {
    r.dir = io::DataDir::to_device;
    r.data = pattern;
  }
  return r;
}

// The round's shared memory name, removed however the round ends (the IO
// partition's ~ChannelEnd removes it too, the bench once both ends have it
// mapped; a second removal is harmless).
class ShmName {
 public:
  explicit ShmName(const std::string& channel_name) : path_("/" + ch::shm_name(channel_name)) {
    cleanup_.emplace(&ShmName::remove, this);
  }
  static void remove(void* self) { ::shm_unlink(static_cast<ShmName*>(self)->path_.c_str()); }
  void remove_now() { remove(this); }

 private:
  std::string path_;
  std::optional<ExitCleanup> cleanup_;
};

// One candidate round: IOPS of `depth` outstanding 4 KiB random reads/writes
// (50/50) issued by visorhba for opt.seconds, all completed and checked.
double vhba_round(VhbaContext& c) {
  c.prepare();
  const std::string channel_name = "iobench" + std::to_string(::getpid()) + "r" + std::to_string(c.round++);
  const std::int64_t setup_deadline = now_ns() + kSlackNs;
  ShmName shm(channel_name);
  Child iopart("IO partition", [&](int control) { return io_partition_main(control, channel_name, c); });
  iopart.expect('R', setup_deadline);

  // The guest: visorhba bound to the channel by the device model, exactly as
  // the chipset's DEVICE_CREATE on bus 2 (the IO partition's) binds it.
  const auto spec = ch::type_of(ch::ChannelKind::vhba).spec();
  VisorHba hba;  // drivers outlive the bus that calls them
  visorlab::bus::VirtualBus bus(
      [&](const cvm::CreateDevice&, const ch::Expect& e) { return ch::attach_shared_end(channel_name, e); });
  bus.register_driver(hba);
  cvm::CreateBus create_bus{};
  create_bus.bus_no = 2;
  create_bus.dev_count = 1;
  cvm::CreateDevice create_device{};
  create_device.bus_no = 2;
  create_device.dev_no = 0;
  create_device.data_type_guid = ch::guids::vhba;
  create_device.channel_bytes = ch::channel_size(spec);
  if (bus.create_bus(create_bus) != 0 || bus.create_device(create_device) != 0) fail("vbus2:dev0: create refused");
  visorlab::bus::Device* device = bus.find(2, 0);
  if (!device || device->driver_name() != "visorhba")
    fail("vbus2:dev0: visorhba not bound: " + bus.last_unbound_reason());
  shm.remove_now();  // both ends have it mapped; a crash leaves nothing

  Rng rng(0x10b0 + static_cast<std::uint64_t>(c.round));
  const std::uint64_t blocks = c.disk->bytes() / kBlock;
  const std::vector<std::uint8_t> pattern(kBlock, 0xA5);
  std::uint64_t completed = 0;
  unsigned outstanding = 0;
  std::string error;
  const auto on_done = [&](const ScsiResult& res) {
    --outstanding;
    if (res.linuxstat == 0 && res.scsistat == 0 && (res.data.empty() || res.data.size() == kBlock)) {
      ++completed;
    } else if (error.empty()) {
      error = "an I/O failed: linuxstat " + std::to_string(res.linuxstat) + ", scsistat " +
              std::to_string(res.scsistat) + ", sense key " + std::to_string(res.sense[2] & 0x0F);
    }
  };

  const std::int64_t start = now_ns();
  const std::int64_t stop_issuing = start + static_cast<std::int64_t>(c.opt.seconds * 1e9);
  IdleWait wait(kGuestSpin, kNap);
  bool issuing = true;
  std::int64_t end = start;
  for (;;) {
    while (issuing && outstanding < c.opt.depth) {
      ScsiRequest r = rw_request(rng, blocks, pattern);
      r.done = on_done;
      if (const int rc = hba.submit(*device, std::move(r)); rc != 0) fail("visorhba submit: " + std::to_string(rc));
      ++outstanding;
    }
    const std::uint64_t before = completed;
    const unsigned in_flight = outstanding;
    bus.poll();  // the driver's poll (channel_interrupt): completions, then issue
    if (!error.empty()) fail("vhba_iops_4k_randrw: " + error);
    end = now_ns();
    if (end >= stop_issuing) issuing = false;
    if (!issuing && outstanding == 0) break;
    if (end > stop_issuing + kSlackNs) fail("vhba guest: round deadline exceeded (IO partition stuck or dead?)");
    if (completed == before && outstanding == in_flight)
      wait.idle(end);
    else
      wait.busy();
  }
  const bool target_direct = iopart.finish('D', end + kSlackNs) != 0;
  if (target_direct != c.direct)
    fail(std::string("the SCSI target ran ") + (target_direct ? "with" : "without") +
         " O_DIRECT but fio was given --direct=" + (c.direct ? "1" : "0"));
  if (completed == 0) fail("vhba_iops_4k_randrw: no I/O completed");
  return static_cast<double>(completed) * 1e9 / static_cast<double>(end - start);
}

// One baseline round: fio, psync engine (pread/pwrite, one I/O in flight per
// job), on the same file with the same I/O. --depth N > 1 becomes numjobs=N
// (N synchronous issuers, N I/Os in flight), the only way psync keeps N
// outstanding; --iodepth is meaningless for psync and stays 1.
double fio_round(VhbaContext& c) {
  c.prepare();
  std::vector<std::string> argv = {
      c.fio,
      "--name=vhba_iops_4k_randrw",
      "--filename=" + c.disk->file(),
      "--size=" + std::to_string(c.disk->bytes()),
      "--bs=" + std::to_string(kBlock),
      "--rw=randrw",
      "--rwmixread=" + std::to_string(static_cast<int>(kReadShare * 100)),
      "--ioengine=psync",
      "--iodepth=1",
      "--numjobs=" + std::to_string(c.opt.depth),
      "--group_reporting",
      std::string("--direct=") + (c.direct ? "1" : "0"),
      "--time_based",
      "--runtime=" + std::to_string(static_cast<long long>(c.opt.seconds * 1000)) + "ms",
      "--norandommap",  // uniform offsets with replacement, as the candidate's
      "--randrepeat=0",
      "--invalidate=0",  // the candidate drops no cache either (moot with O_DIRECT)
      "--allow_file_create=0",
      "--output-format=json",
  };
  // The process doing the I/O syscalls sits where the candidate's IO
  // partition does (role 1); fio's own main process only waits.
  const auto& cpus = allowed_cpus();
  if (pinning_enabled && cpus.size() >= 2) argv.push_back("--cpus_allowed=" + std::to_string(cpus[1]));

  const auto timeout = std::chrono::milliseconds(static_cast<long long>(c.opt.seconds * 1000) + kSlackNs / 1'000'000);
  const CommandResult r = run_command(argv, timeout);
  if (r.timed_out) fail("fio did not finish in time: " + command_line(argv));
  if (r.exit_code != 0)
    fail("fio failed (exit " + std::to_string(r.exit_code) + "): " + command_line(argv) + "\n" + r.err + r.out);
  double iops = 0;
  try {
    const auto at = r.out.find('{');
    if (at == std::string::npos) throw std::runtime_error("no JSON object in its output");
    const auto j = nlohmann::json::parse(r.out.substr(at));
    const auto& job = j.at("jobs").at(0);
    if (job.at("error").get<int>() != 0) throw std::runtime_error("job error " + job.at("error").dump());
    const auto ios =
        job.at("read").at("total_ios").get<std::uint64_t>() + job.at("write").at("total_ios").get<std::uint64_t>();
    if (ios == 0) throw std::runtime_error("no I/O completed");
    iops = job.at("read").at("iops").get<double>() + job.at("write").at("iops").get<double>();
  } catch (const std::exception& e) {
    fail(std::string("fio output: ") + e.what() + "\n" + r.out.substr(0, 2000) + r.err);
  }
  return iops;
}

Bench vhba_bench(const IoOptions& opt) {
  auto c = std::make_shared<VhbaContext>();
  c->opt = opt;
  std::string name = "vhba_iops_4k_randrw";
  if (opt.depth != 1) name += "_qd" + std::to_string(opt.depth);
  return {{name, "IOPS", "fio_psync", true, 0.7}, [c] { return fio_round(*c); }, [c] { return vhba_round(*c); }};
}

// ---- vnic_frames_1500 -------------------------------------------------------------

constexpr std::size_t kFrameBytes = 1500;  // whole Ethernet frame (header included), and the datagram's size
constexpr std::size_t kSeqAt = 14;         // the sequence number: first 8 bytes after the Ethernet header
constexpr std::uint16_t kEtherType = 0x88B5;  // IEEE local experimental
// The vnic stream is a handful of µs per frame on both sides: spin a little
// longer than that before napping.
constexpr auto kVnicSpin = std::chrono::microseconds(50);
// Frames A may have sent that B has not received yet. A switch port holds 256
// frames for a guest with no buffer posted (VnicBackend) and drops beyond
// that, as a real switch would; without this window A outran B and the port
// dropped. 128 < 256 even with every buffer of B still to re-post.
constexpr std::uint64_t kVnicWindow = 128;

struct VnicContext {
  IoOptions opt;
  int round = 0;
};

// The IO partition of the vnic bench: formats both vnic channels (configured
// with the guests' MACs before the guests probe, as the topology's creator
// does), one backend each, both on one switch; serves them until told to
// stop, then reports how many frames the switch dropped.
int vnic_partition_main(int control, const std::string& name_a, const std::string& name_b, std::int64_t seconds_ns) {
  namespace svc = visorlab::service;
  const auto spec = ch::type_of(ch::ChannelKind::vnic).spec();
  auto end_a = ch::create_shared_end(name_a, spec);
  auto end_b = ch::create_shared_end(name_b, spec);
  if (ch::io::write_vnic_config(end_a->channel(), ch::io::mac_for("bench-guest-a.vnic0")) != 0 ||
      ch::io::write_vnic_config(end_b->channel(), ch::io::mac_for("bench-guest-b.vnic0")) != 0)
    throw std::runtime_error("write_vnic_config failed");
  svc::VnicBackend a(end_a->channel()), b(end_b->channel());
  svc::SoftwareSwitch sw("sw0");
  sw.attach(a);
  sw.attach(b);
  send_message(control, 'R', 0);
  const std::int64_t deadline = now_ns() + seconds_ns + 2 * kSlackNs;
  IdleWait wait(kVnicSpin, kNap);
  for (std::uint64_t idle = 0;;) {
    if (a.poll() + b.poll() > 0) {
      idle = 0;
      wait.busy();
      continue;
    }
    wait.idle(now_ns());
    if ((++idle & 1023) == 0) {
      pollfd p{control, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) break;  // the guests are done
      if (now_ns() > deadline) {
        std::fprintf(stderr, "io_bench: IO partition (vnic): round deadline exceeded\n");
        return 5;
      }
    }
  }
  const auto& c = sw.counts();
  if (c.dropped() != 0 || a.counts().bad_xmits != 0)
    std::fprintf(stderr,
                 "io_bench: IO partition (vnic): switch dropped %llu (no_buffer %llu, unknown %llu, too_big %llu), "
                 "bad xmits %llu\n",
                 static_cast<unsigned long long>(c.dropped()), static_cast<unsigned long long>(c.no_buffer),
                 static_cast<unsigned long long>(c.unknown), static_cast<unsigned long long>(c.too_big),
                 static_cast<unsigned long long>(a.counts().bad_xmits));
  send_message(control, 'D', static_cast<std::int64_t>(c.dropped() + a.counts().bad_xmits));
  return 0;
}

// One guest: its device model with bus 2 (the IO partition's) and vnic
// vbus2:dev0 bound to visornic, as the chipset's DEVICE_CREATE binds it.
struct NicGuest {
  NicGuest(const std::string& channel_name, const char* who)
      : bus([channel_name](const cvm::CreateDevice&, const ch::Expect& e) {
          return ch::attach_shared_end(channel_name, e);
        }) {
    bus.register_driver(nic);
    cvm::CreateBus create_bus{};
    create_bus.bus_no = 2;
    create_bus.dev_count = 1;
    cvm::CreateDevice create_device{};
    create_device.bus_no = 2;
    create_device.dev_no = 0;
    create_device.data_type_guid = ch::guids::vnic;
    create_device.channel_bytes = ch::channel_size(ch::type_of(ch::ChannelKind::vnic).spec());
    if (bus.create_bus(create_bus) != 0 || bus.create_device(create_device) != 0)
      fail(std::string(who) + ": vbus2:dev0: create refused");
    device = bus.find(2, 0);
    if (!device || device->driver_name() != "visornic")
      fail(std::string(who) + ": vbus2:dev0: visornic not bound: " + bus.last_unbound_reason());
  }
  VisorNic nic;  // drivers outlive the bus that calls them
  visorlab::bus::VirtualBus bus;
  visorlab::bus::Device* device = nullptr;
};

// One candidate round: guest A streams 1500-byte frames to guest B through
// the switch for opt.seconds, then drains; frames/s = frames B received, in
// order, / time from A's first transmit to B's last receive.
double vnic_round(VnicContext& c) {
  const std::string base = "iobench" + std::to_string(::getpid()) + "n" + std::to_string(c.round++);
  const std::string name_a = base + "a", name_b = base + "b";
  const std::int64_t seconds_ns = static_cast<std::int64_t>(c.opt.seconds * 1e9);
  const std::int64_t setup_deadline = now_ns() + kSlackNs;
  ShmName shm_a(name_a), shm_b(name_b);
  Child iopart("IO partition", [&](int control) { return vnic_partition_main(control, name_a, name_b, seconds_ns); });
  iopart.expect('R', setup_deadline);

  NicGuest a(name_a, "guest A"), b(name_b, "guest B");
  shm_a.remove_now();  // both ends have them mapped; a crash leaves nothing
  shm_b.remove_now();

  // B's receive path: every frame must be the next sequence number, whole.
  std::uint64_t received = 0;
  std::int64_t last_receive = 0;
  std::string error;
  b.nic.on_receive([&](visorlab::bus::Device&, std::span<const std::byte> frame) {
    std::uint64_t seq = ~0ull;
    if (frame.size() >= kSeqAt + sizeof seq) std::memcpy(&seq, frame.data() + kSeqAt, sizeof seq);
    if ((frame.size() != kFrameBytes || seq != received) && error.empty())
      error = "guest B got frame " + std::to_string(seq) + " (" + std::to_string(frame.size()) +
              " bytes), expected frame " + std::to_string(received) + " (" + std::to_string(kFrameBytes) +
              " bytes): lost, reordered or cut";
    ++received;
    last_receive = now_ns();
  });

  // Both links up (receive buffers posted, enable acknowledged) before the clock starts.
  for (;;) {
    a.bus.poll();
    b.bus.poll();
    if (VisorNic::counts(*a.device).link_up && VisorNic::counts(*b.device).link_up) break;
    if (now_ns() > setup_deadline) fail("vnic: links not up before the deadline (IO partition stuck or dead?)");
    cpu_relax();
  }

  std::vector<std::byte> frame(kFrameBytes, std::byte{0x5A});
  const auto mac_a = VisorNic::mac(*a.device), mac_b = VisorNic::mac(*b.device);
  std::memcpy(frame.data(), mac_b.data(), 6);
  std::memcpy(frame.data() + 6, mac_a.data(), 6);
  frame[12] = static_cast<std::byte>(kEtherType >> 8);
  frame[13] = static_cast<std::byte>(kEtherType & 0xFF);

  std::uint64_t sent = 0;
  const std::int64_t start = now_ns();
  const std::int64_t stop_sending = start + seconds_ns;
  IdleWait wait(kVnicSpin, kNap);
  bool sending = true;
  for (;;) {
    const std::uint64_t sent_before = sent, received_before = received;
    // At most kVnicWindow frames B has not seen: what is in flight then fits
    // B's port (posted buffers plus the switch port's hold queue), so the
    // switch never has to drop; a gap in B's sequence is a real loss.
    while (sending && sent - received < kVnicWindow) {
      std::memcpy(frame.data() + kSeqAt, &sent, sizeof sent);
      const int rc = a.nic.transmit(*a.device, frame);
      if (rc == -EBUSY) break;  // throttled: XMIT_DONEs come with the next poll
      if (rc != 0) fail("vnic: guest A transmit: " + std::to_string(rc));
      ++sent;
    }
    a.bus.poll();  // XMIT_DONEs: the throttle opens again
    b.bus.poll();  // NET_RCVs: the sink, then the buffers are posted again
    if (!error.empty()) fail("vnic_frames_1500: " + error);
    const std::int64_t now = now_ns();
    if (now >= stop_sending) sending = false;
    if (!sending && received == sent) break;
    if (now > stop_sending + kSlackNs)
      fail("vnic_frames_1500: guest B received " + std::to_string(received) + " of " + std::to_string(sent) +
           " frames by the deadline (lost, or the IO partition is stuck or dead)");
    if (sent == sent_before && received == received_before)
      wait.idle(now);
    else
      wait.busy();
  }
  const auto ca = VisorNic::counts(*a.device), cb = VisorNic::counts(*b.device);
  if (ca.xmit_errors != 0 || cb.dropped != 0 || cb.bad != 0 || ca.bad != 0)
    fail("vnic_frames_1500: A xmit errors " + std::to_string(ca.xmit_errors) + ", bad responses " +
         std::to_string(ca.bad) + "; B dropped " + std::to_string(cb.dropped) + ", bad responses " +
         std::to_string(cb.bad));
  if (const std::int64_t dropped = iopart.finish('D', now_ns() + kSlackNs); dropped != 0)
    fail("vnic_frames_1500: the IO partition dropped or refused " + std::to_string(dropped) + " frames");
  if (received == 0) fail("vnic_frames_1500: no frame received");
  return static_cast<double>(received) * 1e9 / static_cast<double>(last_receive - start);
}

// One baseline round: this process sends 1500-byte datagrams on an AF_UNIX
// SOCK_SEQPACKET socket for opt.seconds (blocking send), a forked child
// pinned to the second CPU receives them (blocking recv) and checks the same
// sequence number; datagrams/s = received / time from the first send to the
// child's last receive (CLOCK_MONOTONIC, comparable across the processes).
double seqpacket_round(VnicContext& c) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) fail("socketpair: " + errno_text());
  Child receiver("seqpacket receiver", [&](int control) {
    ::close(sv[0]);
    send_message(control, 'R', 0);
    std::vector<char> buf(kFrameBytes + 1);
    std::int64_t count = 0, last = 0;
    for (;;) {
      const ssize_t n = ::recv(sv[1], buf.data(), buf.size(), 0);
      if (n == 0) break;  // the sender closed its end: done
      if (n < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "io_bench: seqpacket receiver: recv: %s\n", errno_text().c_str());
        return 5;
      }
      std::uint64_t seq = ~0ull;
      std::memcpy(&seq, buf.data() + kSeqAt, sizeof seq);
      if (static_cast<std::size_t>(n) != kFrameBytes || seq != static_cast<std::uint64_t>(count)) {
        std::fprintf(stderr, "io_bench: seqpacket receiver: got datagram %llu (%zd bytes), expected %lld\n",
                     static_cast<unsigned long long>(seq), n, static_cast<long long>(count));
        return 6;
      }
      ++count;
      last = now_ns();
    }
    send_message(control, 'N', count);
    send_message(control, 'T', last);
    return 0;
  });
  ::close(sv[1]);
  const int fd = sv[0];
  receiver.expect('R', now_ns() + kSlackNs);

  std::vector<char> datagram(kFrameBytes, 0x5A);
  std::uint64_t sent = 0;
  const std::int64_t start = now_ns();
  const std::int64_t stop_sending = start + static_cast<std::int64_t>(c.opt.seconds * 1e9);
  while (now_ns() < stop_sending) {
    std::memcpy(datagram.data() + kSeqAt, &sent, sizeof sent);
    const ssize_t n = ::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(kFrameBytes)) {
      const std::string e = n < 0 ? errno_text() : "short send";
      ::close(fd);
      fail("unix_seqpacket_1500: send: " + e);
    }
    ++sent;
  }
  ::close(fd);
  const std::int64_t deadline = now_ns() + kSlackNs;
  const std::int64_t received = receiver.expect('N', deadline);
  const std::int64_t last = receiver.finish('T', deadline);
  if (received != static_cast<std::int64_t>(sent))
    fail("unix_seqpacket_1500: receiver got " + std::to_string(received) + " of " + std::to_string(sent));
  if (received == 0) fail("unix_seqpacket_1500: nothing received");
  return static_cast<double>(received) * 1e9 / static_cast<double>(last - start);
}

Bench vnic_bench(const IoOptions& opt) {
  auto c = std::make_shared<VnicContext>();
  c->opt = opt;
  return {{"vnic_frames_1500", "frames/s", "unix_seqpacket_1500", true, 0.0},
          [c] { return seqpacket_round(*c); },
          [c] { return vnic_round(*c); }};
}

constexpr const char* kUsage =
    "usage: io_bench [--json] [--rounds N] [--seconds S] [--depth N] [--size MiB] [--dir DIR] [--only NAME]\n"
    "                [--verbose] [--no-pin]\n"
    "  --json        one JSON object per line (DESIGN.md contract)\n"
    "  --rounds N    interleaved baseline/candidate rounds, median reported (default 5)\n"
    "  --seconds S   timed length of each round, each side, every bench (default 2)\n"
    "  --depth N     I/Os kept outstanding (default 1; fio gets numjobs=N psync jobs)\n"
    "  --size MiB    backing file size (default 64)\n"
    "  --dir DIR     where the scratch file goes (default $TMPDIR, else /var/tmp)\n"
    "  --only NAME   run only benchmarks whose name contains NAME\n"
    "Benchmarks: vhba_iops_4k_randrw (vs fio), vnic_frames_1500 (vs an AF_UNIX SOCK_SEQPACKET stream).\n"
    "Needs fio (Debian package fio) in PATH: it is vhba's baseline, measured in the same run.\n";

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  IoOptions io_opt;
  try {
    opt = parse_options(argc, argv, kUsage,
                        {{"--seconds", true, [&](const char* v) { io_opt.seconds = parse_seconds("--seconds", v); }},
                         {"--depth", true,
                          [&](const char* v) {
                            const auto d = parse_count("--depth", v);
                            if (d > io::kMaxPendingScsi)
                              throw std::invalid_argument("--depth at most " + std::to_string(io::kMaxPendingScsi));
                            io_opt.depth = static_cast<unsigned>(d);
                          }},
                         {"--size", true,
                          [&](const char* v) {
                            io_opt.file_mib = parse_count("--size", v);
                            if (io_opt.file_mib > (1u << 20)) throw std::invalid_argument("--size at most 1048576 MiB");
                          }},
                         {"--dir", true, [&](const char* v) { io_opt.dir = v; }}});
    if (opt.signals != 0) throw std::invalid_argument("--signals does not apply to io_bench (see --seconds)");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "io_bench: %s\n", e.what());
    return 64;
  }
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::set_default_logger(spdlog::stderr_logger_mt("io_bench"));  // stdout: the JSON lines only
  pin_self(0);
  const std::vector<Bench> benches = {
      vhba_bench(io_opt),
      vnic_bench(io_opt),
  };
  return run_benches("io_bench", opt, benches);
}
