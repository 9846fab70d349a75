#include "actors/runtime/config.hpp"

#include <caf/io/middleman.hpp>

#include "actors/runtime/interfaces.hpp"
#include "actors/runtime/messages.hpp"

namespace visorlab::actors {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<ChannelOffer>("visorlab.ChannelOffer");
  cfg.add_message_type<DeviceAttach>("visorlab.DeviceAttach");
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
}

Config::Config() {
  load<caf::io::middleman>();
  visorlab::actors::add_message_types(*this);
}

}  // namespace visorlab::actors
