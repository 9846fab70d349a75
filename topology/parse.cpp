#include "topology/parse.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "topology/units.hpp"

namespace visorlab::topology {

namespace {

Position position_of(const YAML::Mark& mark) {
  if (mark.is_null()) return {};
  return {mark.line + 1, mark.column + 1};
}

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

// One value in the document with its field path and position; records the
// position in the SourceMap as it is reached, so validation can point at it
// later. An absent value carries its parent's position, which is where a
// missing key is reported.
class Field {
 public:
  Field(YAML::Node node, std::string path, Position where, SourceMap& source)
      : node_(std::move(node)), path_(std::move(path)), where_(where), source_(&source) {
    source_->positions.emplace(path_, where_);
  }

  const std::string& path() const { return path_; }
  Position where() const { return where_; }
  bool has_key() const { return node_.IsDefined(); }
  // Defined and not null: `devices:` with nothing after it counts as absent.
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  bool is_sequence() const { return node_.IsSequence(); }

  [[noreturn]] void fail(const std::string& message) const { fail_at(path_, where_, message); }

  [[noreturn]] void fail_at(const std::string& path, Position where, const std::string& message) const {
    throw Error(source_->file, where.line, where.column, path.empty() ? "(document)" : path, message);
  }

  void require_map() const {
    if (!node_.IsMap()) fail("expected a mapping (key: value pairs)");
  }

  void require_sequence() const {
    if (!node_.IsSequence()) fail("expected a list");
  }

  // Every key must be one of `allowed`, once: a misspelt key is an error at
  // the key, not a silently ignored setting.
  void only_keys(const std::vector<std::string_view>& allowed) const {
    require_map();
    std::map<std::string, bool> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const Position at = position_of(it->first.Mark());
      if (!it->first.IsScalar()) fail_at(path_, at, "keys must be plain names");
      const std::string key = it->first.Scalar();
      const std::string key_path = child_path(key);
      bool known = false;
      for (auto a : allowed) known = known || a == key;
      if (!known) fail_at(key_path, at, "unknown key '" + key + "'; expected " + join(allowed));
      if (seen[key]) fail_at(key_path, at, "key '" + key + "' appears twice");
      seen[key] = true;
    }
  }

  // The value under `key` (possibly absent) of this mapping.
  Field key(std::string_view key) const {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (!it->first.IsScalar() || it->first.Scalar() != key) continue;
      // A null value has no useful mark of its own: point at its key.
      const YAML::Node value = it->second;
      const Position at =
          value.IsNull() ? position_of(it->first.Mark()) : position_of(value.Mark());
      return Field(value, child_path(key), at, *source_);
    }
    return Field(YAML::Node(YAML::NodeType::Undefined), child_path(key), where_, *source_, absent{});
  }

  Field required(std::string_view name) const {
    Field f = key(name);
    if (!f.has_key()) fail_at(f.path(), where_, "missing required key '" + std::string(name) + "'");
    return f;
  }

  std::size_t length() const {
    require_sequence();
    const std::size_t n = node_.size();
    if (n > kMaxListItems)
      fail("a list of " + std::to_string(n) + " items; at most " + std::to_string(kMaxListItems) + " are allowed");
    return n;
  }

  Field item(std::size_t i) const {
    const YAML::Node value = node_[i];
    const Position at = value.IsNull() ? where_ : position_of(value.Mark());
    return Field(value, path_ + "[" + std::to_string(i) + "]", at, *source_);
  }

  std::string text() const {
    if (!present()) fail("missing value");
    if (!node_.IsScalar()) fail("expected a single value, not a list or mapping");
    return node_.Scalar();
  }

  // A non-empty name.
  std::string name() const {
    std::string s = text();
    if (s.empty()) fail("empty name");
    return s;
  }

  std::uint64_t unsigned_integer(std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const {
    const std::string s = text();
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range || (ec == std::errc{} && v > max))
      fail("'" + s + "' is too large (at most " + std::to_string(max) + ")");
    if (ec != std::errc{} || end != s.data() + s.size())
      fail("'" + s + "' is not a whole non-negative number");
    return v;
  }

  double number() const {
    const std::string s = text();
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v))
      fail("'" + s + "' is not a number");
    return v;
  }

  bool boolean() const {
    const std::string s = text();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    fail("'" + s + "' is not true or false");
  }

  Bytes size() const { return convert(parse_size); }
  Duration duration() const { return convert(parse_duration); }
  double rate() const { return convert(parse_rate); }
  Duration milliseconds() const { return convert(parse_milliseconds); }

  // One name, or a list of names (each recorded as `path[k]`), with the path
  // of each.
  std::vector<std::pair<std::string, std::string>> names() const {
    std::vector<std::pair<std::string, std::string>> out;
    if (node_.IsSequence()) {
      for (std::size_t i = 0; i < node_.size(); ++i) {
        const Field f = item(i);
        out.emplace_back(f.name(), f.path());
      }
      if (out.empty()) fail("empty list");
    } else {
      out.emplace_back(name(), path_);
    }
    return out;
  }

  // Keys of this mapping in file order.
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (auto it = node_.begin(); it != node_.end(); ++it) out.push_back(it->first.Scalar());
    return out;
  }

 private:
  struct absent {};
  // An absent field: not recorded, so validation falls back to the parent.
  Field(YAML::Node node, std::string path, Position where, SourceMap& source, absent)
      : node_(std::move(node)), path_(std::move(path)), where_(where), source_(&source) {}

  std::string child_path(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  template <typename Parse>
  std::invoke_result_t<Parse, std::string_view> convert(Parse parse) const {
    const std::string s = text();
    try {
      return parse(s);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }

  YAML::Node node_;
  std::string path_;
  Position where_;
  SourceMap* source_;
};

Address parse_address(const Field& f) {
  const std::string s = f.text();
  try {
    return net::parse_host_port(s, "address", net::PortUse::connect);
  } catch (const std::invalid_argument& e) {
    std::string why = e.what();
    f.fail(why.substr(why.find(": ") + 2));  // the field is the error's own
  }
}

Host parse_host(const Field& f) {
  f.only_keys({"name", "address"});
  Host h;
  h.name = f.required("name").name();
  if (const Field a = f.key("address"); a.present()) h.address = parse_address(a);
  return h;
}

Service parse_service(const Field& f) {
  f.only_keys({"name", "kind", "host", "disks", "switches"});
  Service s;
  s.name = f.required("name").name();
  const Field kind = f.required("kind");
  const auto k = service_kind_from(kind.text());
  if (!k) kind.fail("unknown service kind '" + kind.text() + "'; expected io or console");
  s.kind = *k;
  s.host = f.required("host").name();
  if (const Field disks = f.key("disks"); disks.present()) {
    for (std::size_t i = 0; i < disks.length(); ++i) {
      const Field d = disks.item(i);
      d.only_keys({"name", "size", "path"});
      Disk disk;
      disk.name = d.required("name").name();
      disk.size_bytes = d.required("size").size();
      if (const Field p = d.key("path"); p.present()) disk.path = p.text();
      s.disks.push_back(std::move(disk));
    }
  }
  if (const Field switches = f.key("switches"); switches.present()) {
    for (std::size_t i = 0; i < switches.length(); ++i) {
      const Field w = switches.item(i);
      w.only_keys({"name"});
      s.switches.push_back({w.required("name").name()});
    }
  }
  return s;
}

// A device as written, before it belongs to a guest (no name or numbers).
Device parse_device(const Field& f) {
  f.only_keys({"kind", "service", "disk_size", "disks", "switch", "sriov"});
  Device d;
  d.source = f.path();
  const Field kind = f.required("kind");
  const auto k = device_kind_from(kind.text());
  if (!k) kind.fail("unknown device kind '" + kind.text() + "'; expected vhba, vnic, keyboard or mouse");
  d.kind = *k;
  d.service = f.required("service").name();
  if (const Field s = f.key("disk_size"); s.present()) d.disk_size = s.size();
  if (const Field disks = f.key("disks"); disks.present()) {
    for (std::size_t i = 0; i < disks.length(); ++i) d.disks.push_back(disks.item(i).name());
  }
  if (const Field w = f.key("switch"); w.present()) d.switch_name = w.name();
  if (const Field s = f.key("sriov"); s.present()) d.sriov = s.boolean();
  return d;
}

// Names devices `<guest>/<kind><n>` and numbers them on their bus, per guest,
// in order of appearance. Numbers are never reused, so a device created after
// a destroy gets a fresh name and the drill's events stay unambiguous.
class DeviceNumbering {
 public:
  void assign(const std::string& guest, Device& d) {
    auto& counters = guests_[guest];
    const std::uint32_t n = counters.per_kind[d.kind]++;
    d.name = device_name(guest, d.kind, n);
    d.bus = bus_for(d.kind);
    d.dev = counters.per_bus[d.bus]++;
  }

 private:
  struct Counters {
    std::map<DeviceKind, std::uint32_t> per_kind;
    std::map<std::uint32_t, std::uint32_t> per_bus;
  };
  std::map<std::string, Counters> guests_;
};

constexpr std::uint64_t kMaxGuestCount = 4096;

void parse_guests(const Field& f, Topology& t, DeviceNumbering& numbering) {
  std::uint64_t devices_total = 0;
  for (std::size_t i = 0; i < f.length(); ++i) {
    const Field e = f.item(i);
    e.only_keys({"name", "count", "host", "devices"});
    const std::string name = e.required("name").name();
    std::optional<std::uint64_t> count;
    if (const Field c = e.key("count"); c.present()) {
      count = c.unsigned_integer(kMaxGuestCount);
      if (*count == 0) c.fail("count must be at least 1");
    }
    const auto hosts = e.required("host").names();
    std::vector<Device> templates;
    if (const Field devices = e.key("devices"); devices.present()) {
      if (devices.length() > kMaxDevicesPerGuest)
        devices.fail(std::to_string(devices.length()) + " devices; a guest has at most " +
                     std::to_string(kMaxDevicesPerGuest));
      for (std::size_t k = 0; k < devices.length(); ++k) templates.push_back(parse_device(devices.item(k)));
    }
    // Limits before expanding: `count` (or aliases) must not allocate millions.
    const std::uint64_t n = count.value_or(1);
    if (t.guests.size() + n > kMaxGuests)
      e.fail("this entry brings the guests to " + std::to_string(t.guests.size() + n) + "; at most " +
             std::to_string(kMaxGuests) + " are allowed");
    if (devices_total + n * templates.size() > kMaxDevices)
      e.fail("this entry brings the devices to " + std::to_string(devices_total + n * templates.size()) + "; at most " +
             std::to_string(kMaxDevices) + " are allowed");
    devices_total += n * templates.size();
    for (std::uint64_t k = 0; k < count.value_or(1); ++k) {
      Guest g;
      g.name = count ? name + std::to_string(k) : name;
      g.host = hosts[k % hosts.size()].first;  // a list of hosts is used round-robin
      g.host_source = hosts[k % hosts.size()].second;
      g.source = e.path();
      g.devices = templates;
      for (auto& d : g.devices) numbering.assign(g.name, d);
      t.guests.push_back(std::move(g));
    }
  }
}

Workload parse_workload(const Field& f) {
  Workload w;
  f.only_keys({"disk", "net", "input"});
  if (const Field d = f.key("disk"); d.present()) {
    d.only_keys({"block_size", "queue_depth", "read_ratio", "verify"});
    if (const Field v = d.key("block_size"); v.present()) w.disk.block_size = v.size();
    if (const Field v = d.key("queue_depth"); v.present())
      w.disk.queue_depth = static_cast<std::uint32_t>(v.unsigned_integer(std::numeric_limits<std::uint32_t>::max()));
    if (const Field v = d.key("read_ratio"); v.present()) w.disk.read_ratio = v.number();
    if (const Field v = d.key("verify"); v.present()) w.disk.verify = v.boolean();
  }
  if (const Field n = f.key("net"); n.present()) {
    n.only_keys({"frame_size", "rate"});
    if (const Field v = n.key("frame_size"); v.present()) w.net.frame_size = v.size();
    if (const Field v = n.key("rate"); v.present()) w.net.rate_per_s = v.rate();
  }
  if (const Field in = f.key("input"); in.present()) {
    in.only_keys({"rate"});
    if (const Field v = in.key("rate"); v.present()) w.input.rate_per_s = v.rate();
  }
  return w;
}

const std::vector<std::string_view> kStepKeys{"at",      "recover",   "crash",      "pause",
                                              "resume",  "destroy",   "create",     "partition",
                                              "kill_agent", "lose_writes", "restart_after", "for", "every"};

Step parse_step(const Field& f, std::size_t index, DeviceNumbering& numbering) {
  f.only_keys(kStepKeys);
  Step s;
  s.index = index;
  s.at = f.required("at").duration();
  std::optional<Field> action;
  for (const std::string& key : f.keys()) {
    const auto kind = step_kind_from(key);
    if (!kind) continue;
    const Field a = f.key(key);
    if (action)
      a.fail("a step has one action; this one has both '" + std::string(to_string(s.kind)) + "' and '" +
             key + "'");
    s.kind = *kind;
    action = a;
  }
  if (!action)
    f.fail("a step needs one action: recover, crash, pause, resume, destroy, create, partition, "
           "kill_agent or lose_writes");
  const Field& a = *action;
  switch (s.kind) {
    case StepKind::partition: {
      if (!a.is_sequence() || a.length() == 0) a.fail("expected a list of two hosts, like [a, b]");
      for (std::size_t i = 0; i < a.length(); ++i) s.targets.push_back(a.item(i).name());
      break;
    }
    case StepKind::create: {
      a.only_keys({"guest", "device"});
      s.targets.push_back(a.required("guest").name());
      Device d = parse_device(a.required("device"));
      numbering.assign(s.targets.front(), d);
      s.created = std::move(d);
      break;
    }
    default:
      s.targets.push_back(a.name());
  }
  if (const Field v = f.key("restart_after"); v.present()) s.restart_after = v.duration();
  if (const Field v = f.key("for"); v.present()) s.for_duration = v.duration();
  if (const Field v = f.key("every"); v.present()) s.every = v.unsigned_integer();
  return s;
}

Drill parse_drill(const Field& f, DeviceNumbering& numbering) {
  f.only_keys({"seed", "duration", "steps"});
  Drill d;
  if (const Field v = f.key("seed"); v.present()) d.seed = v.unsigned_integer();
  if (const Field v = f.key("duration"); v.present()) d.duration = v.duration();
  if (const Field steps = f.key("steps"); steps.present()) {
    for (std::size_t i = 0; i < steps.length(); ++i) d.steps.push_back(parse_step(steps.item(i), i, numbering));
  }
  return d;
}

Expect parse_expect(const Field& f) {
  std::vector<std::string_view> known{"lost_io", "max_recovery_ms"};
  known.insert(known.end(), kOtherExpectations.begin(), kOtherExpectations.end());
  f.only_keys(known);
  Expect e;
  for (const std::string& key : f.keys()) {
    const Field v = f.key(key);
    if (key == "lost_io")
      e.lost_io = v.unsigned_integer();
    else if (key == "max_recovery_ms")
      e.max_recovery = v.milliseconds();
    else
      e.others.push_back({key, v.number()});
  }
  return e;
}

Topology parse_document(const YAML::Node& root, SourceMap source) {
  Topology t;
  t.source = std::move(source);
  const Position start = root.IsNull() || root.Mark().is_null() ? Position{1, 1} : position_of(root.Mark());
  const Field doc(root, "", start, t.source);
  if (!root.IsDefined() || root.IsNull()) doc.fail("empty file; expected a topology starting with version: 1");
  doc.require_map();
  // Version first: a file for another version would only produce confusing
  // errors about its keys.
  const Field version = doc.required("version");
  const std::uint64_t v = version.unsigned_integer(std::numeric_limits<int>::max());
  if (v != 1) version.fail("unsupported version " + std::to_string(v) + "; this visorlab reads version 1");
  t.version = static_cast<int>(v);
  doc.only_keys({"version", "name", "hosts", "command", "services", "guests", "workload", "drill",
                 "expect"});

  if (const Field n = doc.key("name"); n.present())
    t.name = n.name();
  else
    t.name = std::filesystem::path(t.source.file).stem().string();

  const Field hosts = doc.required("hosts");
  for (std::size_t i = 0; i < hosts.length(); ++i) t.hosts.push_back(parse_host(hosts.item(i)));

  const Field command = doc.required("command");
  command.only_keys({"host"});
  t.command.host = command.required("host").name();

  if (const Field services = doc.key("services"); services.present()) {
    for (std::size_t i = 0; i < services.length(); ++i) t.services.push_back(parse_service(services.item(i)));
  }
  DeviceNumbering numbering;
  if (const Field guests = doc.key("guests"); guests.present()) parse_guests(guests, t, numbering);
  if (const Field w = doc.key("workload"); w.present()) t.workload = parse_workload(w);
  if (const Field d = doc.key("drill"); d.present()) t.drill = parse_drill(d, numbering);
  if (const Field e = doc.key("expect"); e.present()) t.expect = parse_expect(e);
  return t;
}

}  // namespace

namespace {

// Where each document of a YAML stream starts, for at most `limit` documents.
// YAML::LoadAll of yaml-cpp 0.7 loops forever, allocating, on some malformed
// input (a stray ',': jbeder/yaml-cpp#1040, fixed upstream by #1319), so
// documents are counted with a bounded loop and only the first is loaded.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> marks;
};

}  // namespace

Topology parse_string(std::string_view text, std::string file_label) {
  SourceMap source;
  source.file = std::move(file_label);
  const auto error_at = [&](const YAML::Mark& mark, const std::string& message) {
    const Position at = position_of(mark);
    return Error(source.file, at.line > 0 ? at.line : 1, at.line > 0 ? at.column : 1, "(document)", message);
  };
  YAML::Node root;
  try {
    std::istringstream in{std::string(text)};
    YAML::Parser parser(in);
    DocumentStarts starts;
    for (int n = 0; n < 2 && parser.HandleNextDocument(starts); ++n) {
    }
    if (starts.marks.size() > 1) {
      if (starts.marks[1].pos <= starts.marks[0].pos)
        throw error_at(starts.marks[1], "not valid YAML here (the parser cannot get past this point)");
      throw error_at(starts.marks[1], "a topology file holds one YAML document");
    }
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    throw error_at(e.mark, e.msg);
  }
  Topology t = parse_document(root, std::move(source));
  t.text = std::string(text);
  return t;
}

Topology parse_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string(), 0, 0, "", std::string("cannot read: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(file.string(), 0, 0, "", std::string("cannot read: ") + std::strerror(errno));
  return parse_string(text.str(), file.string());
}

}  // namespace visorlab::topology
