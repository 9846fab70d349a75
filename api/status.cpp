#include "api/status.hpp"

namespace visorlab::api {

using grpc::StatusCode;

grpc::StatusCode status_code(Errc code) {
  switch (code) {
    case Errc::none: return StatusCode::OK;
    case Errc::invalid_argument: return StatusCode::INVALID_ARGUMENT;
    case Errc::not_found: return StatusCode::NOT_FOUND;
    case Errc::failed_precondition: return StatusCode::FAILED_PRECONDITION;
    case Errc::unavailable: return StatusCode::UNAVAILABLE;
    case Errc::cancelled: return StatusCode::CANCELLED;
    case Errc::internal: break;
  }
  return StatusCode::INTERNAL;
}

Errc errc_of(grpc::StatusCode code) {
  switch (code) {
    case StatusCode::OK: return Errc::none;
    case StatusCode::INVALID_ARGUMENT:
    case StatusCode::OUT_OF_RANGE:
    case StatusCode::ALREADY_EXISTS: return Errc::invalid_argument;
    case StatusCode::NOT_FOUND: return Errc::not_found;
    case StatusCode::FAILED_PRECONDITION:
    case StatusCode::ABORTED:         // a drill already running: try again later
    case StatusCode::UNIMPLEMENTED: return Errc::failed_precondition;
    case StatusCode::UNAVAILABLE:
    case StatusCode::DEADLINE_EXCEEDED: return Errc::unavailable;
    case StatusCode::CANCELLED: return Errc::cancelled;
    default: return Errc::internal;
  }
}

grpc::Status to_status(const orchestrator::ClusterError& error) {
  return {status_code(error.code()), error.what()};
}

}  // namespace visorlab::api
