// The visorlab.v1 API as automation sees it: a real daemon, the generated
// stub, and the status code and message of every kind of bad request.
#define BOOST_TEST_MODULE orchestrator_grpc
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <regex>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "tests/orchestrator/daemon.hpp"
#include "visorlab/v1/orchestrator.grpc.pb.h"

using namespace std::chrono_literals;
using grpc::StatusCode;
namespace v1 = visorlab::v1;

namespace {

struct Api {
  Api()
      : channel(grpc::CreateChannel(daemon.address, grpc::InsecureChannelCredentials())),
        stub(v1::Orchestrator::NewStub(channel)) {}
  ~Api() {
    stub.reset();  // an open connection holds the server's shutdown for its grace period
    channel.reset();
    daemon.process.signal(SIGTERM);
    daemon.process.wait(20s);
  }
  std::unique_ptr<grpc::ClientContext> context(std::chrono::seconds timeout = 30s) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + timeout);
    return c;
  }
  visorlab::test::Orchestrator daemon;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Orchestrator::Stub> stub;
};

bool says(const grpc::Status& s, const std::string& text) {
  return s.error_message().find(text) != std::string::npos;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(grpc_status, Api)

BOOST_AUTO_TEST_CASE(device_calls_name_the_bad_device) {
  for (const std::string device : {"", "g0", "g0/", "/vhba0", "g0/floppy0", "g0/vhba", "g0/vhbaX"}) {
    v1::PauseDeviceRequest req;
    req.set_device(device);
    v1::PauseDeviceResponse resp;
    const auto s = stub->PauseDevice(context().get(), req, &resp);
    BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT),
               "'" << device << "': " << s.error_message());
    BOOST_TEST(!s.error_message().empty());
  }
  v1::DestroyDeviceRequest req;
  req.set_device("nosuch/vhba0");
  v1::DestroyDeviceResponse resp;
  const auto s = stub->DestroyDevice(context().get(), req, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::NOT_FOUND), s.error_message());
  BOOST_TEST(says(s, "nosuch/vhba0"), s.error_message());
}

BOOST_AUTO_TEST_CASE(service_calls_name_the_bad_service) {
  v1::RecoverServiceRequest empty;
  v1::RecoverServiceResponse resp;
  auto s = stub->RecoverService(context().get(), empty, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT), s.error_message());

  v1::CrashServiceRequest crash;
  crash.set_service("io9");
  v1::CrashServiceResponse crashed;
  s = stub->CrashService(context().get(), crash, &crashed);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::NOT_FOUND), s.error_message());
  BOOST_TEST(says(s, "io9"), s.error_message());
}

BOOST_AUTO_TEST_CASE(create_checks_its_fields) {
  v1::CreateDeviceRequest req;
  v1::CreateDeviceResponse resp;
  auto s = stub->CreateDevice(context().get(), req, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT), s.error_message());
  req.set_guest("g0");
  req.set_kind("floppy");
  req.set_service("io0");
  s = stub->CreateDevice(context().get(), req, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT), s.error_message());
  BOOST_TEST(says(s, "floppy"), s.error_message());
  req.set_kind("vhba");
  s = stub->CreateDevice(context().get(), req, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::NOT_FOUND), s.error_message());
}

BOOST_AUTO_TEST_CASE(lists_need_what_they_list) {
  v1::ListDevicesResponse devices;
  auto s = stub->ListDevices(context().get(), {}, &devices);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::FAILED_PRECONDITION),
             s.error_message());
  v1::ListAgentsResponse agents;
  s = stub->ListAgents(context().get(), {}, &agents);
  BOOST_TEST(s.ok(), s.error_message());
  BOOST_TEST(agents.agents_size() == 0);
  v1::ListAgentsRequest one;
  one.set_host("a");
  s = stub->ListAgents(context().get(), one, &agents);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::NOT_FOUND), s.error_message());
}

BOOST_AUTO_TEST_CASE(topologies_are_checked_with_positions) {
  v1::ApplyTopologyRequest req;
  v1::ApplyTopologyResponse resp;
  auto s = stub->ApplyTopology(context().get(), req, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT), s.error_message());
  req.set_topology_yaml("version: 1\nname: [x\n");
  req.set_file_label("t.yaml");
  s = stub->ApplyTopology(context().get(), req, &resp);
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT), s.error_message());
  BOOST_TEST(std::regex_search(s.error_message(), std::regex(R"(^t\.yaml:\d+:\d+: )")), s.error_message());

  v1::RunDrillRequest drill;
  drill.set_topology_yaml("version: 7\n");
  drill.set_file_label("d.yaml");
  const auto drill_context = context();  // must outlive the stream
  auto reader = stub->RunDrill(drill_context.get(), drill);
  v1::DrillEvent event;
  BOOST_TEST(!reader->Read(&event));
  s = reader->Finish();
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::INVALID_ARGUMENT), s.error_message());
  BOOST_TEST(std::regex_search(s.error_message(), std::regex(R"(^d\.yaml:1:\d+: version: )")), s.error_message());
}

BOOST_AUTO_TEST_CASE(a_following_watch_ends_when_the_client_cancels) {
  grpc::ClientContext ctx;
  v1::WatchEventsRequest req;
  req.set_follow(true);
  auto reader = stub->WatchEvents(&ctx, req);
  std::thread cancel([&] {
    std::this_thread::sleep_for(300ms);
    ctx.TryCancel();
  });
  v1::Event e;
  const auto start = std::chrono::steady_clock::now();
  while (reader->Read(&e)) {
  }
  const auto s = reader->Finish();
  cancel.join();
  BOOST_TEST(static_cast<int>(s.error_code()) == static_cast<int>(StatusCode::CANCELLED), s.error_message());
  BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));

  // And the server is still there for the next call.
  v1::ListAgentsResponse agents;
  BOOST_TEST(stub->ListAgents(context().get(), {}, &agents).ok());
}

BOOST_AUTO_TEST_SUITE_END()
