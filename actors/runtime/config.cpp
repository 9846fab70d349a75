#include "actors/runtime/config.hpp"

#include <caf/io/middleman.hpp>

#include "actors/runtime/error.hpp"
#include "actors/runtime/interfaces.hpp"
#include "actors/runtime/messages.hpp"

namespace visorlab::actors {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_error_category(kErrorCategory, render_error);
  cfg.add_message_type<Registration>("visorlab.Registration");
  cfg.add_message_type<ChannelOffer>("visorlab.ChannelOffer");
  cfg.add_message_type<DeviceAttach>("visorlab.DeviceAttach");
  cfg.add_message_type<std::vector<DeviceAttach>>("visorlab.DeviceAttaches");
  cfg.add_message_type<DeviceInfo>("visorlab.DeviceInfo");
  cfg.add_message_type<std::vector<DeviceInfo>>("visorlab.DeviceInfos");
  cfg.add_message_type<CommandRequest>("visorlab.CommandRequest");
  cfg.add_message_type<CommandResult>("visorlab.CommandResult");
  cfg.add_message_type<TransportEvent>("visorlab.TransportEvent");
  cfg.add_message_type<RecoveryTimes>("visorlab.RecoveryTimes");
  cfg.add_message_type<ServiceStats>("visorlab.ServiceStats");
  cfg.add_message_type<ServedDevice>("visorlab.ServedDevice");
  cfg.add_message_type<service_actor>("visorlab.service_actor");
  cfg.add_message_type<keeper_actor>("visorlab.keeper_actor");
  cfg.add_message_type<WorkloadSpec>("visorlab.WorkloadSpec");
  cfg.add_message_type<WorkloadStart>("visorlab.WorkloadStart");
  cfg.add_message_type<WorkloadStats>("visorlab.WorkloadStats");
  cfg.add_message_type<HistoryChunk>("visorlab.HistoryChunk");
  cfg.add_message_type<GuestSpec>("visorlab.GuestSpec");
  cfg.add_message_type<ServiceSpec>("visorlab.ServiceSpec");
  cfg.add_message_type<guest_actor>("visorlab.guest_actor");
  cfg.add_message_type<workload_actor>("visorlab.workload_actor");
  cfg.add_message_type<command_actor>("visorlab.command_actor");
  cfg.add_message_type<host_actor>("visorlab.host_actor");
  cfg.add_message_type<HostInventory>("visorlab.HostInventory");
  cfg.add_message_type<std::vector<command_actor>>("visorlab.command_actors");
  cfg.add_message_type<std::vector<keeper_actor>>("visorlab.keeper_actors");
  cfg.add_message_type<std::vector<guest_actor>>("visorlab.guest_actors");
}

Config::Config() {
  load<caf::io::middleman>();
  // Partition actors poll by sending themselves ticks; with CAF's default
  // (unbounded) throughput a busy one would never yield its worker thread
  // and starve every other actor scheduled there.
  set("scheduler.max-throughput", std::size_t{16});
  // Work sharing: idle workers block on the shared queue. CAF's default work
  // stealing spins (and then naps in 50 us steps) looking for work, which with
  // a dozen partition processes on a 2-core host starves the channels' link
  // threads past the heartbeat bound.
  set("scheduler.policy", caf::atom("sharing"));
  visorlab::actors::add_message_types(*this);
}

}  // namespace visorlab::actors
