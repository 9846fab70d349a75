// The visorlab.v1.Orchestrator gRPC service over an orchestrator's Cluster
// and the drill engine. Every request is
// checked before the cluster sees it — an empty or malformed name is
// INVALID_ARGUMENT, an unknown guest, device, service or agent NOT_FOUND, each
// with a message naming it — and every error the cluster raises becomes a
// status (to_status), never a crash or a hang.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "drill/runner.hpp"
#include "orchestrator/cluster.hpp"
#include "topology/model.hpp"
#include "visorlab/v1/orchestrator.grpc.pb.h"

namespace visorlab::api {

using orchestrator::Cluster;
using orchestrator::ClusterError;

class OrchestratorService final : public visorlab::v1::Orchestrator::Service {
 public:
  // RunDrill runs drill::run_drill on `cluster` (kill_agent steps need a
  // cluster that owns its agents).
  explicit OrchestratorService(Cluster& cluster);

  // Ends following WatchEvents streams within one poll (200 ms) and refuses
  // new calls with UNAVAILABLE; call before shutting the server down.
  void stop();

  grpc::Status ApplyTopology(grpc::ServerContext*, const v1::ApplyTopologyRequest*,
                             v1::ApplyTopologyResponse*) override;
  grpc::Status Teardown(grpc::ServerContext*, const v1::TeardownRequest*, v1::TeardownResponse*) override;
  grpc::Status ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest*, v1::ListAgentsResponse*) override;
  grpc::Status ListDevices(grpc::ServerContext*, const v1::ListDevicesRequest*, v1::ListDevicesResponse*) override;
  grpc::Status CreateDevice(grpc::ServerContext*, const v1::CreateDeviceRequest*,
                            v1::CreateDeviceResponse*) override;
  grpc::Status DestroyDevice(grpc::ServerContext*, const v1::DestroyDeviceRequest*,
                             v1::DestroyDeviceResponse*) override;
  grpc::Status PauseDevice(grpc::ServerContext*, const v1::PauseDeviceRequest*, v1::PauseDeviceResponse*) override;
  grpc::Status ResumeDevice(grpc::ServerContext*, const v1::ResumeDeviceRequest*,
                            v1::ResumeDeviceResponse*) override;
  grpc::Status RecoverService(grpc::ServerContext*, const v1::RecoverServiceRequest*,
                              v1::RecoverServiceResponse*) override;
  grpc::Status CrashService(grpc::ServerContext*, const v1::CrashServiceRequest*,
                            v1::CrashServiceResponse*) override;
  grpc::Status WatchEvents(grpc::ServerContext*, const v1::WatchEventsRequest*,
                           grpc::ServerWriter<v1::Event>*) override;
  grpc::Status RunDrill(grpc::ServerContext*, const v1::RunDrillRequest*,
                        grpc::ServerWriter<v1::DrillEvent>*) override;

 private:
  // The applied topology, copied; nullopt-like `false` when none is applied.
  bool applied_topology(topology::Topology& out) const;
  grpc::Status check_device(const std::string& device);
  grpc::Status check_service(const std::string& service);
  void name_new_device(const topology::Topology& topology, const std::string& guest, topology::Device& device);

  Cluster& cluster_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> drill_running_{false};
};

}  // namespace visorlab::api
