// The atoms of visorlab's actor messages, in one place so that every typed
// interface spells a verb the same way. CAF 0.17 atoms: at most 10 chars.
#pragma once

#include <caf/atom.hpp>

namespace visorlab::actors {

using tick_atom = caf::atom_constant<caf::atom("vl_tick")>;
// A doorbell: a controlvm message waits for the guest (it polls now instead
// of at its next, possibly slow, idle tick).
using poke_atom = caf::atom_constant<caf::atom("vl_poke")>;
using offer_atom = caf::atom_constant<caf::atom("vl_offer")>;
using devices_atom = caf::atom_constant<caf::atom("vl_devs")>;
using hotplug_atom = caf::atom_constant<caf::atom("vl_hotplug")>;
using attach_atom = caf::atom_constant<caf::atom("vl_attach")>;
using detach_atom = caf::atom_constant<caf::atom("vl_detach")>;
using pause_atom = caf::atom_constant<caf::atom("vl_pause")>;
using resume_atom = caf::atom_constant<caf::atom("vl_resume")>;
using stats_atom = caf::atom_constant<caf::atom("vl_stats")>;
using guest_atom = caf::atom_constant<caf::atom("vl_guest")>;
using command_atom = caf::atom_constant<caf::atom("vl_cmd")>;
using start_atom = caf::atom_constant<caf::atom("vl_start")>;
using stop_atom = caf::atom_constant<caf::atom("vl_stop")>;
using kill_atom = caf::atom_constant<caf::atom("vl_kill")>;
using recover_atom = caf::atom_constant<caf::atom("vl_recover")>;
using crash_atom = caf::atom_constant<caf::atom("vl_crash")>;
using event_atom = caf::atom_constant<caf::atom("vl_event")>;
using quiesce_atom = caf::atom_constant<caf::atom("vl_quiesce")>;
using idle_atom = caf::atom_constant<caf::atom("vl_idle")>;
using collect_atom = caf::atom_constant<caf::atom("vl_collect")>;
using lose_atom = caf::atom_constant<caf::atom("vl_lose")>;
using restart_atom = caf::atom_constant<caf::atom("vl_restart")>;
using register_atom = caf::atom_constant<caf::atom("vl_reg")>;
using spawn_atom = caf::atom_constant<caf::atom("vl_spawn")>;
using cut_atom = caf::atom_constant<caf::atom("vl_cut")>;
using heal_atom = caf::atom_constant<caf::atom("vl_heal")>;
using input_atom = caf::atom_constant<caf::atom("vl_input")>;
// The orchestrator's lease on the faults it put in effect on a host, renewed;
// and what a host tells its partitions when the lease lapses: undo them.
using lease_atom = caf::atom_constant<caf::atom("vl_lease")>;
using revert_atom = caf::atom_constant<caf::atom("vl_revert")>;
// What a partition host runs (for an orchestrator that re-adopts it).
using inventory_atom = caf::atom_constant<caf::atom("vl_invent")>;

}  // namespace visorlab::actors
