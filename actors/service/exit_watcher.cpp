#include "actors/service/exit_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

namespace visorlab::service {

ExitWatcher::ExitWatcher(pid_t pid, std::function<void()> exited) {
  pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd_ < 0) throw std::system_error(errno, std::generic_category(), "pidfd_open");
  cancel_ = ::eventfd(0, EFD_CLOEXEC);
  if (cancel_ < 0) {
    const int e = errno;
    ::close(pidfd_);
    throw std::system_error(e, std::generic_category(), "eventfd");
  }
  thread_ = std::thread([this, exited = std::move(exited)] {
    pollfd fds[2] = {{pidfd_, POLLIN, 0}, {cancel_, POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    if ((fds[0].revents & POLLIN) && !(fds[1].revents & POLLIN)) exited();
  });
}

ExitWatcher::~ExitWatcher() {
  const std::uint64_t one = 1;
  (void)!::write(cancel_, &one, sizeof one);
  thread_.join();
  ::close(pidfd_);
  ::close(cancel_);
}

}  // namespace visorlab::service
