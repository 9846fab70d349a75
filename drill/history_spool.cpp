#include "drill/history_spool.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace visorlab::drill {

namespace fs = std::filesystem;

// On disk, per source: each event as it is in memory, then the blocks its
// read saw. Written and read by this process only, in one run: no format to
// keep (history_file.hpp is the format kept).
namespace {

// More blocks than one op covers (kVhbaBufferSize / 512 is 128) is a damaged file.
constexpr std::uint32_t kMaxBlocks = 1 << 12;

template <class T>
void put(std::ofstream& out, const T* p, std::size_t n) {
  out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(sizeof(T) * n));
}

struct Item {
  Event event;
  std::vector<BlockSeen> blocks;
  std::size_t source = 0;
  std::uint64_t seq = 0;  // within its source: ties keep the recorded order
};

struct Later {
  bool operator()(const std::unique_ptr<Item>& a, const std::unique_ptr<Item>& b) const {
    if (a->event.at != b->event.at) return a->event.at > b->event.at;
    if (a->source != b->source) return a->source > b->source;
    return a->seq > b->seq;
  }
};

class Reader {
 public:
  Reader(const fs::path& file, std::size_t source) : in_(file, std::ios::binary), file_(file), source_(source) {
    if (!in_) throw std::runtime_error("cannot read the spooled history " + file.string());
  }
  bool done() const { return done_; }
  Nanos horizon() const { return horizon_; }

  std::unique_ptr<Item> next() {
    auto item = std::make_unique<Item>();
    if (!in_.read(reinterpret_cast<char*>(&item->event), sizeof(Event))) {
      if (in_.gcount() != 0) throw std::runtime_error("spooled history " + file_.string() + " is truncated");
      done_ = true;
      return nullptr;
    }
    Event& e = item->event;
    if (e.kind == EventKind::disk_ok && e.ok.block_count != 0) {
      if (e.ok.block_count > kMaxBlocks) throw std::runtime_error("spooled history " + file_.string() + " is damaged");
      item->blocks.resize(e.ok.block_count);
      if (!in_.read(reinterpret_cast<char*>(item->blocks.data()),
                    static_cast<std::streamsize>(sizeof(BlockSeen) * e.ok.block_count)))
        throw std::runtime_error("spooled history " + file_.string() + " is truncated");
      e.ok.first_block = 0;
    }
    item->source = source_;
    item->seq = seq_++;
    horizon_ = std::max(horizon_, e.at);
    return item;
  }

 private:
  std::ifstream in_;
  fs::path file_;
  std::size_t source_;
  std::uint64_t seq_ = 0;
  Nanos horizon_ = std::numeric_limits<Nanos>::min();
  bool done_ = false;
};

}  // namespace

HistorySpool::HistorySpool(fs::path dir) : dir_(std::move(dir)) { fs::create_directories(dir_); }

HistorySpool::~HistorySpool() {
  for (auto& s : sources_) {
    s->out.close();
    std::error_code ec;
    fs::remove(s->file, ec);
  }
  std::error_code ec;
  fs::remove(dir_, ec);  // only if empty: the dir may hold more than the spool
}

DeviceId HistorySpool::device_id(const std::string& name) {
  const auto [it, added] = device_ids_.try_emplace(name, static_cast<DeviceId>(devices_.size()));
  if (added) devices_.push_back(name);
  return it->second;
}

std::uint32_t HistorySpool::text_id(const std::string& text) {
  const auto [it, added] = text_ids_.try_emplace(text, static_cast<std::uint32_t>(texts_.size()));
  if (added) texts_.push_back(text);
  return it->second;
}

void HistorySpool::add(const std::string& source, const History& piece) {
  auto it = std::find_if(sources_.begin(), sources_.end(), [&](const auto& s) { return s->name == source; });
  if (it == sources_.end()) {
    auto s = std::make_unique<Source>();
    s->name = source;
    s->file = dir_ / (std::to_string(sources_.size()) + ".events");
    s->out.open(s->file, std::ios::binary | std::ios::trunc);
    if (!s->out) throw std::runtime_error("cannot write the history spool " + s->file.string());
    it = sources_.insert(sources_.end(), std::move(s));
  }
  Source& s = **it;
  s.violations = piece.violations;
  s.faults = piece.faults;
  s.recoveries = piece.recoveries;

  std::vector<DeviceId> devices;
  for (const auto& d : piece.devices) devices.push_back(device_id(d));
  std::vector<std::uint32_t> texts;
  for (const auto& t : piece.texts) texts.push_back(text_id(t));
  const auto device = [&](DeviceId local) {
    if (local >= devices.size()) throw std::runtime_error("history of " + source + ": device id out of range");
    return devices[local];
  };
  for (Event e : piece.events) {
    e.device = device(e.device);
    std::span<const BlockSeen> seen;
    switch (e.kind) {
      case EventKind::disk_ok: seen = piece.seen(e); break;
      case EventKind::disk_fail:
        if (e.fail.reason >= texts.size()) throw std::runtime_error("history of " + source + ": text out of range");
        e.fail.reason = texts[e.fail.reason];
        break;
      case EventKind::frame_sent:
      case EventKind::frame_received: e.frame.peer = device(e.frame.peer); break;
      default: break;
    }
    put(s.out, &e, 1);
    put(s.out, seen.data(), seen.size());
  }
  s.out.flush();
  if (!s.out) throw std::runtime_error("writing the history spool " + s.file.string() + " failed");
  events_ += piece.events.size();
}

History HistorySpool::summary() const {
  History h;
  h.devices = devices_;
  h.texts = texts_;
  for (const auto& s : sources_) {
    h.violations.insert(h.violations.end(), s->violations.begin(), s->violations.end());
    h.faults.insert(h.faults.end(), s->faults.begin(), s->faults.end());
    h.recoveries.insert(h.recoveries.end(), s->recoveries.begin(), s->recoveries.end());
  }
  h.sort_by_time();
  return h;
}

void HistorySpool::replay(const Visit& visit, Nanos window) const {
  std::vector<Reader> readers;
  readers.reserve(sources_.size());
  for (std::size_t i = 0; i < sources_.size(); ++i) readers.emplace_back(sources_[i]->file, i);
  std::vector<std::unique_ptr<Item>> heap;  // std::push_heap/pop_heap by Later: the earliest on top
  const auto push = [&](std::unique_ptr<Item> item) {
    heap.push_back(std::move(item));
    std::push_heap(heap.begin(), heap.end(), Later{});
  };
  for (auto& r : readers)
    if (auto item = r.next()) push(std::move(item));
  while (!heap.empty()) {
    // Before the earliest event read goes out, every source is read `window`
    // past it: what one recorded a little late still comes out in order.
    // Reading on can only bring earlier events, whose bar is lower still.
    const Nanos first = heap.front()->event.at;
    const Nanos until = first > std::numeric_limits<Nanos>::max() - window ? std::numeric_limits<Nanos>::max()
                                                                            : first + window;
    for (auto& r : readers)
      while (!r.done() && r.horizon() < until)
        if (auto item = r.next()) push(std::move(item));
    std::pop_heap(heap.begin(), heap.end(), Later{});
    const std::unique_ptr<Item> item = std::move(heap.back());
    heap.pop_back();
    visit(item->event, item->blocks);
  }
}

}  // namespace visorlab::drill
