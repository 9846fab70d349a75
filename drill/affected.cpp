#include "drill/affected.hpp"

#include <algorithm>

namespace visorlab::drill {
namespace {

using topology::Device;
using topology::StepKind;

// Every device the drill may see: declared ones, then ones steps create.
template <class F>
void for_each_device(const topology::Topology& t, F f) {
  for (const auto& g : t.guests) {
    for (const auto& d : g.devices) f(g, d);
  }
  for (const auto& s : t.drill.steps) {
    if (s.kind != StepKind::create || !s.created) continue;
    if (const auto* g = t.find_guest(s.target())) f(*g, *s.created);
  }
}

std::string service_host(const topology::Topology& t, const Device& d) {
  const auto* s = t.find_service(d.service);
  return s ? s->host : std::string();
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace

std::vector<std::string> affected_devices(const topology::Topology& t, const topology::Step& step) {
  std::vector<std::string> out;
  const auto add = [&](const std::string& name) {
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  switch (step.kind) {
    case StepKind::recover:
    case StepKind::crash:
    case StepKind::lose_writes:
      for_each_device(t, [&](const topology::Guest&, const Device& d) {
        if (d.service == step.target()) add(d.name);
      });
      break;
    case StepKind::pause:
    case StepKind::resume:
    case StepKind::destroy:
      add(step.target());
      break;
    case StepKind::create:
      if (step.created) add(step.created->name);
      break;
    case StepKind::partition: {
      if (step.targets.size() < 2) break;
      const auto& a = step.targets[0];
      const auto& b = step.targets[1];
      for_each_device(t, [&](const topology::Guest& g, const Device& d) {
        const auto sh = service_host(t, d);
        if ((g.host == a && sh == b) || (g.host == b && sh == a)) add(d.name);
      });
      break;
    }
    case StepKind::kill_agent:
      for_each_device(t, [&](const topology::Guest& g, const Device& d) {
        if (g.host == step.target() || service_host(t, d) == step.target()) add(d.name);
      });
      break;
  }
  return out;
}

FaultWindow fault_window(const topology::Topology& t, const topology::Step& step, Nanos start, Nanos end) {
  FaultWindow w;
  w.step = step.index;
  w.kind = std::string(topology::to_string(step.kind));
  w.target = join(step.targets);
  w.start = start;
  w.end = end;
  w.held = step.for_duration.has_value();
  w.affected = affected_devices(t, step);
  return w;
}

}  // namespace visorlab::drill
