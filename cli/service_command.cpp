// `visorlab service-partition`: the body of a service partition process. The
// agent starts it (one per service in the topology) and talks to it through
// CAF; people rarely run it by hand, but --help says what it takes.
#include "actors/service/service_main.hpp"
#include "cli/commands.hpp"

#include <memory>
#include <string>

namespace visorlab::cli {

void add_service_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<service::ServiceMainOptions>();
  auto* cmd = app.add_subcommand("service-partition", "Run one service partition (IO or console) as this process");
  cmd->add_option("--name", options->service.name, "Service name from the topology, e.g. io0")->required();
  auto kind = std::make_shared<std::string>();
  cmd->add_option("--kind", *kind, "io or console")->required()->check(CLI::IsMember({"io", "console"}));
  cmd->add_option("--ready-fd", options->ready_fd, "Write the actor's port to this fd once serving (default stdout)");
  cmd->add_option("--bind", options->bind, "Address to publish the actor on")->capture_default_str();
  cmd->add_option("--input-rate", options->service.input_rate, "Console: reports per second per device")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&action, options, kind] {
    options->service.kind = *topology::service_kind_from(*kind);  // checked above
    action = [options] { return service::run_service_partition(*options); };
  });
}

}  // namespace visorlab::cli
