// visorlab's error codes as gRPC statuses and back, and as exit codes: each
// mapped in one place, and a round trip loses nothing.
#define BOOST_TEST_MODULE api_status
#include <boost/test/unit_test.hpp>

#include "actors/runtime/error.hpp"
#include "api/status.hpp"
#include "channel/controlvm.hpp"
#include "cli/exit_codes.hpp"

using visorlab::Errc;
using visorlab::api::errc_of;
using visorlab::api::status_code;
using visorlab::cli::exit_code;
using grpc::StatusCode;

BOOST_AUTO_TEST_CASE(every_error_survives_a_round_trip_through_grpc) {
  for (const Errc e : {Errc::none, Errc::invalid_argument, Errc::not_found, Errc::failed_precondition,
                       Errc::unavailable, Errc::internal, Errc::cancelled})
    BOOST_TEST((errc_of(status_code(e)) == e), visorlab::to_string(e));
}

BOOST_AUTO_TEST_CASE(a_cluster_error_keeps_its_message) {
  const auto s = visorlab::api::to_status(visorlab::orchestrator::ClusterError(Errc::not_found, "unknown device g9/vhba0"));
  BOOST_TEST((s.error_code() == StatusCode::NOT_FOUND));
  BOOST_TEST(s.error_message() == "unknown device g9/vhba0");
}

BOOST_AUTO_TEST_CASE(the_callers_mistakes_exit_2_and_the_machines_exit_3) {
  for (const StatusCode c : {StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND, StatusCode::FAILED_PRECONDITION,
                             StatusCode::ALREADY_EXISTS, StatusCode::OUT_OF_RANGE, StatusCode::ABORTED,
                             StatusCode::UNIMPLEMENTED})
    BOOST_TEST(exit_code(errc_of(c)) == 2, static_cast<int>(c));
  for (const StatusCode c : {StatusCode::UNAVAILABLE, StatusCode::DEADLINE_EXCEEDED, StatusCode::INTERNAL,
                             StatusCode::UNKNOWN, StatusCode::DATA_LOSS, StatusCode::CANCELLED})
    BOOST_TEST(exit_code(errc_of(c)) == 3, static_cast<int>(c));
  BOOST_TEST(exit_code(errc_of(StatusCode::OK)) == 0);
}

BOOST_AUTO_TEST_CASE(an_error_crosses_actors_as_caf_error_with_code_and_message) {
  const caf::error e = visorlab::make_error(Errc::failed_precondition, "a recovery is already running");
  BOOST_TEST((visorlab::code_of(e) == Errc::failed_precondition));
  BOOST_TEST(visorlab::message_of(e) == "a recovery is already running");
  // CAF's own errors (a timeout, a dead actor) count as unavailable.
  BOOST_TEST((visorlab::code_of(caf::make_error(caf::sec::request_timeout)) == Errc::unavailable));
  BOOST_TEST((visorlab::code_of(caf::error{}) == Errc::none));
}

// CAF's own errors reach people in words, not as `exit_reason(…)` or
// `request_receiver_down`; a controlvm status says what it means.
BOOST_AUTO_TEST_CASE(caf_errors_and_controlvm_statuses_read_as_words) {
  const std::string gone = visorlab::message_of(caf::make_error(caf::sec::request_receiver_down));
  BOOST_TEST(gone == "the actor asked is gone (its process stopped or was lost)");
  const std::string lost = visorlab::message_of(caf::make_error(caf::exit_reason::remote_link_unreachable));
  BOOST_TEST(lost == "the connection to its host was lost");
  BOOST_TEST(visorlab::channel::controlvm::status_text(16) == "status 16 (Device or resource busy)");
  BOOST_TEST(visorlab::channel::controlvm::status_text(501) == "status 501 (DEVICE_INVALID)");
  BOOST_TEST(visorlab::channel::controlvm::status_text(70000) == "status 70000");
}
