// The visorlab.v1 API as automation sees it: a real daemon, the generated
// stub, and the status code and message of every kind of bad request.
#define BOOST_TEST_MODULE orchestrator_grpc
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <regex>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
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

// Raw protobuf bytes in and out of a ByteBuffer: the standard services'
// messages are a few bytes, written here by hand rather than generated.
grpc::ByteBuffer bytes_in(const std::string& raw) {
  grpc::Slice slice(raw.data(), raw.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string bytes_out(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// Waits for `tag` on `cq` (every step of these calls is bounded by the deadline).
bool next(grpc::CompletionQueue& cq, void* tag) {
  void* got = nullptr;
  bool ok = false;
  return cq.Next(&got, &ok) && got == tag && ok;
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

// grpc.health.v1: the orchestrator says SERVING (HealthCheckResponse
// {status: SERVING} is the two bytes 08 01).
BOOST_AUTO_TEST_CASE(the_health_service_says_serving) {
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  auto ctx = context();
  auto call = generic.PrepareUnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", bytes_in(""), &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  int tag = 0;
  call->Finish(&reply, &status, &tag);
  BOOST_TEST_REQUIRE(next(cq, &tag));
  BOOST_TEST(status.ok(), status.error_message());
  BOOST_TEST(bytes_out(reply) == std::string("\x08\x01"));
}

// Server reflection lists the API (ServerReflectionRequest {list_services: ""}
// is 3a 00): grpcurl needs nothing but the address.
BOOST_AUTO_TEST_CASE(reflection_lists_the_orchestrator_service) {
  grpc::GenericStub generic(channel);
  grpc::CompletionQueue cq;
  auto ctx = context();
  int tag = 0;
  auto call = generic.PrepareCall(ctx.get(), "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(&tag);
  BOOST_TEST_REQUIRE(next(cq, &tag));
  call->Write(bytes_in(std::string("\x3a\x00", 2)), &tag);
  BOOST_TEST_REQUIRE(next(cq, &tag));
  call->WritesDone(&tag);
  BOOST_TEST_REQUIRE(next(cq, &tag));
  grpc::ByteBuffer reply;
  call->Read(&reply, &tag);
  BOOST_TEST_REQUIRE(next(cq, &tag));
  const std::string listed = bytes_out(reply);
  BOOST_TEST(listed.find("visorlab.v1.Orchestrator") != std::string::npos, listed);
  BOOST_TEST(listed.find("grpc.health.v1.Health") != std::string::npos, listed);
  grpc::Status status;
  call->Finish(&status, &tag);
  BOOST_TEST_REQUIRE(next(cq, &tag));
  BOOST_TEST(status.ok(), status.error_message());
}

BOOST_AUTO_TEST_SUITE_END()
