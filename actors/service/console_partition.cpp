#include "actors/service/console_partition.hpp"

#include <stdexcept>

namespace visorlab::service {

InputBackend& ConsolePartition::attach(const std::string& name, channel::Channel& channel,
                                       channel::ChannelKind kind, std::uint64_t first_seq) {
  if (name.empty()) throw std::invalid_argument("console partition: empty device name");
  if (backends_.contains(name)) throw std::invalid_argument("console partition: " + name + " is already attached");
  auto backend = std::make_unique<InputBackend>(channel, kind, first_seq);
  InputBackend& ref = *backend;
  backends_.emplace(name, std::move(backend));
  return ref;
}

std::optional<std::uint64_t> ConsolePartition::detach(const std::string& name) {
  const auto it = backends_.find(name);
  if (it == backends_.end()) return std::nullopt;
  const std::uint64_t next = it->second->next_seq();
  backends_.erase(it);
  return next;
}

bool ConsolePartition::pause(const std::string& name) {
  InputBackend* b = find(name);
  if (b) b->pause();
  return b != nullptr;
}

bool ConsolePartition::resume(const std::string& name) {
  InputBackend* b = find(name);
  if (b) b->resume();
  return b != nullptr;
}

std::size_t ConsolePartition::poll(std::size_t max_per_device) {
  std::size_t total = 0;
  for (auto& [name, backend] : backends_) total += backend->poll(max_per_device);
  return total;
}

std::optional<std::uint64_t> ConsolePartition::produce(const std::string& name,
                                                       const channel::input::Activity& activity) {
  InputBackend* b = find(name);
  if (!b) return std::nullopt;
  return b->produce(activity);
}

bool ConsolePartition::produce(const std::string& name, std::size_t n) {
  InputBackend* b = find(name);
  if (b) b->produce(n);
  return b != nullptr;
}

void ConsolePartition::produce_all(std::size_t n) {
  for (auto& [name, backend] : backends_) backend->produce(n);
}

InputBackend* ConsolePartition::find(const std::string& name) {
  const auto it = backends_.find(name);
  return it == backends_.end() ? nullptr : it->second.get();
}

std::vector<std::string> ConsolePartition::names() const {
  std::vector<std::string> out;
  out.reserve(backends_.size());
  for (const auto& [name, backend] : backends_) out.push_back(name);
  return out;
}

InputBackendCounts ConsolePartition::totals() const {
  InputBackendCounts sum;
  for (const auto& [name, backend] : backends_) {
    const InputBackendCounts c = backend->counts();
    sum.produced += c.produced;
    sum.delivered += c.delivered;
    sum.held += c.held;
    sum.dropped += c.dropped;
  }
  return sum;
}

}  // namespace visorlab::service
