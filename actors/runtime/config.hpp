// The actor system configuration every visorlab process uses: the io
// middleman loaded and every cross-process message type announced.
#pragma once

#include <caf/actor_system_config.hpp>

namespace visorlab::actors {

class Config : public caf::actor_system_config {
 public:
  Config();
};

// Announces visorlab's message types on any config (test fixtures bring
// their own config class).
void add_message_types(caf::actor_system_config& cfg);

}  // namespace visorlab::actors
