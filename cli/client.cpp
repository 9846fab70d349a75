#include "cli/client.hpp"

#include <cstdlib>
#include <iostream>

#include "api/status.hpp"
#include "cli/exit_codes.hpp"
#include "net/host_port.hpp"

namespace visorlab::cli {
namespace {

constexpr int kMaxMessageBytes = 64 << 20;  // a drill report with its plot

}  // namespace

CLI::Option* add_orchestrator_option(CLI::App& command, std::string& address) {
  return command.add_option("--orchestrator", address,
                            std::string("Orchestrator to use, HOST:PORT (default: $") + kOrchestratorEnv + ")");
}

int exit_code_for(grpc::StatusCode code) { return exit_code(api::errc_of(code)); }

OrchestratorClient::OrchestratorClient(std::string command, std::string address)
    : command_(std::move(command)), address_(std::move(address)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  channel_ = grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
  stub_ = visorlab::v1::Orchestrator::NewStub(channel_);
}

std::unique_ptr<grpc::ClientContext> OrchestratorClient::context(std::chrono::seconds timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout.count() > 0) context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

int OrchestratorClient::fail(const grpc::Status& status) const {
  const std::string prefix = "visorlab " + command_ + ": ";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // Never connected: the orchestrator is not there. Connected: the
      // cluster behind it reports something unavailable (an agent, a partition).
      if (channel_->GetState(false) != GRPC_CHANNEL_READY) {
        std::cerr << prefix << "cannot reach the orchestrator at " << address_ << ": " << status.error_message()
                  << " (is `visorlab orchestrator` running there?)\n";
        return kInfrastructure;
      }
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      std::cerr << prefix << "the orchestrator at " << address_ << " did not answer in time: "
                << status.error_message() << "\n";
      return kInfrastructure;
    default:
      break;
  }
  std::cerr << prefix << status.error_message() << "\n";
  return exit_code_for(status.error_code());
}

int with_orchestrator(const std::string& command, const std::string& flag,
                      const std::function<int(OrchestratorClient&)>& body) {
  std::string address = flag;
  if (address.empty()) {
    if (const char* env = std::getenv(kOrchestratorEnv)) address = env;
  }
  if (address.empty()) {
    std::cerr << "visorlab " << command << ": no cluster: pass --orchestrator HOST:PORT or set " << kOrchestratorEnv
              << " (start one with `visorlab orchestrator`, or run `visorlab drill` for a local cluster)\n";
    return kBadInput;
  }
  try {
    net::parse_host_port(address, "--orchestrator", net::PortUse::connect);
  } catch (const std::invalid_argument& e) {
    std::cerr << "visorlab " << command << ": " << e.what() << "\n";
    return kBadInput;
  }
  OrchestratorClient client(command, address);
  return body(client);
}

}  // namespace visorlab::cli
