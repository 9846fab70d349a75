#include "topology/model.hpp"

#include <algorithm>

namespace visorlab::topology {

namespace {

template <typename T>
const T* find_named(const std::vector<T>& items, std::string_view name) {
  const auto it = std::find_if(items.begin(), items.end(), [&](const T& t) { return t.name == name; });
  return it == items.end() ? nullptr : &*it;
}

constexpr std::array<std::pair<StepKind, std::string_view>, 9> kStepNames{{
    {StepKind::recover, "recover"},
    {StepKind::crash, "crash"},
    {StepKind::pause, "pause"},
    {StepKind::resume, "resume"},
    {StepKind::destroy, "destroy"},
    {StepKind::create, "create"},
    {StepKind::partition, "partition"},
    {StepKind::kill_agent, "kill_agent"},
    {StepKind::lose_writes, "lose_writes"},
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

std::string device_name(const std::string& guest, DeviceKind kind, std::uint32_t n) {
  return guest + "/" + std::string(to_string(kind)) + std::to_string(n);
}

std::optional<DeviceName> parse_device_name(std::string_view text) {
  const auto slash = text.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view tail = text.substr(slash + 1);
  const auto digits = tail.find_first_of("0123456789");
  if (digits == std::string_view::npos || digits == 0) return std::nullopt;
  const auto kind = device_kind_from(tail.substr(0, digits));
  if (!kind) return std::nullopt;
  const std::string_view number = tail.substr(digits);
  if (number.size() > 9 || number.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  return DeviceName{std::string(text.substr(0, slash)), *kind, static_cast<std::uint32_t>(std::stoul(std::string(number)))};
}

}  // namespace visorlab::topology
