#include "orchestrator/cluster_state.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace visorlab::orchestrator {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json device_json(const topology::Device& d) {
  json j = {{"name", d.name},        {"kind", topology::to_string(d.kind)}, {"service", d.service},
            {"disks", d.disks},      {"switch", d.switch_name},             {"sriov", d.sriov},
            {"bus", d.bus},          {"dev", d.dev}};
  if (d.disk_size) j["disk_size"] = *d.disk_size;
  return j;
}

topology::Device device_of(const json& j) {
  topology::Device d;
  d.name = j.at("name").get<std::string>();
  const auto kind = topology::device_kind_from(j.at("kind").get<std::string>());
  if (!kind) throw std::runtime_error("device " + d.name + ": unknown kind");
  d.kind = *kind;
  d.service = j.at("service").get<std::string>();
  d.disks = j.at("disks").get<std::vector<std::string>>();
  d.switch_name = j.at("switch").get<std::string>();
  d.sriov = j.at("sriov").get<bool>();
  d.bus = j.at("bus").get<std::uint32_t>();
  d.dev = j.at("dev").get<std::uint32_t>();
  if (j.contains("disk_size")) d.disk_size = j.at("disk_size").get<topology::Bytes>();
  return d;
}

actors::DeviceState state_of(const std::string& text) {
  for (auto s : {actors::DeviceState::probed, actors::DeviceState::running, actors::DeviceState::pausing,
                 actors::DeviceState::paused, actors::DeviceState::resuming, actors::DeviceState::no_driver})
    if (actors::to_string(s) == text) return s;
  throw std::runtime_error("unknown device state " + text);
}

}  // namespace

fs::path state_file(const fs::path& dir) { return dir / "cluster.json"; }

fs::path drill_marker_file(const fs::path& dir) { return dir / "drill-in-progress"; }

void save_state(const fs::path& dir, const ClusterState& st) {
  json devices = json::array();
  for (const auto& d : st.devices)
    devices.push_back({{"guest", d.guest}, {"spec", device_json(d.spec)}, {"state", actors::to_string(d.state)}});
  json created = json::object();
  for (const auto& [guest, list] : st.created) {
    json specs = json::array();
    for (const auto& d : list) specs.push_back(device_json(d));
    created[guest] = specs;
  }
  const json j = {{"version", 1},         {"tag", st.tag},         {"topology", st.topology_text},
                  {"topology_file", st.topology_file}, {"next_addr", st.next_addr}, {"devices", devices},
                  {"created", created}};
  fs::create_directories(dir);
  const fs::path file = state_file(dir), aside = file.string() + ".tmp";
  {
    std::ofstream out(aside, std::ios::trunc);
    out << j.dump(1) << "\n";
    out.close();
    if (!out) throw std::runtime_error("cannot write " + aside.string());
  }
  // On disk before it replaces the old state, and the rename on disk too: a
  // host that loses power comes back with the old state or the new one.
  const auto sync = [](const fs::path& p, int flags) {
    const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + p.string() + ": " + std::strerror(errno));
    const int r = ::fsync(fd);
    ::close(fd);
    if (r != 0) throw std::runtime_error("cannot sync " + p.string() + ": " + std::strerror(errno));
  };
  sync(aside, O_RDONLY);
  fs::rename(aside, file);
  sync(dir, O_RDONLY | O_DIRECTORY);
}

std::optional<ClusterState> load_state(const fs::path& dir) {
  const fs::path file = state_file(dir);
  std::ifstream in(file);
  if (!in) return std::nullopt;
  try {
    const json j = json::parse(in);
    if (j.at("version").get<int>() != 1) throw std::runtime_error("unknown version");
    ClusterState st;
    st.tag = j.at("tag").get<std::string>();
    st.topology_text = j.at("topology").get<std::string>();
    st.topology_file = j.at("topology_file").get<std::string>();
    st.next_addr = j.at("next_addr").get<std::uint64_t>();
    for (const auto& d : j.at("devices"))
      st.devices.push_back({d.at("guest").get<std::string>(), device_of(d.at("spec")),
                            state_of(d.at("state").get<std::string>())});
    for (const auto& [guest, list] : j.at("created").items())
      for (const auto& d : list) st.created[guest].push_back(device_of(d));
    return st;
  } catch (const std::exception& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

void clear_state(const fs::path& dir) {
  std::error_code ec;
  fs::remove(state_file(dir), ec);
}

}  // namespace visorlab::orchestrator
