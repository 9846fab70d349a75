// The typed interfaces of visorlab's partition actors — the only way one
// folder's actors talk to another's. I/O never rides on these messages: it
// goes through channels (DESIGN.md, data plane).
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/runtime/atoms.hpp"
#include "actors/runtime/inspect.hpp"
#include "actors/runtime/messages.hpp"
#include "actors/runtime/workload_messages.hpp"

namespace visorlab::actors {

// A guest's workload: what runs on its drivers (the drill's clients). start
// begins issuing I/O, stop issues nothing new; quiesce(device) stops using a
// device and answers true once nothing is in flight on it (ask until then);
// idle: no disk op in flight; collect(first): the history from record
// `first` on, in bounded chunks. A guest without a workload is always idle
// and quiesced, and refuses the rest.
using workload_actor = caf::typed_actor<                                 //
    caf::reacts_to<start_atom, WorkloadStart>,                           //
    caf::reacts_to<stop_atom>,                                           //
    caf::replies_to<quiesce_atom, std::string>::with<bool>,              //
    caf::replies_to<idle_atom>::with<bool>,                              //
    caf::replies_to<stats_atom>::with<WorkloadStats>,                    //
    caf::replies_to<collect_atom, std::uint64_t>::with<HistoryChunk>>;

// A guest: its chipset polling the controlvm channel, its bus and drivers,
// and its workload (a guest handle is a workload handle too).
// offer: prepare a device's channel (returns where the service attaches);
// devices: the bus tree; poke: a controlvm message waits (the doorbell);
// revert: the orchestrator's lease lapsed — stop the workload, keep its
// history on disk.
using guest_actor = workload_actor::extend<                        //
    caf::reacts_to<tick_atom, std::uint64_t>,                      //
    caf::reacts_to<poke_atom>,                                     //
    caf::reacts_to<revert_atom>,                                   //
    caf::replies_to<offer_atom, ChannelOffer>::with<Locator>,      //
    caf::replies_to<devices_atom>::with<std::vector<DeviceInfo>>>;

// The command partition: one controlvm channel per guest (guest_atom creates
// it and returns where the guest attaches: guest name, and for a guest on
// another host that host's name and the address to listen on) and the
// commands sent into it. Every command is answered — by the guest's response
// or as timed out. register: the guest actor to poke when a command waits.
using command_actor = caf::typed_actor<                                                 //
    caf::reacts_to<tick_atom>,                                                          //
    caf::reacts_to<register_atom, std::string, guest_actor>,                            //
    caf::replies_to<guest_atom, std::string>::with<Locator>,                            //
    caf::replies_to<guest_atom, std::string, std::string, std::string>::with<Locator>,  //
    caf::replies_to<command_atom, CommandRequest>::with<CommandResult>>;

// A service partition (IO or console), in its own process. Failures are
// visorlab errors (actors/runtime/error.hpp): not_found for an unknown device,
// internal for a channel that cannot be opened. input: a console's reports
// per second per device from now on (0: none — input is a workload, started
// and stopped with a drill's).
using service_actor = caf::typed_actor<                             //
    caf::reacts_to<tick_atom>,                                      //
    caf::reacts_to<attach_atom, DeviceAttach>,                      //
    caf::reacts_to<attach_atom, std::vector<DeviceAttach>>,         //
    caf::reacts_to<detach_atom, std::string>,                       //
    caf::reacts_to<pause_atom, std::string>,                        //
    caf::reacts_to<resume_atom, std::string>,                       //
    caf::reacts_to<lose_atom, std::uint64_t, std::int64_t>,  // lose_writes: every, for ms
    caf::reacts_to<input_atom, double>,                             //
    caf::replies_to<stats_atom>::with<ServiceStats>>;

// The agent's keeper of one service partition: it runs the partition's
// process, attaches the devices it serves, and recovers it — planned
// (recover) or after a crash, whether injected (crash, with the delay before
// the restart in ms) or noticed (its process died: the keeper recovers on its
// own and tells its listener (event_atom, RecoveryTimes)). tick and restart
// are its own wake-ups. input: the console's input rate, kept across
// restarts. revert: the orchestrator's lease lapsed — resume every device
// paused through this keeper (guest side and service side).
using keeper_actor = caf::typed_actor<                                  //
    caf::reacts_to<tick_atom>,                                          //
    caf::reacts_to<restart_atom>,                                       // its own: a crash's restart is due
    caf::replies_to<start_atom>::with<ServiceStats>,                    //
    caf::reacts_to<attach_atom, ServedDevice>,                          //
    caf::reacts_to<detach_atom, std::string>,                           //
    caf::replies_to<recover_atom>::with<RecoveryTimes>,                 //
    caf::replies_to<crash_atom, std::int64_t>::with<RecoveryTimes>,     //
    caf::reacts_to<pause_atom, std::string>,                            //
    caf::reacts_to<revert_atom>,                                        //
    caf::reacts_to<resume_atom, std::string>,                           //
    caf::reacts_to<lose_atom, std::uint64_t, std::int64_t>,  //
    caf::reacts_to<input_atom, double>,                                 //
    caf::replies_to<stats_atom>::with<ServiceStats>>;

// What a partition host runs, by name, for an orchestrator that restarted on
// its state dir and re-adopts the host (a vector per kind: CAF inspects them).
struct HostInventory {
  std::vector<command_actor> command;  // none or one
  std::vector<std::string> service_names;
  std::vector<keeper_actor> keepers;  // keepers[i] keeps service_names[i]
  std::vector<std::string> guest_names;
  std::vector<guest_actor> guests;
};
VISORLAB_MESSAGE(HostInventory, x.command, x.service_names, x.keepers, x.guest_names, x.guests)

// A host's partitions (agents/): the process that runs the command
// partition, guests and service keepers the orchestrator places on a host. It
// outlives its agent daemon, so an agent can be killed and restarted without
// touching a guest. lease: the orchestrator renews its lease on the faults
// it put in effect here for so many ms; past it (tick checks) the host
// reverts them by itself (revert to its keepers and guests).
using host_actor = caf::typed_actor<                                                   //
    caf::replies_to<spawn_atom, command_atom>::with<command_actor>,                    //
    caf::replies_to<spawn_atom, GuestSpec>::with<guest_actor>,                         //
    caf::replies_to<spawn_atom, ServiceSpec, command_actor>::with<keeper_actor>,       //
    caf::reacts_to<cut_atom, std::string, std::int64_t>,                               //
    caf::reacts_to<heal_atom, std::string>,                                            //
    caf::reacts_to<lease_atom, std::int64_t>,                                          //
    caf::replies_to<inventory_atom>::with<HostInventory>,                              //
    caf::reacts_to<tick_atom>,                                                         //
    caf::reacts_to<stop_atom>>;

}  // namespace visorlab::actors
