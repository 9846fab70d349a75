// visorlab's errors as gRPC statuses and back: the one place the two sets of
// codes meet (the CLI turns a status back into an Errc, then an exit code).
#pragma once

#include <grpcpp/support/status.h>

#include "actors/runtime/error.hpp"
#include "orchestrator/cluster.hpp"

namespace visorlab::api {

grpc::StatusCode status_code(Errc code);
// A status code a server sent, as the visorlab error it stands for.
Errc errc_of(grpc::StatusCode code);

// The gRPC status for a cluster error: its code mapped, its message kept.
grpc::Status to_status(const orchestrator::ClusterError& error);

}  // namespace visorlab::api
