// A software switch of the IO partition (one per topology `switch`): it
// forwards frames between the vnic backends attached to it by destination MAC.
//
// The table knows each port's configured MAC (from its channel's VnicData) as
// soon as it attaches, and learns source MACs of frames it forwards; a learned
// address never takes over another port's configured one. Broadcast and
// multicast flood every other port. Unknown unicast is dropped and counted,
// not flooded: every port's own address is known from attach, so an unknown
// destination has no receiver here, and flooding would only make each guest's
// driver drop it (counted there as a drop outside any fault).
//
// A frame for a port whose guest has no posted buffer, has receive disabled
// or whose link is down is dropped and counted. Forwarding is synchronous on
// the IO partition's thread: the sender's backend poll() delivers straight
// into the receivers' channels, so frames between two ports stay in order.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "actors/service/vnic_backend.hpp"

namespace visorlab::service {

struct SwitchCounts {
  std::uint64_t frames = 0;     // frames the ports sent into the switch
  std::uint64_t unicast = 0;    // sent to one known port
  std::uint64_t flooded = 0;    // broadcast/multicast frames flooded
  std::uint64_t delivered = 0;  // copies written into a port's buffer
  std::uint64_t no_buffer = 0;  // copies dropped: the guest had no posted buffer
  std::uint64_t disabled = 0;   // copies dropped: the guest's receive is not enabled
  std::uint64_t link_down = 0;  // copies dropped: the port's link is down
  std::uint64_t too_big = 0;    // copies dropped: larger than the port's buffer or MTU
  std::uint64_t failed = 0;     // copies dropped: the port's channel refused the write
  std::uint64_t unknown = 0;    // unicast to an address no port has: dropped
  std::uint64_t hairpin = 0;    // unicast back to its own port: dropped
  std::uint64_t runt = 0;       // shorter than an Ethernet header: dropped
  std::uint64_t dropped() const { return no_buffer + disabled + link_down + too_big + failed + unknown + hairpin + runt; }
};

class SoftwareSwitch {
 public:
  explicit SoftwareSwitch(std::string name) : name_(std::move(name)) {}
  ~SoftwareSwitch();  // detaches every port
  SoftwareSwitch(const SoftwareSwitch&) = delete;
  SoftwareSwitch& operator=(const SoftwareSwitch&) = delete;

  const std::string& name() const { return name_; }

  // A port is one backend; it becomes the backend's uplink. Attaching a port
  // already on another switch moves it. Detach (recovery, destroy) forgets
  // every address learned on it; a destroyed backend detaches itself.
  void attach(VnicBackend& port);
  void detach(VnicBackend& port);
  bool attached(const VnicBackend& port) const;
  std::size_t ports() const { return ports_.size(); }

  // A frame a port transmitted (the uplink calls this).
  void forward(VnicBackend& from, std::span<const std::byte> frame);

  // The port an address is known on, or nullptr.
  const VnicBackend* lookup(const Mac& mac) const;
  const SwitchCounts& counts() const { return counts_; }

 private:
  struct Entry {
    VnicBackend* port;
    bool configured;  // the port's own MAC: learning never moves it
  };
  void send(VnicBackend& to, std::span<const std::byte> frame);

  std::string name_;
  std::vector<VnicBackend*> ports_;  // attach order: the flooding order
  std::map<Mac, Entry> table_;
  SwitchCounts counts_;
};

}  // namespace visorlab::service
