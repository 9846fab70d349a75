// Injected network cuts for TCP-backed channels (drill step `partition: [a, b]`
// in a LOCAL cluster, where every "host" is a set of processes on one machine
// talking over loopback and `ip link set down` would cut everyone).
//
// Each process has one registry. A TcpEndpoint whose LinkOptions name a peer
// host registers itself here for its whole life; the agent of a host cuts the
// hosts on the other side of the partition:
//
//   LinkFaults::instance().cut("host-b", steady_clock::now() + lease);
//
// While its peer host is cut, an endpoint behaves as if the cable were pulled:
// nothing leaves its socket and nothing is read from it (frames it would send
// stay queued, in order), a hang-up by the peer does not show through, the
// listening end accepts nobody and the attaching end does not connect. Both
// sides therefore see a silent peer and raise partner_failed within the
// detection bound; the link is then dropped, its socket parked here (not
// closed: a FIN must not cross a cut cable) until the cut heals. After the
// heal the attaching end re-attaches (TcpEndpoint::reattach,
// ChannelEnd::reconnect) and each side re-sends what the other had not
// applied of its stream, in order.
//
// A cut carries a lease: if whoever asked for it never heals it (the
// orchestrator died), it heals by itself when the lease runs out. Endpoints
// compare the lease on every check, so they resume at once; a small timer
// thread (started with the first cut, asleep until the earliest lease) does
// the bookkeeping: counters, closing parked sockets, dropping the entry.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "channel/tcp/socket.hpp"

namespace visorlab::channel::tcp {

class TcpEndpoint;

// The state one peer host's endpoints check on every send and receive: an
// atomic flag and the lease, no lock.
class HostFault {
 public:
  // Cut now: the flag is set and the lease has not run out. The clock is
  // read only when the flag is set.
  bool active() const noexcept {
    if (!cut_.load(std::memory_order_acquire)) return false;
    return std::chrono::steady_clock::now().time_since_epoch().count() <
           lease_until_ns_.load(std::memory_order_acquire);
  }

 private:
  friend class LinkFaults;
  std::atomic<bool> cut_{false};
  std::atomic<std::int64_t> lease_until_ns_{0};
};

class LinkFaults {
 public:
  using Clock = std::chrono::steady_clock;

  struct Counters {
    std::uint64_t cuts = 0;      // cut() on a host that was not cut
    std::uint64_t renewals = 0;  // cut() on a host already cut: the lease was replaced
    std::uint64_t heals = 0;     // heal() that ended a cut
    std::uint64_t expired = 0;   // cuts ended by their lease running out
  };

  // What an endpoint holds while registered; unregisters when destroyed (or
  // moved-from: never). Checking it costs one atomic load when not cut.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration();

    explicit operator bool() const { return endpoint_ != nullptr; }
    bool cut() const noexcept { return fault_ && fault_->active(); }
    const std::string& peer_host() const { return peer_host_; }

   private:
    friend class LinkFaults;
    TcpEndpoint* endpoint_ = nullptr;
    std::string peer_host_;
    std::shared_ptr<const HostFault> fault_;
  };

  // The process's registry. Never destroyed (endpoints owned by statics may
  // outlive any other choice).
  static LinkFaults& instance();

  // TcpEndpoint calls these itself, from LinkOptions::peer_host; nobody else
  // needs to. The returned registration unregisters when it goes away, so an
  // endpoint can never stay registered after its destruction. An empty peer
  // host registers nothing (never cut).
  [[nodiscard]] Registration register_endpoint(TcpEndpoint* endpoint, std::string peer_host);
  void unregister_endpoint(TcpEndpoint* endpoint);  // idempotent

  // Cuts every link to `peer_host` until heal() or `lease_until`, whichever
  // comes first. On a host already cut, replaces the lease (renewal). The
  // host need not have endpoints yet: one created during the cut is cut too.
  void cut(const std::string& peer_host, Clock::time_point lease_until);
  // Ends the cut (no-op if there is none). Endpoints resume within a tick.
  void heal(const std::string& peer_host);
  // True while cut and the lease has not run out.
  bool is_cut(const std::string& peer_host) const;
  // Hosts cut now.
  std::vector<std::string> cut_hosts() const;

  Counters counters() const;
  // Endpoints registered with this peer host (all peer hosts if empty).
  std::size_t endpoint_count(const std::string& peer_host = {}) const;
  // Peer hosts the registry holds an entry for: endpoints registered, a cut
  // in force or sockets parked. Empty when nothing is registered or cut.
  std::vector<std::string> known_hosts() const;

  // For TcpEndpoint: a connection dropped while cut is kept open here until
  // the cut ends (closing it would send a FIN across the cut); closed at once
  // if the host is no longer cut.
  void park(const std::string& peer_host, Socket socket);

  LinkFaults(const LinkFaults&) = delete;
  LinkFaults& operator=(const LinkFaults&) = delete;

 private:
  struct Host {
    std::shared_ptr<HostFault> fault = std::make_shared<HostFault>();
    std::set<TcpEndpoint*> endpoints;
    bool cut = false;
    Clock::time_point lease_until{};
    std::vector<Socket> parked;
  };

  LinkFaults() = default;
  ~LinkFaults() = default;

  // mutex_ held: ends the cut, hands back the parked sockets to close
  // outside the lock, drops the entry if nothing else holds it.
  std::vector<Socket> end_cut_locked(std::map<std::string, Host>::iterator it);
  void drop_if_idle_locked(std::map<std::string, Host>::iterator it);
  void ensure_timer_locked();
  void timer_loop();

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // a lease was set or replaced
  std::map<std::string, Host> hosts_;
  std::map<TcpEndpoint*, std::string> by_endpoint_;
  Counters counters_;
  int timer_pid_ = 0;  // the process whose timer thread runs (a forked child starts its own)
};

}  // namespace visorlab::channel::tcp
