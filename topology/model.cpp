#include "topology/model.hpp"

#include <algorithm>

namespace visorlab::topology {

namespace {

template <typename T>
const T* find_named(const std::vector<T>& items, std::string_view name) {
  const auto it = std::find_if(items.begin(), items.end(), [&](const T& t) { return t.name == name; });
  return it == items.end() ? nullptr : &*it;
}

constexpr std::array<std::pair<StepKind, std::string_view>, 8> kStepNames{{
    {StepKind::recover, "recover"},
    {StepKind::crash, "crash"},
    {StepKind::pause, "pause"},
    {StepKind::resume, "resume"},
    {StepKind::destroy, "destroy"},
    {StepKind::create, "create"},
    {StepKind::partition, "partition"},
    {StepKind::kill_agent, "kill_agent"},
}};

}  // namespace

const Host* Topology::find_host(std::string_view n) const { return find_named(hosts, n); }
const Service* Topology::find_service(std::string_view n) const { return find_named(services, n); }
const Guest* Topology::find_guest(std::string_view n) const { return find_named(guests, n); }

const Device* Topology::find_device(std::string_view n) const {
  for (const auto& g : guests)
    if (const Device* d = find_named(g.devices, n)) return d;
  return nullptr;
}

std::string_view to_string(ServiceKind kind) {
  return kind == ServiceKind::io ? "io" : "console";
}

std::string_view to_string(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::vhba: return "vhba";
    case DeviceKind::vnic: return "vnic";
    case DeviceKind::keyboard: return "keyboard";
    case DeviceKind::mouse: return "mouse";
  }
  return "unknown";
}

std::string_view to_string(StepKind kind) {
  for (const auto& [k, name] : kStepNames)
    if (k == kind) return name;
  return "unknown";
}

std::optional<ServiceKind> service_kind_from(std::string_view text) {
  if (text == "io") return ServiceKind::io;
  if (text == "console") return ServiceKind::console;
  return std::nullopt;
}

std::optional<DeviceKind> device_kind_from(std::string_view text) {
  for (auto k : {DeviceKind::vhba, DeviceKind::vnic, DeviceKind::keyboard, DeviceKind::mouse})
    if (to_string(k) == text) return k;
  return std::nullopt;
}

std::optional<StepKind> step_kind_from(std::string_view text) {
  for (const auto& [k, name] : kStepNames)
    if (name == text) return k;
  return std::nullopt;
}

ServiceKind served_by(DeviceKind kind) {
  return kind == DeviceKind::vhba || kind == DeviceKind::vnic ? ServiceKind::io
                                                                : ServiceKind::console;
}

std::uint32_t bus_for(DeviceKind kind) {
  return served_by(kind) == ServiceKind::io ? kIoBus : kConsoleBus;
}

std::string bus_address(const Device& device) {
  return "vbus" + std::to_string(device.bus) + ":dev" + std::to_string(device.dev);
}

}  // namespace visorlab::topology
