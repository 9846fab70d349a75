// `visorlab up FILE` without --orchestrator (and without
// $VISORLAB_ORCHESTRATOR): a local cluster in the foreground. This process
// runs the orchestrator and serves its gRPC API; one agent process per host
// of FILE; FILE applied; then it stays up until Ctrl-C, SIGTERM, SIGHUP or
// `visorlab down`, and tears everything down.
#pragma once

#include <string>

namespace visorlab::cli {

struct LocalUpOptions {
  std::string file;
  std::string listen;   // "" = orchestrator::kDefaultListen
  std::string run_dir;  // "" = a fresh temporary directory, removed at exit
  std::string metrics;  // "" = 127.0.0.1:0; "none" = not served
};

int run_local_up(const LocalUpOptions& options);

}  // namespace visorlab::cli
