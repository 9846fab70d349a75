#include "actors/service/exit_watcher.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace visorlab::service {

ExitWatcher::ExitWatcher(pid_t pid, std::function<void()> exited) {
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd_ < 0) throw std::system_error(errno, std::generic_category(), "pidfd_open");
  thread_ = std::thread([this, exited = std::move(exited)] {
    pollfd fds[2] = {{pidfd_, POLLIN, 0}, {cancel_.fd(), POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    if ((fds[0].revents & POLLIN) && !(fds[1].revents & POLLIN)) exited();
  });
}

ExitWatcher::~ExitWatcher() {
  cancel_.wake();
  thread_.join();
  ::close(pidfd_);
}

}  // namespace visorlab::service
