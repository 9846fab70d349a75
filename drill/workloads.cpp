#include "drill/workloads.hpp"

#include <caf/scoped_actor.hpp>

#include <optional>
#include <thread>

#include "drill/history_wire.hpp"

namespace visorlab::drill {

using orchestrator::ClusterError;
using namespace visorlab::actors;

actors::WorkloadSpec workload_spec(const topology::Topology& t) {
  WorkloadSpec spec;
  spec.seed = t.drill.seed;
  spec.block_size = static_cast<std::uint32_t>(t.workload.disk.block_size);
  spec.queue_depth = t.workload.disk.queue_depth;
  spec.read_ratio = t.workload.disk.read_ratio;
  spec.verify = t.workload.disk.verify;
  spec.frame_size = static_cast<std::uint32_t>(t.workload.net.frame_size);
  spec.net_rate = t.workload.net.rate_per_s;
  spec.input_rate = t.workload.input.rate_per_s;
  spec.record = t.workload.record;
  return spec;
}

namespace {

// Sends one request to every guest's workload first (`send(self, guest)`),
// then takes the answers: one round trip for all guests, not one each.
// `on_reply` sees each answer; the first error is thrown once every answer
// is in, unless `tolerate` (then errors are skipped).
template <class Send, class OnReply>
void fan_out(orchestrator::Cluster& cluster, const std::string& what, bool tolerate, Send send, OnReply on_reply) {
  caf::scoped_actor self{cluster.system()};
  const auto guests = cluster.guests();
  using Handle = decltype(send(self, std::string()));
  std::vector<Handle> pending;
  pending.reserve(guests.size());
  for (const auto& g : guests) pending.push_back(send(self, g));
  std::optional<ClusterError> failed;
  for (std::size_t i = 0; i < guests.size(); ++i)
    pending[i].receive(on_reply, [&](caf::error& e) {
      if (!tolerate && !failed) failed.emplace(what + " of " + guests[i], e);
    });
  if (failed) throw *failed;
}

}  // namespace

Workloads::Workloads(orchestrator::Cluster& cluster, std::chrono::milliseconds timeout)
    : cluster_(cluster), timeout_(timeout) {}

void Workloads::start(const WorkloadSpec& spec, std::int64_t start_ns,
                      const std::map<std::string, std::vector<std::string>>& peers) {
  fan_out(
      cluster_, "start the workload", false,
      [&](caf::scoped_actor& self, const std::string& g) {
        WorkloadStart s{spec, start_ns, {}};
        if (const auto it = peers.find(g); it != peers.end()) s.peers = it->second;
        return self->request(cluster_.workload(g), timeout_, start_atom::value, std::move(s));
      },
      [] {});
  // Input after the clocks: every report a console produces is on one.
  cluster_.set_input_rate(spec.input_rate);
}

void Workloads::stop() {
  // Input first: what is on its way is still taken in and recorded.
  cluster_.set_input_rate(0);
  fan_out(
      cluster_, "stop the workload", false,
      [&](caf::scoped_actor& self, const std::string& g) {
        return self->request(cluster_.workload(g), timeout_, stop_atom::value);
      },
      [] {});
}

bool Workloads::idle() {
  bool all = true;
  fan_out(
      cluster_, "the workload", false,
      [&](caf::scoped_actor& self, const std::string& g) {
        return self->request(cluster_.workload(g), timeout_, idle_atom::value);
      },
      [&](bool idle) { all = all && idle; });
  return all;
}

actors::WorkloadStats Workloads::stats() {
  actors::WorkloadStats total;
  // A guest busy in a recovery may not answer in time: the next look catches up.
  fan_out(
      cluster_, "the workload", true,
      [&](caf::scoped_actor& self, const std::string& g) {
        return self->request(cluster_.workload(g), timeout_, stats_atom::value);
      },
      [&](const WorkloadStats& s) {
        total.completed += s.completed;
        total.frames_received += s.frames_received;
      });
  return total;
}

double Workloads::completed() { return static_cast<double>(stats().completed); }

void Workloads::drain(HistorySpool& spool, bool every_guest) {
  caf::scoped_actor self{cluster_.system()};
  for (const auto& g : cluster_.guests()) {
    const workload_actor w = cluster_.workload(g);
    std::uint64_t& first = drained_[g];
    for (bool more = true; more;) {
      // Asking from `first` tells the workload it may forget what lies below.
      std::optional<HistoryChunk> chunk;
      std::optional<ClusterError> failed;
      self->request(w, timeout_, collect_atom::value, first)
          .receive([&](HistoryChunk& c) { chunk = std::move(c); },
                   [&](caf::error& e) { failed.emplace("collect the history of " + g, e); });
      if (failed) {
        if (every_guest) throw *failed;
        break;  // the next drain asks again from the same `first`: nothing is lost
      }
      if (chunk->first != first)
        throw ClusterError(Errc::internal, "the history of " + g + " lost events " + std::to_string(first) + " to " +
                                               std::to_string(chunk->first) + " (its workload forgot them)");
      History piece;
      try {
        add_chunk(piece, *chunk);
      } catch (const std::invalid_argument& e) {
        throw ClusterError(Errc::internal, "the history of " + g + ": " + e.what());
      }
      try {
        spool.add(g, piece);
      } catch (const std::runtime_error& e) {
        throw ClusterError(Errc::internal, e.what());
      }
      first += chunk->records.size();
      more = chunk->more;
    }
  }
}

void Workloads::quiesce(const std::string& device) {
  const auto name = topology::parse_device_name(device);
  if (!name) throw ClusterError(Errc::invalid_argument, "not a device name: " + device);
  const workload_actor w = cluster_.workload(name->guest);
  caf::scoped_actor self{cluster_.system()};
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    bool quiesced = false;
    self->request(w, timeout_, quiesce_atom::value, device)
        .receive([&](bool q) { quiesced = q; },
                 [&](caf::error& e) { throw ClusterError("quiesce " + device, e); });
    if (quiesced) return;
    if (std::chrono::steady_clock::now() > deadline)
      throw ClusterError(Errc::unavailable, "destroy " + device + ": the guest's I/O on it did not drain");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

}  // namespace visorlab::drill
