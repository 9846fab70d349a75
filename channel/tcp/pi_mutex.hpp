// A mutex with priority inheritance (PTHREAD_PRIO_INHERIT), usable with
// std::lock_guard / std::unique_lock. The link thread runs real-time (it
// carries the heartbeat) and shares two locks with the channel's users, which
// run at normal priority; with a plain mutex a user preempted while holding
// one would hold the link thread up for as long as the scheduler pleases
// (priority inversion), and the peer would see a silent link.
#pragma once

#include <pthread.h>

#include <system_error>

namespace visorlab::channel::tcp {

class PiMutex {
 public:
  PiMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setprotocol(&attr, PTHREAD_PRIO_INHERIT);
    const int rc = pthread_mutex_init(&m_, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_mutex_init");
  }
  ~PiMutex() { pthread_mutex_destroy(&m_); }
  PiMutex(const PiMutex&) = delete;
  PiMutex& operator=(const PiMutex&) = delete;

  void lock() {
    if (const int rc = pthread_mutex_lock(&m_); rc != 0) throw std::system_error(rc, std::generic_category(), "lock");
  }
  bool try_lock() { return pthread_mutex_trylock(&m_) == 0; }
  void unlock() { pthread_mutex_unlock(&m_); }

 private:
  pthread_mutex_t m_;
};

}  // namespace visorlab::channel::tcp
