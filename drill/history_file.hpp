// A drill history on disk, kept in the run dir for post-mortem and for
// re-checking later: JSON lines, so it greps (`grep '"op_id":17,' history.jsonl`).
// The first line is a header (name, seed, end, devices); then one line per
// event, fault, recovery and violation, in time order, devices by name.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <span>

#include "drill/history.hpp"

namespace visorlab::drill {

// Writes a history as its events stream by (drill/history_spool.hpp): the
// header from the summary, each event as it comes, faults and violations
// between events by time, recoveries at the end.
class HistoryWriter {
 public:
  // `summary`: all but the events, which come through event().
  HistoryWriter(std::ostream& out, const History& summary);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  void event(const Event& e, std::span<const BlockSeen> seen);
  void finish();

 private:
  struct Lines;
  void rare_before(Nanos t);
  std::ostream& out_;
  const History& h_;
  std::unique_ptr<Lines> lines_;
};

void write_history(const History& history, std::ostream& out);
// Throws std::runtime_error naming the line of anything it cannot read.
History read_history(std::istream& in);

void save_history(const History& history, const std::filesystem::path& file);
History load_history(const std::filesystem::path& file);

}  // namespace visorlab::drill
