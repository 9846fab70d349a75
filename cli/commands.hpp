// Each `visorlab` subcommand registers its options on the CLI11 app and returns
// the action to run once parsing succeeded.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace visorlab::cli {

using Action = std::function<int()>;

// Registers `channel create` and `channel inspect` under `app`.
void add_channel_commands(CLI::App& app, Action& action);
// Registers `service-partition` (the service partition process).
void add_service_command(CLI::App& app, Action& action);
// Registers `agent` and `partition-host` (the daemons of every host).
void add_agent_commands(CLI::App& app, Action& action);
// Registers `drill`.
void add_drill_command(CLI::App& app, Action& action);
// Registers `report` (a drill judged again from its saved history).
void add_report_command(CLI::App& app, Action& action);
// Registers `orchestrator` (the daemon serving the visorlab.v1 gRPC API).
void add_orchestrator_command(CLI::App& app, Action& action);
// Registers the commands that drive a cluster through its orchestrator: up,
// down, devices, agents, create, destroy, pause, resume, recover, crash, events.
void add_cluster_commands(CLI::App& app, Action& action);

}  // namespace visorlab::cli
