// Which devices a drill step can disturb — what a FaultWindow's `affected`
// holds, so the checker knows where frames may drop and whose I/O may stall
// without knowing the topology itself.
#pragma once

#include <string>
#include <vector>

#include "drill/history.hpp"
#include "topology/model.hpp"

namespace visorlab::drill {

// recover/crash S: every device S serves; pause/resume/destroy D: D;
// create: the created device; partition [a, b]: devices whose guest and
// service sit on opposite sides; kill_agent h: devices of guests or services on h.
std::vector<std::string> affected_devices(const topology::Topology& topology, const topology::Step& step);

// The window for `step` held from start to end, with its affected devices.
FaultWindow fault_window(const topology::Topology& topology, const topology::Step& step, Nanos start, Nanos end);

}  // namespace visorlab::drill
