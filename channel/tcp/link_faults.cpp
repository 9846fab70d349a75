#include "channel/tcp/link_faults.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace visorlab::channel::tcp {

// ---- Registration -------------------------------------------------------------

LinkFaults::Registration::Registration(Registration&& other) noexcept
    : endpoint_(std::exchange(other.endpoint_, nullptr)),
      peer_host_(std::move(other.peer_host_)),
      fault_(std::move(other.fault_)) {}

LinkFaults::Registration& LinkFaults::Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    if (endpoint_) LinkFaults::instance().unregister_endpoint(endpoint_);
    endpoint_ = std::exchange(other.endpoint_, nullptr);
    peer_host_ = std::move(other.peer_host_);
    fault_ = std::move(other.fault_);
  }
  return *this;
}

LinkFaults::Registration::~Registration() {
  if (endpoint_) LinkFaults::instance().unregister_endpoint(endpoint_);
}

// ---- registry -------------------------------------------------------------------

LinkFaults& LinkFaults::instance() {
  static LinkFaults* const registry = new LinkFaults;  // never destroyed: see the header
  return *registry;
}

LinkFaults::Registration LinkFaults::register_endpoint(TcpEndpoint* endpoint, std::string peer_host) {
  Registration r;
  if (!endpoint || peer_host.empty()) return r;
  std::lock_guard lock(mutex_);
  if (by_endpoint_.contains(endpoint))
    throw std::logic_error("endpoint already registered for peer host '" + by_endpoint_[endpoint] + "'");
  Host& host = hosts_[peer_host];
  host.endpoints.insert(endpoint);
  by_endpoint_.emplace(endpoint, peer_host);
  r.endpoint_ = endpoint;
  r.peer_host_ = std::move(peer_host);
  r.fault_ = host.fault;
  return r;
}

void LinkFaults::unregister_endpoint(TcpEndpoint* endpoint) {
  std::lock_guard lock(mutex_);
  const auto e = by_endpoint_.find(endpoint);
  if (e == by_endpoint_.end()) return;
  const auto it = hosts_.find(e->second);
  by_endpoint_.erase(e);
  if (it == hosts_.end()) return;
  it->second.endpoints.erase(endpoint);
  drop_if_idle_locked(it);
}

void LinkFaults::cut(const std::string& peer_host, Clock::time_point lease_until) {
  if (peer_host.empty()) throw std::invalid_argument("cut: empty peer host");
  {
    std::lock_guard lock(mutex_);
    Host& host = hosts_[peer_host];
    if (host.cut) {
      ++counters_.renewals;
    } else {
      ++counters_.cuts;
      spdlog::info("link faults: links to host {} cut (lease {} ms)", peer_host,
                   std::chrono::duration_cast<std::chrono::milliseconds>(lease_until - Clock::now()).count());
    }
    host.cut = true;
    host.lease_until = lease_until;
    // The lease before the flag: an endpoint that sees the flag sees this lease.
    host.fault->lease_until_ns_.store(lease_until.time_since_epoch().count(), std::memory_order_release);
    host.fault->cut_.store(true, std::memory_order_release);
    ensure_timer_locked();
  }
  changed_.notify_all();
}

void LinkFaults::heal(const std::string& peer_host) {
  std::vector<Socket> to_close;
  {
    std::lock_guard lock(mutex_);
    const auto it = hosts_.find(peer_host);
    if (it == hosts_.end() || !it->second.cut) return;
    ++counters_.heals;
    spdlog::info("link faults: links to host {} healed", peer_host);
    to_close = end_cut_locked(it);
  }
  changed_.notify_all();
}  // parked sockets close here, outside the lock

bool LinkFaults::is_cut(const std::string& peer_host) const {
  std::lock_guard lock(mutex_);
  const auto it = hosts_.find(peer_host);
  return it != hosts_.end() && it->second.cut && Clock::now() < it->second.lease_until;
}

std::vector<std::string> LinkFaults::cut_hosts() const {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  std::vector<std::string> out;
  for (const auto& [name, host] : hosts_)
    if (host.cut && now < host.lease_until) out.push_back(name);
  return out;
}

LinkFaults::Counters LinkFaults::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

std::size_t LinkFaults::endpoint_count(const std::string& peer_host) const {
  std::lock_guard lock(mutex_);
  if (peer_host.empty()) return by_endpoint_.size();
  const auto it = hosts_.find(peer_host);
  return it == hosts_.end() ? 0 : it->second.endpoints.size();
}

std::vector<std::string> LinkFaults::known_hosts() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [name, host] : hosts_) out.push_back(name);
  return out;
}

void LinkFaults::park(const std::string& peer_host, Socket socket) {
  if (!socket) return;
  std::lock_guard lock(mutex_);
  const auto it = hosts_.find(peer_host);
  if (it != hosts_.end() && it->second.cut && Clock::now() < it->second.lease_until)
    it->second.parked.push_back(std::move(socket));
}  // not cut (any more): the socket closes here, after the lock

std::vector<Socket> LinkFaults::end_cut_locked(std::map<std::string, Host>::iterator it) {
  Host& host = it->second;
  host.cut = false;
  host.fault->cut_.store(false, std::memory_order_release);
  std::vector<Socket> parked = std::move(host.parked);
  host.parked.clear();
  drop_if_idle_locked(it);
  return parked;
}

void LinkFaults::drop_if_idle_locked(std::map<std::string, Host>::iterator it) {
  const Host& host = it->second;
  if (!host.cut && host.endpoints.empty() && host.parked.empty()) hosts_.erase(it);
}

// One timer thread per process, started with the first cut and asleep until
// the earliest lease (or until a cut changes it). A forked child does not
// inherit it: the first cut there starts its own.
void LinkFaults::ensure_timer_locked() {
  const int pid = static_cast<int>(::getpid());
  if (timer_pid_ == pid) return;
  timer_pid_ = pid;
  std::thread([this] { timer_loop(); }).detach();
}

void LinkFaults::timer_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    auto next = Clock::time_point::max();
    for (const auto& [name, host] : hosts_)
      if (host.cut) next = std::min(next, host.lease_until);
    if (next == Clock::time_point::max()) {
      changed_.wait(lock);
      continue;
    }
    const auto now = Clock::now();
    if (now < next) {
      changed_.wait_until(lock, next);
      continue;
    }
    std::vector<Socket> to_close;
    for (auto it = hosts_.begin(); it != hosts_.end();) {
      const auto following = std::next(it);
      if (it->second.cut && it->second.lease_until <= now) {
        ++counters_.expired;
        spdlog::warn("link faults: lease on the cut of host {} expired: healed", it->first);
        auto parked = end_cut_locked(it);
        std::move(parked.begin(), parked.end(), std::back_inserter(to_close));
      }
      it = following;
    }
    lock.unlock();
    to_close.clear();  // close outside the lock
    lock.lock();
  }
}

}  // namespace visorlab::channel::tcp
