// visorlab: the command-line entry point. Subcommands live one per file.
#include <iostream>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

int main(int argc, char** argv) {
  using namespace visorlab::cli;
  CLI::App app{"visorlab — recovery drills for s-Par style partitioned servers"};
  app.set_version_flag("--version", "visorlab " VISORLAB_VERSION);
  app.require_subcommand(1);
  Action action;
  add_channel_commands(app, action);
  add_drill_command(app, action);
  add_report_command(app, action);
  add_service_command(app, action);
  add_agent_commands(app, action);
  add_orchestrator_command(app, action);
  add_cluster_commands(app, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help or the parse error
    return code == 0 ? kPass : kBadInput;
  }
  try {
    return action ? action() : kBadInput;
  } catch (const std::exception& e) {
    std::cerr << "visorlab: " << e.what() << "\n";
    return kInfrastructure;
  }
}
