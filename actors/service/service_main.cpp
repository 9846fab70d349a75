#include "actors/service/service_main.hpp"

#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

#include "actors/runtime/config.hpp"
#include "actors/service/service_actor.hpp"
#include "actors/runtime/error.hpp"

namespace visorlab::service {

int run_service_partition(const ServiceMainOptions& options) {
  try {
    ServicePartition probe(options.service);  // rejects a bad kind before anything starts
  } catch (const std::exception& e) {
    std::fprintf(stderr, "visorlab service-partition: %s\n", e.what());
    return 2;
  }
  // Block the stop signals before any thread starts, so that only sigwait
  // below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  actors::Config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto service = spawn_service(sys, options.service);
  auto port = sys.middleman().publish(service, 0, options.bind.c_str());
  if (!port) {
    std::fprintf(stderr, "visorlab service-partition: cannot publish on %s: %s\n", options.bind.c_str(),
                 message_of(port.error()).c_str());
    return 3;
  }
  const std::string line = std::to_string(*port) + "\n";
  const int fd = options.ready_fd >= 0 ? options.ready_fd : STDOUT_FILENO;
  if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 3;
  if (options.ready_fd >= 0) close(options.ready_fd);
  spdlog::info("service partition {} ({}) serving on {}:{}", options.service.name, topology::to_string(options.service.kind),
               options.bind, *port);

  int sig = 0;
  sigwait(&stop, &sig);
  spdlog::info("service partition {} stopping on signal {}", options.service.name, sig);
  caf::anon_send_exit(service, caf::exit_reason::user_shutdown);
  return 0;
}

}  // namespace visorlab::service
