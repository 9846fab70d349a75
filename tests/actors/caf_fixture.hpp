// CAF's deterministic test fixture under Boost.Test: one scheduler that runs
// only when told (sched.run()), with visorlab's message types announced.
// CAF's own test DSL (expect) crashes under Boost.Test, so requests are
// awaited by running the scheduler until the reply is in self's mailbox.
#pragma once

#define CAF_TEST_NO_MAIN
#include <caf/test/unit_test_impl.hpp>  // the engine's statics, no main
#include <caf/test/dsl.hpp>
// The DSL's macros (unused here) would rewrite visorlab names like expect().
#undef expect
#undef allow
#undef disallow
#undef inject

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <thread>

#include "actors/runtime/config.hpp"

namespace visorlab::test {

struct ActorTestConfig : caf::actor_system_config {
  ActorTestConfig() { actors::add_message_types(*this); }
};

struct ActorFixture : test_coordinator_fixture<ActorTestConfig> {
  // Runs messages and fires timers (actors' poll ticks) until self has a
  // message waiting, for at most `limit` of real time: some answers wait on
  // the wall clock (the chipset's parahotplug expiry).
  bool settle(std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
      sched.run();
      if (!self->mailbox().empty()) return true;
      sched.trigger_timeouts();
      if (i % 64 == 63) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return !self->mailbox().empty();
  }

  // A request's reply (fails the test on an error or no reply).
  template <class T, class Handle, class... Ts>
  T ask(const Handle& dest, Ts&&... xs) {
    auto rh = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    BOOST_REQUIRE_MESSAGE(settle(), "no reply");
    T out{};
    rh.receive([&](T& x) { out = std::move(x); },
               [&](caf::error& e) { BOOST_FAIL("request failed: " << sys.render(e)); });
    return out;
  }

  // The error a request answers with (fails the test if it succeeds).
  template <class T, class Handle, class... Ts>
  std::string ask_error(const Handle& dest, Ts&&... xs) {
    auto rh = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    BOOST_REQUIRE_MESSAGE(settle(), "no reply");
    std::string out;
    rh.receive([&](T&) { BOOST_FAIL("request succeeded, an error was expected"); },
               [&](caf::error& e) { out = sys.render(e); });
    return out;
  }
};

}  // namespace visorlab::test
