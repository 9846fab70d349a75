// A drill's history on disk while the drill runs. Each source (a guest's
// workload, the nemesis) appends the pieces drained from it to a file of its
// own in the spool dir, so the drill's memory does not grow with its length;
// afterwards every source is read back at once, merged into one timeline, for
// the checker and the history file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "drill/history.hpp"

namespace visorlab::drill {

class HistorySpool {
 public:
  // Creates `dir`; what the spool wrote there is removed with it.
  explicit HistorySpool(std::filesystem::path dir);
  ~HistorySpool();
  HistorySpool(const HistorySpool&) = delete;
  HistorySpool& operator=(const HistorySpool&) = delete;

  // Appends a piece of `source`'s history: its events in the order recorded,
  // with the blocks their reads saw and devices and texts by the piece's own
  // ids. Its violations, faults and recoveries are all the source's so far:
  // they replace what an earlier piece brought. Throws std::runtime_error
  // when the file cannot be written.
  void add(const std::string& source, const History& piece);

  // The history without its events: every device and text by the ids replay
  // gives them, every source's faults, recoveries and violations (in time
  // order), and `events` untouched (empty).
  History summary() const;
  std::uint64_t events() const noexcept { return events_; }

  // Every event spooled, in time order, with the blocks its read saw: the
  // sources' files read back at once and merged, holding at most `window` of
  // drill time in memory. An event recorded more than `window` after later
  // ones of its source (a retry noted when its op completes) comes out late.
  using Visit = std::function<void(const Event&, std::span<const BlockSeen>)>;
  void replay(const Visit& visit, Nanos window = 250'000'000) const;

 private:
  struct Source {
    std::string name;
    std::filesystem::path file;
    std::ofstream out;
    std::vector<Violation> violations;
    std::vector<FaultWindow> faults;
    std::vector<RecoveryPhases> recoveries;
  };
  DeviceId device_id(const std::string& name);
  std::uint32_t text_id(const std::string& text);

  std::filesystem::path dir_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<std::string> devices_, texts_;
  std::unordered_map<std::string, DeviceId> device_ids_;
  std::unordered_map<std::string, std::uint32_t> text_ids_;
  std::uint64_t events_ = 0;
};

}  // namespace visorlab::drill
