// The stall probe sees a CPU taken away: a thread that outranks it spins on
// CPU 0 for 120 ms, as a hypervisor's steal would look from inside.
#define BOOST_TEST_MODULE test_support_stall_probe
#include <boost/test/unit_test.hpp>

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <thread>

#include "tests/support/stall_probe.hpp"

using visorlab::test::StallProbe;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(a_cpu_taken_away_is_a_stall) {
  StallProbe probe;
  std::this_thread::sleep_for(50ms);  // the probe threads are up
  if (!probe.realtime()) {
    BOOST_TEST_MESSAGE("no real-time priority here: the probe reports nothing");
    BOOST_TEST((probe.worst() == StallProbe::Clock::duration::zero()));
    return;
  }
  const auto before = StallProbe::Clock::now();
  bool outranked = false;
  std::thread thief([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    sched_param p{};
    p.sched_priority = sched_get_priority_max(SCHED_FIFO);
    outranked = pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0 &&
                pthread_setschedparam(pthread_self(), SCHED_FIFO, &p) == 0;
    const auto until = StallProbe::Clock::now() + 120ms;
    while (StallProbe::Clock::now() < until) {
    }
  });
  thief.join();
  const auto after = StallProbe::Clock::now();
  std::this_thread::sleep_for(20ms);  // the probe on CPU 0 wakes and records it
  BOOST_REQUIRE(outranked);
  BOOST_TEST((probe.worst_between(before, after) >= 100ms));
  BOOST_TEST((probe.worst_between(after + 10ms, after + 20ms) < 100ms));  // a window after it saw none
}
