#include "topology/default_topology.hpp"

#include "topology/load.hpp"

namespace visorlab::topology {

namespace {

// Keep byte-identical with examples/default.yaml.
constexpr std::string_view kDefaultTopology = R"yaml(
version: 1
name: default
hosts:                  # one agent per host; locally each is a process
  - {name: a}           # remote: {name: a, address: "10.0.0.5:4710"}
  - {name: b}
command: {host: a}
services:
  - name: io0
    kind: io            # io: disks and switches; console: keyboard/mouse
    host: b
    disks: [{name: d0, size: 64MiB}]     # optional `path:`; else a file in the run dir
    switches: [{name: sw0}]
  - {name: con0, kind: console, host: a}
guests:
  - name: g             # with count N the guests are g0 … g{N-1}
    count: 4
    host: [a, b]        # one host, or a list used round-robin
    devices:
      - {kind: vhba, service: io0, disk_size: 16MiB}   # or disks: [d0] — a disk belongs to one guest
      - {kind: vnic, service: io0, switch: sw0}
      - {kind: keyboard, service: con0}
      - {kind: mouse, service: con0}
workload:
  disk:  {block_size: 4KiB, queue_depth: 8, read_ratio: 0.5, verify: true}
  net:   {frame_size: 1500, rate: 1000/s}
  input: {rate: 200/s}
drill:
  seed: 1
  duration: 10s
  steps:
    - {at: 2s, recover: io0}                  # planned: pause, restart, resume
    - {at: 4s, crash: io0, restart_after: 50ms}   # kill -9 of its process
    - {at: 6s, pause: g1/vnic0, for: 300ms}
    - {at: 7s, destroy: g2/vhba0}
    - {at: 7.5s, create: {guest: g2, device: {kind: vhba, service: io0, disk_size: 16MiB}}}
    - {at: 8s, partition: [a, b], for: 500ms}     # cut the network between hosts
    - {at: 9s, kill_agent: b, restart_after: 1s}
expect: {lost_io: 0, max_recovery_ms: 100}
)yaml";

}  // namespace

std::string_view default_topology_yaml() {
  return kDefaultTopology.substr(1);  // the literal starts after its opening newline
}

Topology default_topology() { return load_string(default_topology_yaml(), "(built-in default)"); }

}  // namespace visorlab::topology
