// The CLI's side of the visorlab.v1 API: which orchestrator a command talks
// to (--orchestrator, else $VISORLAB_ORCHESTRATOR), the stub, and how a
// failed call becomes a message and an exit code.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include "visorlab/v1/orchestrator.grpc.pb.h"

namespace visorlab::cli {

inline constexpr const char* kOrchestratorEnv = "VISORLAB_ORCHESTRATOR";

// Adds `--orchestrator HOST:PORT` to a command that needs a cluster.
CLI::Option* add_orchestrator_option(CLI::App& command, std::string& address);

// The exit code (exit_codes.hpp) for a failed call: the request's fault
// (invalid, unknown, nothing applied) is 2, the cluster's or the network's 3.
int exit_code_for(grpc::StatusCode code);

class OrchestratorClient {
 public:
  OrchestratorClient(std::string command, std::string address);

  const std::string& address() const { return address_; }
  visorlab::v1::Orchestrator::Stub& stub() { return *stub_; }

  // A context for one call, with a deadline (none for zero).
  std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds timeout = std::chrono::seconds(60)) const;

  // Prints "visorlab COMMAND: …" for a failed call and returns its exit code.
  int fail(const grpc::Status& status) const;

 private:
  std::string command_;
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<visorlab::v1::Orchestrator::Stub> stub_;
};

// Runs `body` against the orchestrator named by `flag` or the environment.
// Without either, prints how to get a cluster and returns 2; a malformed
// address is 2 as well.
int with_orchestrator(const std::string& command, const std::string& flag,
                      const std::function<int(OrchestratorClient&)>& body);

}  // namespace visorlab::cli
