// What an orchestrator started with a state dir keeps there, so that a new
// orchestrator on the same dir re-adopts the running cluster: the topology
// applied (its YAML), the machine-wide tag of its shared memory, every device
// with its state, the devices created since, and the next channel address.
// One JSON file, written aside and renamed: a reader sees the old or the new
// state, never half of one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/runtime/messages.hpp"
#include "topology/model.hpp"

namespace visorlab::orchestrator {

struct SavedDevice {
  std::string guest;
  topology::Device spec;
  actors::DeviceState state = actors::DeviceState::running;
};

struct ClusterState {
  std::string tag;            // "o<pid>" of the orchestrator that applied it
  std::string topology_text;  // the YAML
  std::string topology_file;  // its label, for messages
  std::uint64_t next_addr = 0;
  std::vector<SavedDevice> devices;
  std::map<std::string, std::vector<topology::Device>> created;  // guest → created after apply
};

std::filesystem::path state_file(const std::filesystem::path& dir);

// Throws std::runtime_error naming the file when it cannot be written.
void save_state(const std::filesystem::path& dir, const ClusterState& state);
// nullopt when the dir holds no state; std::runtime_error naming the file and
// what is wrong when it holds one that cannot be read.
std::optional<ClusterState> load_state(const std::filesystem::path& dir);
// Nothing applied any more.
void clear_state(const std::filesystem::path& dir);

// A drill in progress: its name, one line, while it runs (drill/ writes it;
// a re-adopting orchestrator reports it aborted).
std::filesystem::path drill_marker_file(const std::filesystem::path& dir);

}  // namespace visorlab::orchestrator
