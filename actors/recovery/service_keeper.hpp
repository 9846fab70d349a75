// The keeper of one service partition (actors/recovery): it owns the
// partition's OS process and drives its recoveries through the command
// partition, phase by phase, as spec'd for s-Par:
//
//   planned recover: [sriov: disable → devicedisabled] → pause every served
//     device → stop the process → start it → re-attach every device's channel
//     → resume → [sriov: enable]
//   crash: the process dies (kill -9); the keeper notices (CAF down message
//     from the middleman connection) → pause → restart (after restart_after)
//     → re-attach → resume, the same way.
//
// Every phase is timestamped (RecoveryTimes) for the drill report. The keeper
// is a detached actor: starting a process blocks while it comes up.
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "actors/runtime/interfaces.hpp"
#include "actors/service/service_process.hpp"

namespace visorlab::metrics {
class Metrics;
}

namespace visorlab::recovery {

struct KeeperOptions {
  service::ProcessOptions process;
  actors::command_actor commands;  // the command partition that pauses and resumes guests' devices
  caf::actor listener;             // gets (event_atom, RecoveryTimes) for crashes it noticed itself
  std::chrono::milliseconds command_timeout{10000};
  // visorlab_recovery_phase_seconds of every recovery it runs, and the
  // service partition's share of visorlab_partitions{host,state} (running,
  // recovering, failed). Null: none kept.
  std::shared_ptr<metrics::Metrics> metrics = nullptr;
  std::string host = "local";
};

actors::keeper_actor spawn_keeper(caf::actor_system& sys, KeeperOptions options);

// Steady-clock nanoseconds: the time base of RecoveryTimes.
std::int64_t now_ns();

}  // namespace visorlab::recovery
