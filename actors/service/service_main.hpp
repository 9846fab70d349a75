// The body of a service partition process (`visorlab service-partition`): an
// actor system with the middleman, one service actor published on loopback,
// its port written to `ready_fd` once it can take requests. It runs until
// SIGTERM or SIGINT — or dies by SIGKILL, which is the point of a crash drill.
#pragma once

#include "actors/service/service_partition.hpp"

namespace visorlab::service {

struct ServiceMainOptions {
  ServiceOptions service;
  int ready_fd = -1;             // receives "<port>\n"; -1: print it on stdout
  std::string bind = "127.0.0.1";
};

// Returns the process exit code.
int run_service_partition(const ServiceMainOptions& options);

}  // namespace visorlab::service
