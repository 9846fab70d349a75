#include "topology/validate.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace visorlab::topology {

namespace {

constexpr Bytes kSectorSize = 512;  // disks and I/O are addressed in 512-byte blocks
constexpr std::uint32_t kMaxQueueDepth = 128;  // visorhba keeps at most 128 commands pending
constexpr Bytes kMinFrameSize = 64;
constexpr Bytes kMaxFrameSize = 9216;  // a jumbo frame

std::string at_index(const std::string& list, std::size_t i) {
  return list + "[" + std::to_string(i) + "]";
}

std::string in_quotes(const std::string& s) { return "'" + s + "'"; }

std::string bytes_text(Bytes b) { return std::to_string(b) + " bytes"; }

std::string duration_text(Duration d) {
  if (d.count() % 1000'000 == 0) return std::to_string(d.count() / 1000'000) + "s";
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "ms";
  return std::to_string(d.count()) + "us";
}

std::string number_text(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

// Names end up in device names (`g0/vhba0`), metric labels and file names.
bool valid_name(const std::string& name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.'))) return false;
  }
  return true;
}

// Printable UTF-8: the name ends up in JSON reports, metric labels and logs.
// Returns why not, or empty.
std::string utf8_problem(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return "is not valid UTF-8 (byte " + std::to_string(i) + ")";
    std::uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if ((b & 0xC0) != 0x80) return "is not valid UTF-8 (byte " + std::to_string(i + k) + ")";
      cp = cp << 6 | (b & 0x3F);
    }
    static constexpr std::uint32_t kLeast[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kLeast[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return "is not valid UTF-8 (byte " + std::to_string(i) + ")";
    if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0))
      return "holds a control character (byte " + std::to_string(i) + ")";
    i += n;
  }
  return {};
}

// Why the disk file at `path` cannot serve `size` bytes on this machine, or
// empty: an existing path must be a regular file or a block device that big
// (a character device such as /dev/null reads nothing back); a new file needs
// its directory.
std::string disk_path_problem(const std::filesystem::path& path, Bytes size) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return std::string("cannot be examined: ") + std::strerror(errno);
    const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return "is in " + dir.string() + ", which is not a directory";
    return {};
  }
  if (S_ISREG(st.st_mode)) return {};
  if (!S_ISBLK(st.st_mode))
    return S_ISCHR(st.st_mode)   ? "is a character device, not a regular file or block device"
           : S_ISDIR(st.st_mode) ? "is a directory, not a regular file or block device"
                                 : "is not a regular file or block device";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::string("cannot be opened: ") + std::strerror(errno);
  std::uint64_t bytes = 0;
  const int rc = ::ioctl(fd, BLKGETSIZE64, &bytes);
  ::close(fd);
  if (rc != 0) return "is a block device whose size cannot be read";
  if (bytes < size)
    return "is a block device of " + std::to_string(bytes) + " bytes, smaller than the disk's " +
           std::to_string(size) + " bytes";
  return {};
}

class Validator {
 public:
  explicit Validator(const Topology& t) : t_(t) {}

  void run() {
    if (t_.version != 1)
      fail("version", "unsupported version " + std::to_string(t_.version) + "; this visorlab reads version 1");
    if (const std::string why = utf8_problem(t_.name); !why.empty()) fail("name", "the drill's name " + why);
    check_hosts();
    check_host_ref("command.host", t_.command.host);
    check_services();
    check_workload();
    check_guests();
    check_drill();
    check_expect();
  }

 private:
  [[noreturn]] void fail(const std::string& field, const std::string& message) const {
    throw t_.source.error(field, message);
  }

  void check_name(const std::string& field, const std::string& name) const {
    if (!valid_name(name))
      fail(field, in_quotes(name) + " is not a valid name; use letters, digits, '_', '-' and '.', "
                                 "starting with a letter or digit");
  }

  // `names` remembers where each name was first defined.
  void check_unique(std::map<std::string, std::string>& names, const std::string& what,
                    const std::string& field, const std::string& name) const {
    check_name(field, name);
    const auto [it, inserted] = names.emplace(name, field);
    if (!inserted) fail(field, what + " " + in_quotes(name) + " is defined twice (first at " + it->second + ")");
  }

  void check_host_ref(const std::string& field, const std::string& host) const {
    if (!t_.find_host(host)) fail(field, "unknown host " + in_quotes(host));
  }

  void check_disk_size(const std::string& field, Bytes size) const {
    if (size == 0) fail(field, "a disk cannot be empty");
    if (size % kSectorSize != 0)
      fail(field, bytes_text(size) + " is not a multiple of " + std::to_string(kSectorSize) + " bytes");
    if (size > kMaxDiskSize)
      fail(field, bytes_text(size) + " is more than " + bytes_text(kMaxDiskSize) + " (64GiB), the largest disk a drill uses");
    if (size < t_.workload.disk.block_size)
      fail(field, bytes_text(size) + " is smaller than workload.disk.block_size (" +
                      bytes_text(t_.workload.disk.block_size) + ")");
  }

  void check_hosts() {
    if (t_.hosts.empty()) fail("hosts", "at least one host is needed");
    if (t_.hosts.size() > kMaxHosts)
      fail("hosts", std::to_string(t_.hosts.size()) + " hosts; at most " + std::to_string(kMaxHosts) + " are allowed");
    std::map<std::string, std::string> names;
    for (std::size_t i = 0; i < t_.hosts.size(); ++i)
      check_unique(names, "host", at_index("hosts", i) + ".name", t_.hosts[i].name);
  }

  void check_services() {
    std::map<std::string, std::string> names, disks, switches;
    for (std::size_t i = 0; i < t_.services.size(); ++i) {
      const Service& s = t_.services[i];
      const std::string path = at_index("services", i);
      check_unique(names, "service", path + ".name", s.name);
      check_host_ref(path + ".host", s.host);
      if (s.kind == ServiceKind::console && !s.disks.empty())
        fail(path + ".disks", "a console service has no disks (only io services do)");
      if (s.kind == ServiceKind::console && !s.switches.empty())
        fail(path + ".switches", "a console service has no switches (only io services do)");
      // Disk and switch names are unique across the file: disk files in the
      // run directory and switch names in metrics must not collide.
      for (std::size_t j = 0; j < s.disks.size(); ++j) {
        const std::string disk_path = at_index(path + ".disks", j);
        check_unique(disks, "disk", disk_path + ".name", s.disks[j].name);
        check_disk_size(disk_path + ".size", s.disks[j].size_bytes);
        if (s.disks[j].path) check_disk_path(disk_path + ".path", s, *s.disks[j].path, s.disks[j].size_bytes);
      }
      for (std::size_t j = 0; j < s.switches.size(); ++j)
        check_unique(switches, "switch", at_index(path + ".switches", j) + ".name", s.switches[j].name);
    }
  }

  // A path on this machine (the service's host runs a local agent) is
  // examined here; a remote host's agent examines its own when it creates the disk.
  void check_disk_path(const std::string& field, const Service& s, const std::filesystem::path& path, Bytes size) const {
    if (const std::string why = utf8_problem(path.string()); !why.empty()) fail(field, "the path " + why);
    const Host* host = t_.find_host(s.host);
    if (!host || host->address) return;
    if (const std::string why = disk_path_problem(path, size); !why.empty()) fail(field, path.string() + " " + why);
  }

  void check_workload() const {
    const DiskWorkload& d = t_.workload.disk;
    if (d.block_size == 0 || d.block_size % kSectorSize != 0)
      fail("workload.disk.block_size",
           bytes_text(d.block_size) + " is not a positive multiple of " + std::to_string(kSectorSize) + " bytes");
    if (d.block_size > kMaxBlockSize)
      fail("workload.disk.block_size", bytes_text(d.block_size) + " is more than 64KiB, the most one visorhba command carries");
    if (d.queue_depth < 1 || d.queue_depth > kMaxQueueDepth)
      fail("workload.disk.queue_depth",
           std::to_string(d.queue_depth) + " is outside 1.." + std::to_string(kMaxQueueDepth));
    if (!(d.read_ratio >= 0.0 && d.read_ratio <= 1.0))
      fail("workload.disk.read_ratio", number_text(d.read_ratio) + " is outside 0..1");
    const Bytes frame = t_.workload.net.frame_size;
    if (frame < kMinFrameSize || frame > kMaxFrameSize)
      fail("workload.net.frame_size", bytes_text(frame) + " is outside " + std::to_string(kMinFrameSize) +
                                          ".." + std::to_string(kMaxFrameSize) + " bytes");
    check_rate("workload.net.rate", t_.workload.net.rate_per_s, kMaxNetRate, "frames/s per vnic");
    check_rate("workload.input.rate", t_.workload.input.rate_per_s, kMaxInputRate, "reports/s per input device");
  }

  void check_rate(const std::string& field, double rate, double max, const std::string& unit) const {
    if (!(rate >= 0)) fail(field, "a rate cannot be negative");
    if (rate > max)
      fail(field, number_text(rate) + " is more than " + number_text(max) + " " + unit + ", the most the partitions carry");
  }

  void check_guests() {
    if (t_.guests.size() > kMaxGuests)
      fail("guests", std::to_string(t_.guests.size()) + " guests; at most " + std::to_string(kMaxGuests) + " are allowed");
    std::map<std::string, std::string> names;
    std::size_t devices = 0;
    for (const Guest& g : t_.guests) {
      check_unique(names, "guest", g.source + ".name", g.name);
      check_host_ref(g.host_source, g.host);
      if (g.devices.size() > kMaxDevicesPerGuest)
        fail(g.source + ".devices", std::to_string(g.devices.size()) + " devices; a guest has at most " +
                                        std::to_string(kMaxDevicesPerGuest));
      if ((devices += g.devices.size()) > kMaxDevices)
        fail(g.source + ".devices", "more than " + std::to_string(kMaxDevices) + " devices in all guests");
      for (const Device& d : g.devices) {
        check_device(g.name, d);
        existing_.insert(d.name);
      }
    }
  }

  // A device of `guest`, in the guest list or created by a step.
  void check_device(const std::string& guest, const Device& d) {
    const std::string kind(to_string(d.kind));
    const Service* s = t_.find_service(d.service);
    if (!s) fail(d.source + ".service", "unknown service " + in_quotes(d.service));
    if (served_by(d.kind) != s->kind)
      fail(d.source + ".kind", "a " + kind + " cannot be served by " + std::string(to_string(s->kind)) +
                                   " service " + in_quotes(s->name) +
                                   " (io serves vhba and vnic, console serves keyboard and mouse)");
    if (d.kind != DeviceKind::vhba && d.disk_size)
      fail(d.source + ".disk_size", "disk_size applies to a vhba, not a " + kind);
    if (d.kind != DeviceKind::vhba && !d.disks.empty())
      fail(d.source + ".disks", "disks apply to a vhba, not a " + kind);
    if (d.kind != DeviceKind::vnic && !d.switch_name.empty())
      fail(d.source + ".switch", "switch applies to a vnic, not a " + kind);
    if (d.kind != DeviceKind::vnic && d.sriov) fail(d.source + ".sriov", "sriov applies to a vnic, not a " + kind);
    if (d.kind == DeviceKind::vhba) check_vhba(guest, *s, d);
    if (d.kind == DeviceKind::vnic) check_vnic(*s, d);
  }

  void check_vhba(const std::string& guest, const Service& s, const Device& d) {
    if (!d.disk_size && d.disks.empty())
      fail(d.source + ".disk_size", "a vhba needs disk_size (a fresh disk) or disks (named disks of " +
                                        s.name + ")");
    if (d.disk_size && !d.disks.empty())
      fail(d.source + ".disks", "a vhba has disk_size or disks, not both");
    if (d.disk_size) check_disk_size(d.source + ".disk_size", *d.disk_size);
    for (std::size_t j = 0; j < d.disks.size(); ++j) {
      const std::string field = at_index(d.source + ".disks", j);
      const std::string& disk = d.disks[j];
      if (!has_disk(s, disk)) {
        for (const Service& other : t_.services)
          if (has_disk(other, disk))
            fail(field, "disk " + in_quotes(disk) + " belongs to service " + in_quotes(other.name) + ", not " +
                            in_quotes(s.name));
        fail(field, "unknown disk " + in_quotes(disk) + " on service " + in_quotes(s.name));
      }
      const auto [owner, first_use] = disk_owner_.emplace(disk, guest);
      if (!first_use && owner->second != guest)
        fail(field, "guest " + in_quotes(guest) + " cannot use disk " + in_quotes(disk) +
                        ": it already belongs to guest " + in_quotes(owner->second) + " (a disk belongs to one guest)");
      const auto [holder, free] = disk_holder_.emplace(disk, d.name);
      if (!free) fail(field, "disk " + in_quotes(disk) + " is already attached to " + holder->second);
    }
  }

  static bool has_disk(const Service& s, const std::string& disk) {
    for (const Disk& d : s.disks)
      if (d.name == disk) return true;
    return false;
  }

  void check_vnic(const Service& s, const Device& d) const {
    if (d.switch_name.empty()) fail(d.source + ".switch", "a vnic needs a switch of service " + in_quotes(s.name));
    for (const Switch& w : s.switches)
      if (w.name == d.switch_name) return;
    fail(d.source + ".switch", "unknown switch " + in_quotes(d.switch_name) + " on service " + in_quotes(s.name));
  }

  void check_drill() {
    const Drill& drill = t_.drill;
    if (drill.duration.count() <= 0) fail("drill.duration", "the drill needs a duration above zero");
    Duration previous{0};
    for (const Step& s : drill.steps) {
      const std::string path = at_index("drill.steps", s.index);
      const std::string kind(to_string(s.kind));
      const std::string action = path + "." + kind;
      if (s.at > drill.duration)
        fail(path + ".at", "step at " + duration_text(s.at) + " is after the end of the drill (duration " +
                               duration_text(drill.duration) + ")");
      if (s.at < previous) fail(path + ".at", "steps must be in time order; this one is earlier than the one before");
      previous = s.at;

      const bool takes_restart = s.kind == StepKind::crash || s.kind == StepKind::kill_agent;
      const bool takes_for =
          s.kind == StepKind::pause || s.kind == StepKind::partition || s.kind == StepKind::lose_writes;
      if (s.restart_after && !takes_restart)
        fail(path + ".restart_after", "restart_after applies to crash and kill_agent, not " + kind);
      if (s.for_duration && !takes_for)
        fail(path + ".for", "for applies to pause, partition and lose_writes, not " + kind);
      if (s.every && s.kind != StepKind::lose_writes) fail(path + ".every", "every applies to lose_writes, not " + kind);
      if (s.kind == StepKind::partition && !s.for_duration)
        fail(path + ".for", "a partition needs `for`: how long the hosts stay cut off");
      if (s.for_duration && s.for_duration->count() <= 0) fail(path + ".for", "for must be above zero");
      // Every fault is over before the drill ends: the checker judges the recovery.
      const auto past_end = [&](const char* key, Duration d) {
        if (s.at + d > drill.duration)
          fail(path + "." + key, "the fault lasts until " + duration_text(s.at + d) + ", after the end of the drill (duration " +
                                     duration_text(drill.duration) + ")");
      };
      if (s.for_duration) past_end("for", *s.for_duration);
      if (s.restart_after) past_end("restart_after", *s.restart_after);
      check_overlap(s, path);

      switch (s.kind) {
        case StepKind::recover:
        case StepKind::crash:
          if (!t_.find_service(s.target())) fail(action, "unknown service " + in_quotes(s.target()));
          break;
        case StepKind::pause:
          require_device(action, s.target());
          if (paused_.count(s.target())) fail(action, in_quotes(s.target()) + " is already paused");
          // Without `for` the device stays paused until a resume step.
          if (!s.for_duration) paused_.emplace(s.target(), path + ".for");
          break;
        case StepKind::resume:
          require_device(action, s.target());
          if (!paused_.erase(s.target()))
            fail(action, in_quotes(s.target()) + " is not paused (a pause with `for` resumes by itself)");
          break;
        case StepKind::destroy:
          require_device(action, s.target());
          existing_.erase(s.target());
          paused_.erase(s.target());
          std::erase_if(disk_holder_, [&](const auto& entry) { return entry.second == s.target(); });
          break;
        case StepKind::create:
          if (!t_.find_guest(s.target())) fail(action + ".guest", "unknown guest " + in_quotes(s.target()));
          check_device(s.target(), *s.created);
          existing_.insert(s.created->name);
          break;
        case StepKind::partition:
          if (s.targets.size() != 2)
            fail(action, "a partition cuts exactly two hosts apart, like [a, b]; got " +
                             std::to_string(s.targets.size()));
          for (std::size_t k = 0; k < 2; ++k) check_host_ref(at_index(action, k), s.targets[k]);
          if (s.targets[0] == s.targets[1]) fail(at_index(action, 1), "a partition needs two different hosts");
          break;
        case StepKind::kill_agent:
          check_host_ref(action, s.target());
          break;
        case StepKind::lose_writes: {
          const Service* svc = t_.find_service(s.target());
          if (!svc) fail(action, "unknown service " + in_quotes(s.target()));
          if (svc->kind != ServiceKind::io)
            fail(action, in_quotes(s.target()) + " is a " + std::string(to_string(svc->kind)) +
                             " partition; only an io partition writes disks");
          if (!s.every) fail(path + ".every", "lose_writes needs `every`: which writes to lose, like every: 20");
          if (*s.every < 1) fail(path + ".every", "every must be 1 or more");
          if (!s.for_duration) fail(path + ".for", "lose_writes needs `for`: how long writes are lost");
          break;
        }
      }
    }
    if (!paused_.empty())
      fail(paused_.begin()->second, in_quotes(paused_.begin()->first) +
                                        " is paused without `for` and no later step resumes it");
  }

  // Steps run each at its own time, so faults on different targets overlap;
  // on one target they take turns: a step may not start while an earlier one
  // on the same target holds its fault (`for`, `restart_after`), nor at the
  // same instant.
  void check_overlap(const Step& s, const std::string& path) {
    std::string target = s.target();
    if (s.kind == StepKind::partition && s.targets.size() == 2)
      target = std::min(s.targets[0], s.targets[1]) + "," + std::max(s.targets[0], s.targets[1]);
    const Duration hold = s.for_duration.value_or(s.restart_after.value_or(Duration{0}));
    const auto [it, first] = held_.try_emplace(target, Held{s.at, s.at + hold, path, std::string(to_string(s.kind))});
    if (first) return;
    const Held& before = it->second;
    if (s.at < before.until || s.at == before.from)
      fail(path + ".at", "step at " + duration_text(s.at) + " overlaps " + before.path + " (" + before.kind + " " +
                             in_quotes(target) + " from " + duration_text(before.from) + " until " +
                             duration_text(before.until) + "): steps on one target take turns");
    it->second = Held{s.at, s.at + hold, path, std::string(to_string(s.kind))};
  }

  void require_device(const std::string& field, const std::string& name) const {
    if (existing_.count(name)) return;
    const auto slash = name.find('/');
    if (slash == std::string::npos)
      fail(field, in_quotes(name) + " is not a device; devices are named guest/kindN, like g0/vhba0");
    if (!t_.find_guest(name.substr(0, slash))) fail(field, "unknown guest in device " + in_quotes(name));
    fail(field, "unknown device " + in_quotes(name) + " (or destroyed by an earlier step)");
  }

  void check_expect() const {
    const Expect& e = t_.expect;
    // 0 is allowed: a limit no recovery can meet, which a drill then fails.
    if (e.max_recovery && e.max_recovery->count() < 0)
      fail("expect.max_recovery_ms", "max_recovery_ms must not be negative");
    for (const Expectation& x : e.others)
      if (x.limit < 0) fail("expect." + x.what, "a limit cannot be negative");
  }

  const Topology& t_;
  std::set<std::string> existing_;                 // devices alive at the step being checked
  std::map<std::string, std::string> paused_;      // device → field of its open-ended pause
  struct Held {
    Duration from, until;
    std::string path, kind;
  };
  std::map<std::string, Held> held_;  // target → the last step on it
  std::map<std::string, std::string> disk_owner_;   // disk → guest, for the whole drill
  std::map<std::string, std::string> disk_holder_;  // disk → the live device attached to it
};

}  // namespace

void validate(const Topology& topology) { Validator(topology).run(); }

}  // namespace visorlab::topology
