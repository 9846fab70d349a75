#include "drill/history_file.hpp"

#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <fstream>
#include <istream>
#include <ostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace visorlab::drill {
namespace {

using nlohmann::json;

constexpr int kFormat = 1;

// Events are most of a history: formatted by hand, which is several times
// faster than building a json object per line.
class LineWriter {
 public:
  explicit LineWriter(std::ostream& out) : out_(out) { buffer_.reserve(1 << 16); }
  ~LineWriter() { flush(); }

  LineWriter& raw(std::string_view text) {
    buffer_ += text;
    return *this;
  }
  template <class Int>
  LineWriter& number(Int value) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    buffer_.append(digits, end);
    return *this;
  }
  LineWriter& field(std::string_view key, std::uint64_t value) { return raw(",\"").raw(key).raw("\":").number(value); }
  void end_line() {
    buffer_ += "}\n";
    if (buffer_.size() > (1 << 16)) flush();
  }
  void flush() {
    out_.write(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
    buffer_.clear();
  }

 private:
  std::ostream& out_;
  std::string buffer_;
};

void write_event(LineWriter& w, const History& h, const Event& e, std::span<const BlockSeen> seen,
                 const std::vector<std::string>& quoted) {
  w.raw("{\"t\":").number(e.at).raw(",\"ev\":\"").raw(to_string(e.kind)).raw("\",\"dev\":").raw(quoted.at(e.device));
  switch (e.kind) {
    case EventKind::disk_invoke:
      w.field("op_id", e.invoke.op_id).raw(",\"rw\":\"").raw(to_string(e.invoke.op)).raw("\"");
      w.field("lba", e.invoke.lba).field("blocks", e.invoke.blocks).field("gen", e.invoke.gen);
      break;
    case EventKind::disk_ok: {
      w.field("op_id", e.ok.op_id);
      if (!seen.empty()) {
        w.raw(",\"seen\":[");
        for (std::size_t i = 0; i < seen.size(); ++i) {
          const BlockSeen& b = seen[i];
          w.raw(i == 0 ? "[" : ",[").number(b.lba).raw(",").number(b.gen).raw(",").number(b.device_tag);
          w.raw(b.checksum_ok ? ",true]" : ",false]");
        }
        w.raw("]");
      }
      break;
    }
    case EventKind::disk_fail:
      w.field("op_id", e.fail.op_id).raw(",\"reason\":").raw(json(h.texts.at(e.fail.reason)).dump());
      break;
    case EventKind::disk_retried:
      w.field("op_id", e.retried.op_id);
      break;
    case EventKind::frame_sent:
      w.raw(",\"dst\":").raw(quoted.at(e.frame.peer)).field("seq", e.frame.seq);
      break;
    case EventKind::frame_received:
      w.raw(",\"src\":").raw(quoted.at(e.frame.peer)).field("seq", e.frame.seq);
      break;
    case EventKind::input_produced:
    case EventKind::input_delivered:
      w.field("seq_no", e.input.seq_no);
      break;
  }
  w.end_line();
}

json fault_line(const FaultWindow& f) {
  return {{"t", f.start},  {"ev", "fault"}, {"step", f.step}, {"kind", f.kind},         {"target", f.target},
          {"start", f.start}, {"end", f.end}, {"held", f.held}, {"affected", f.affected}};
}

json recovery_line(const RecoveryPhases& r) {
  return {{"t", r.detect},   {"ev", "recovery"}, {"step", r.step}, {"detect", r.detect}, {"pause", r.pause},
          {"restart", r.restart}, {"resume", r.resume}, {"ok", r.ok},     {"error", r.error}};
}

json violation_line(const Violation& v) {
  return {{"t", v.at}, {"ev", "violation"}, {"kind", v.kind}, {"dev", v.device}, {"detail", v.detail}};
}

// The most 512-byte blocks one op covers: 64 KiB, one visorhba command. A
// count past it is a damaged file (and would make the checker allocate).
constexpr std::uint32_t kMaxOpBlocks = 128;

// Device ids by name while reading: History::device_id is a linear search.
class DeviceIds {
 public:
  explicit DeviceIds(History& h) : history_(h) {}
  DeviceId operator()(std::string_view name) {
    if (const auto it = ids_.find(name); it != ids_.end()) return it->second;
    const DeviceId id = history_.device_id(name);
    ids_.emplace(std::string(name), id);
    return id;
  }

 private:
  History& history_;
  std::map<std::string, DeviceId, std::less<>> ids_;
};

std::optional<EventKind> event_kind(std::string_view name) {
  for (auto k : {EventKind::disk_invoke, EventKind::disk_ok, EventKind::disk_fail, EventKind::disk_retried,
                 EventKind::frame_sent, EventKind::frame_received, EventKind::input_produced,
                 EventKind::input_delivered}) {
    if (to_string(k) == name) return k;
  }
  return std::nullopt;
}

// A cursor over a line laid out exactly as write_event writes it. Anything
// else (a hand-edited file, an escaped string) makes it give up, and the line
// goes to the JSON parser: this is a shortcut, ~10x faster, never the judge.
class FastLine {
 public:
  explicit FastLine(std::string_view line) : s_(line) {}

  bool lit(std::string_view text) {
    if (s_.substr(pos_, text.size()) != text) return false;
    pos_ += text.size();
    return true;
  }
  template <class Int>
  bool num(Int& value) {
    const auto [end, ec] = std::from_chars(s_.data() + pos_, s_.data() + s_.size(), value);
    if (ec != std::errc{}) return false;
    pos_ = static_cast<std::size_t>(end - s_.data());
    return true;
  }
  bool str(std::string_view& value) {
    if (!lit("\"")) return false;
    const auto end = s_.find('"', pos_);
    if (end == std::string_view::npos) return false;
    value = s_.substr(pos_, end - pos_);
    if (value.find('\\') != std::string_view::npos) return false;
    pos_ = end + 1;
    return true;
  }
  bool boolean(bool& value) {
    if (lit("true")) return value = true;
    if (lit("false")) return !(value = false);
    return false;
  }
  bool done() const { return pos_ == s_.size(); }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

bool read_event_fast(History& h, DeviceIds& ids, std::string_view line) {
  FastLine c(line);
  Event e;
  std::string_view ev, dev;
  if (!c.lit("{\"t\":") || !c.num(e.at) || !c.lit(",\"ev\":") || !c.str(ev) || !c.lit(",\"dev\":") || !c.str(dev)) {
    return false;
  }
  const auto kind = event_kind(ev);
  if (!kind) return false;
  e.kind = *kind;
  e.device = ids(dev);
  std::string_view text;
  const std::size_t blocks_before = h.blocks.size();
  bool ok = false;
  switch (e.kind) {
    case EventKind::disk_invoke: {
      ok = c.lit(",\"op_id\":") && c.num(e.invoke.op_id) && c.lit(",\"rw\":") && c.str(text) &&
           (text == "read" || text == "write") && c.lit(",\"lba\":") && c.num(e.invoke.lba) &&
           c.lit(",\"blocks\":") && c.num(e.invoke.blocks) && c.lit(",\"gen\":") && c.num(e.invoke.gen);
      e.invoke.op = text == "read" ? DiskOp::read : DiskOp::write;
      break;
    }
    case EventKind::disk_ok:
      e.ok = DiskOk{0, 0, 0};
      ok = c.lit(",\"op_id\":") && c.num(e.ok.op_id);
      if (ok && c.lit(",\"seen\":[")) {
        do {
          BlockSeen b;
          ok = c.lit("[") && c.num(b.lba) && c.lit(",") && c.num(b.gen) && c.lit(",") && c.num(b.device_tag) &&
               c.lit(",") && c.boolean(b.checksum_ok) && c.lit("]");
          if (ok) h.blocks.push_back(b);
        } while (ok && c.lit(","));
        ok = ok && c.lit("]");
        e.ok.first_block = blocks_before;
        e.ok.block_count = static_cast<std::uint32_t>(h.blocks.size() - blocks_before);
      }
      break;
    case EventKind::disk_fail:
      ok = c.lit(",\"op_id\":") && c.num(e.fail.op_id) && c.lit(",\"reason\":") && c.str(text);
      break;
    case EventKind::disk_retried:
      ok = c.lit(",\"op_id\":") && c.num(e.retried.op_id);
      break;
    case EventKind::frame_sent:
    case EventKind::frame_received:
      ok = c.lit(e.kind == EventKind::frame_sent ? ",\"dst\":" : ",\"src\":") && c.str(text) &&
           c.lit(",\"seq\":") && c.num(e.frame.seq);
      if (ok) e.frame.peer = ids(text);
      break;
    case EventKind::input_produced:
    case EventKind::input_delivered:
      ok = c.lit(",\"seq_no\":") && c.num(e.input.seq_no);
      break;
  }
  if (!ok || !c.lit("}") || !c.done()) {
    h.blocks.resize(blocks_before);
    return false;
  }
  if (e.kind == EventKind::disk_invoke && (e.invoke.blocks == 0 || e.invoke.blocks > kMaxOpBlocks)) {
    h.blocks.resize(blocks_before);
    return false;  // the full reader names what is wrong
  }
  if (e.kind == EventKind::disk_fail) {
    h.texts.emplace_back(text);
    e.fail.reason = static_cast<std::uint32_t>(h.texts.size() - 1);
  }
  h.events.push_back(e);
  return true;
}

// An integer field of type T, refused (not converted, which is undefined for
// a float out of range) when the file holds anything else.
template <class T>
T integer(const json& j) {
  bool fits = false;
  if (j.is_number_unsigned()) {
    fits = j.get<std::uint64_t>() <= std::uint64_t(std::numeric_limits<T>::max());
  } else if (j.is_number_integer()) {
    const std::int64_t v = j.get<std::int64_t>();
    fits = v >= 0 ? std::uint64_t(v) <= std::uint64_t(std::numeric_limits<T>::max())
                  : std::numeric_limits<T>::is_signed && v >= std::int64_t(std::numeric_limits<T>::min());
  }
  if (!fits) throw std::runtime_error(j.dump() + " is not an integer in range");
  return j.is_number_unsigned() ? static_cast<T>(j.get<std::uint64_t>()) : static_cast<T>(j.get<std::int64_t>());
}
template <class T>
T integer(const json& j, const char* key) {
  try {
    return integer<T>(j.at(key));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("\"") + key + "\": " + e.what());
  }
}

void read_event(History& h, DeviceIds& ids, const json& j, EventKind kind) {
  Event e;
  e.at = integer<Nanos>(j, "t");
  e.device = ids(j.at("dev").get<std::string>());
  e.kind = kind;
  switch (kind) {
    case EventKind::disk_invoke: {
      const auto rw = j.at("rw").get<std::string>();
      if (rw != "read" && rw != "write") throw std::runtime_error("rw must be read or write");
      e.invoke = DiskInvoke{integer<std::uint64_t>(j, "op_id"), integer<std::uint64_t>(j, "lba"),
                            integer<std::uint64_t>(j, "gen"), integer<std::uint32_t>(j, "blocks"),
                            rw == "read" ? DiskOp::read : DiskOp::write};
      if (e.invoke.blocks == 0 || e.invoke.blocks > kMaxOpBlocks)
        throw std::runtime_error("\"blocks\": " + std::to_string(e.invoke.blocks) + " is outside 1.." +
                                 std::to_string(kMaxOpBlocks));
      break;
    }
    case EventKind::disk_ok: {
      e.ok = DiskOk{integer<std::uint64_t>(j, "op_id"), 0, 0};
      if (const auto seen = j.find("seen"); seen != j.end()) {
        e.ok.first_block = h.blocks.size();
        for (const auto& b : *seen) {
          h.blocks.push_back(BlockSeen{integer<std::uint64_t>(b.at(0)), integer<std::uint64_t>(b.at(1)),
                                       integer<std::uint64_t>(b.at(2)), b.at(3).get<bool>()});
        }
        e.ok.block_count = static_cast<std::uint32_t>(h.blocks.size() - e.ok.first_block);
        if (e.ok.block_count == 0) e.ok.first_block = 0;
      }
      break;
    }
    case EventKind::disk_fail:
      h.texts.push_back(j.at("reason").get<std::string>());
      e.fail = DiskFail{integer<std::uint64_t>(j, "op_id"), static_cast<std::uint32_t>(h.texts.size() - 1)};
      break;
    case EventKind::disk_retried:
      e.retried = DiskRetried{integer<std::uint64_t>(j, "op_id")};
      break;
    case EventKind::frame_sent:
      e.frame = Frame{ids(j.at("dst").get<std::string>()), integer<std::uint64_t>(j, "seq")};
      break;
    case EventKind::frame_received:
      e.frame = Frame{ids(j.at("src").get<std::string>()), integer<std::uint64_t>(j, "seq")};
      break;
    case EventKind::input_produced:
    case EventKind::input_delivered:
      e.input = InputReport{integer<std::uint64_t>(j, "seq_no")};
      break;
  }
  h.events.push_back(e);
}

}  // namespace

struct HistoryWriter::Lines {
  explicit Lines(std::ostream& out) : w(out) {}
  LineWriter w;
  std::vector<std::string> quoted;  // device names as JSON strings
  std::size_t fault = 0, violation = 0;
};

HistoryWriter::HistoryWriter(std::ostream& out, const History& summary)
    : out_(out), h_(summary), lines_(std::make_unique<Lines>(out)) {
  out_ << json{{"visorlab_history", kFormat}, {"name", h_.name},       {"seed", h_.seed},
               {"end", h_.end},                {"devices", h_.devices}}.dump()
       << '\n';
  for (const auto& d : h_.devices) lines_->quoted.push_back(json(d).dump());
}

HistoryWriter::~HistoryWriter() = default;

void HistoryWriter::rare_before(Nanos t) {
  Lines& l = *lines_;
  const auto& faults = h_.faults;
  const auto& violations = h_.violations;
  if ((l.fault >= faults.size() || faults[l.fault].start > t) &&
      (l.violation >= violations.size() || violations[l.violation].at > t))
    return;
  l.w.flush();
  while (l.fault < faults.size() && faults[l.fault].start <= t) out_ << fault_line(faults[l.fault++]).dump() << '\n';
  while (l.violation < violations.size() && violations[l.violation].at <= t)
    out_ << violation_line(violations[l.violation++]).dump() << '\n';
}

void HistoryWriter::event(const Event& e, std::span<const BlockSeen> seen) {
  // Rare records go between events by time, so the file reads as a timeline.
  rare_before(e.at);
  write_event(lines_->w, h_, e, seen, lines_->quoted);
}

void HistoryWriter::finish() {
  rare_before(std::numeric_limits<Nanos>::max());
  lines_->w.flush();
  // Recoveries are reported once finished: at the end, in recorded order.
  for (const auto& r : h_.recoveries) out_ << recovery_line(r).dump() << '\n';
}

void write_history(const History& h, std::ostream& out) {
  HistoryWriter writer(out, h);
  for (const Event& e : h.events) writer.event(e, h.seen(e));
  writer.finish();
}

History read_history(std::istream& in) {
  History h;
  DeviceIds ids(h);
  std::string line;
  std::size_t number = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    try {
      if (header && read_event_fast(h, ids, line)) continue;
      const json j = json::parse(line);
      if (!header) {
        if (!j.contains("visorlab_history") || !j.at("visorlab_history").is_number_integer() ||
            j.at("visorlab_history").get<std::int64_t>() != kFormat) throw std::runtime_error("not a visorlab history (format 1)");
        h.name = j.at("name").get<std::string>();
        h.seed = integer<std::uint64_t>(j, "seed");
        h.end = integer<Nanos>(j, "end");
        for (const auto& d : j.at("devices")) h.devices.push_back(d.get<std::string>());
        header = true;
        continue;
      }
      const auto ev = j.at("ev").get<std::string>();
      if (ev == "fault") {
        h.faults.push_back(FaultWindow{integer<std::size_t>(j, "step"), j.at("kind").get<std::string>(),
                                       j.at("target").get<std::string>(), integer<Nanos>(j, "start"),
                                       integer<Nanos>(j, "end"), j.at("held").get<bool>(),
                                       j.at("affected").get<std::vector<std::string>>()});
      } else if (ev == "recovery") {
        h.recoveries.push_back(RecoveryPhases{integer<std::size_t>(j, "step"), integer<Nanos>(j, "detect"),
                                              integer<Nanos>(j, "pause"), integer<Nanos>(j, "restart"),
                                              integer<Nanos>(j, "resume"), j.at("ok").get<bool>(),
                                              j.at("error").get<std::string>()});
      } else if (ev == "violation") {
        h.violations.push_back(Violation{j.at("kind").get<std::string>(), j.at("dev").get<std::string>(),
                                         integer<Nanos>(j, "t"), j.at("detail").get<std::string>()});
      } else {
        const auto kind = event_kind(ev);
        if (!kind) throw std::runtime_error("unknown event \"" + ev + "\"");
        read_event(h, ids, j, *kind);
      }
    } catch (const std::exception& e) {
      throw std::runtime_error("drill history line " + std::to_string(number) + ": " + e.what());
    }
  }
  if (!header) throw std::runtime_error("drill history: empty, no header line");
  h.sort_by_time();  // written in order; a hand-edited file may not be
  return h;
}

void save_history(const History& history, const std::filesystem::path& file) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write drill history " + file.string());
  write_history(history, out);
  out.flush();
  if (!out) throw std::runtime_error("writing drill history " + file.string() + " failed");
}

History load_history(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read drill history " + file.string());
  return read_history(in);
}

}  // namespace visorlab::drill
