// The console partition: the keyboard and mouse backends of every guest it
// serves, by device name ("g0/keyboard0"). The command side tells it to pause
// and resume a device around the guest's pause; its owner polls it to move
// input into the channels. Plain C++: the actor wrapper lives elsewhere.
//
// Restart: detach() returns the device's next seq_no for a planned restart to
// pass to attach(); after a crash, attach() then resume_from_channel() on the
// returned backend continues after what the channel already holds.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/service/input_backend.hpp"

namespace visorlab::service {

class ConsolePartition {
 public:
  // Serves `channel` (which must outlive the attachment) as device `name`.
  // Throws std::invalid_argument for an empty or already attached name, or
  // whatever InputBackend throws for a channel it cannot serve.
  InputBackend& attach(const std::string& name, channel::Channel& channel, channel::ChannelKind kind,
                       std::uint64_t first_seq = 1);
  // Stops serving it; its next seq_no, or nullopt for an unknown name. Held
  // reports are discarded: passed on as first_seq, next_seq leaves their
  // numbers as a gap the guest counts as lost — visible, not hidden. A
  // planned restart that wants none lost lets counts().held reach 0 first.
  std::optional<std::uint64_t> detach(const std::string& name);

  // false for an unknown name.
  bool pause(const std::string& name);
  bool resume(const std::string& name);

  // One poll of every device (up to max_per_device reports each); how many
  // reports went into channels in all.
  std::size_t poll(std::size_t max_per_device = InputBackend::kDefaultMaxPoll);

  // Produce helpers. A report's seq_no, or nullopt for an unknown name.
  std::optional<std::uint64_t> produce(const std::string& name, const channel::input::Activity& activity);
  bool produce(const std::string& name, std::size_t n);  // the backend's pattern
  void produce_all(std::size_t n);                        // n for every device

  InputBackend* find(const std::string& name);
  std::vector<std::string> names() const;  // sorted
  std::size_t size() const { return backends_.size(); }
  // Sums over every attached device.
  InputBackendCounts totals() const;

 private:
  std::map<std::string, std::unique_ptr<InputBackend>> backends_;  // stable addresses
};

}  // namespace visorlab::service
