// Two network namespaces joined by one veth pair: two "hosts" of one kernel
// for benches that measure across a real (virtual) NIC instead of loopback
// (transport_bench's _netns lines). Needs root and iproute2's `ip`.
//
//   netns vlb<pid>a: lo up, veth "a0" = 10.77.0.1/24
//   netns vlb<pid>b: lo up, veth "b0" = 10.77.0.2/24, a0's peer
//
// Nothing is added to the bench's own namespace. A round runs its parent side
// in a (an InSideA scope: this thread, and so the threads and children it
// starts, are in a until the scope ends) and its forked child enters b
// (enter_b(), e.g. as BaselineHost::enter_child_host).
//
// Cleanup: deleting a namespace is an unmount and an unlink of
// /run/netns/<name> (what `ip netns delete` does); the veth pair goes with the
// namespaces once nothing is left in them. It happens in the destructor, in
// fail() and on SIGINT/SIGTERM/SIGHUP/SIGQUIT (ExitCleanup); the namespaces of
// a bench killed by SIGKILL are removed by the next NetnsPair (<pid> no longer
// alive).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "bench/bench_harness.hpp"

namespace visorlab::bench {

class NetnsPair {
 public:
  // Why a pair cannot be made here ("not running as root", "iproute2 `ip` not
  // found"); empty if it can be tried.
  static std::string unavailable_reason();

  // Creates both namespaces and the veth pair; throws std::runtime_error
  // naming the failing command and its output (whatever was made is removed).
  NetnsPair();
  ~NetnsPair();
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  const std::string& address_a() const { return address_a_; }  // listen here, inside a
  const std::string& address_b() const { return address_b_; }

  // For a forked child: moves the calling thread into b (throws
  // std::system_error if it cannot).
  std::function<void()> enter_b() const;

  // While alive, the calling thread is in a; then back where it was.
  class InSideA {
   public:
    explicit InSideA(const NetnsPair& pair);
    ~InSideA();
    InSideA(const InSideA&) = delete;
    InSideA& operator=(const InSideA&) = delete;

   private:
    int original_ = -1;
  };

 private:
  static void remove_namespaces(void* self) noexcept;  // async-signal-safe
  static void remove_stale();

  std::string name_a_, name_b_, path_a_, path_b_;
  std::string address_a_ = "10.77.0.1", address_b_ = "10.77.0.2";
  int fd_a_ = -1, fd_b_ = -1;
  std::optional<ExitCleanup> cleanup_;
};

}  // namespace visorlab::bench
