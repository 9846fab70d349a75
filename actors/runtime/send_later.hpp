// A callback another thread calls (a doorbell waiter, a pidfd watcher) to
// send an actor a message: delivered while the actor lives, dropped after —
// the callback does not keep it alive.
#pragma once

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <functional>

namespace visorlab::actors {

template <class Handle, class Self, class... Ts>
std::function<void()> send_later(Self self, Ts... xs) {
  return [me = caf::actor_cast<caf::weak_actor_ptr>(self), xs...] {
    if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(me)) caf::anon_send(caf::actor_cast<Handle>(strong), xs...);
  };
}

}  // namespace visorlab::actors
