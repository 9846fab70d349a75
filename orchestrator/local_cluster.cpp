#include "orchestrator/local_cluster.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "agents/agent.hpp"

namespace visorlab::orchestrator {
namespace {

// Every agent a LocalCluster of this process started, and the run dirs they
// use: what a forced stop (a second Ctrl-C, a watchdog) must take down from
// any thread. Not touched from signal handlers: signals are taken by a
// thread (cli/stop_signals.hpp).
struct Started {
  std::mutex mutex;
  std::map<pid_t, std::filesystem::path> agents;  // pid → run dir
  bool stopping = false;  // a forced stop is under way: supervisors start nothing
};


Started& started() {
  static Started s;
  return s;
}

bool stopping() {
  std::lock_guard lock(started().mutex);
  return started().stopping;
}

void remember(pid_t pid, const std::filesystem::path& run_dir) {
  std::lock_guard lock(started().mutex);
  started().agents.emplace(pid, run_dir);
}

void forget(pid_t pid) {
  std::lock_guard lock(started().mutex);
  started().agents.erase(pid);
}

// The partition host an agent left behind, if the pid file still names one.
pid_t partition_host_of(const std::filesystem::path& pid_file) {
  std::ifstream in(pid_file);
  pid_t pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  const std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  return text.find("partition-host") != std::string::npos ? pid : 0;
}

// Channels this process's orchestrator named ("visorlab-o<pid>.g0_vhba0",
// "visorlab-controlvm_o<pid>.g0") that are still in /dev/shm once every agent
// has stopped. A partition host told to stop by its agent alone (a SIGTERM
// to the whole process group: `timeout`, a service manager) exits without
// unlinking them; nobody can use them any more, so they go.
void remove_leftover_shm() {
  const std::string tag = "o" + std::to_string(::getpid()) + ".";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("visorlab-", 0) != 0) continue;
    for (auto at = name.find(tag); at != std::string::npos; at = name.find(tag, at + 1))
      if (name[at - 1] == '-' || name[at - 1] == '_') {
        spdlog::debug("removing leftover /dev/shm/{}", name);
        std::filesystem::remove(e.path(), ec);
        break;
      }
  }
}

}  // namespace

void LocalCluster::stop_agents_and_exit(int code) {
  std::map<pid_t, std::filesystem::path> agents;
  {
    std::lock_guard lock(started().mutex);
    started().stopping = true;
    agents = started().agents;
  }
  for (const auto& [pid, dir] : agents) ::kill(pid, SIGTERM);
  // Agents stop their partitions on SIGTERM; give them a moment, then force.
  for (int i = 0; i < 300; ++i) {
    bool any = false;
    for (const auto& [pid, dir] : agents)
      if (::waitpid(pid, nullptr, WNOHANG) == 0) any = true;
    if (!any) break;
    usleep(10'000);
  }
  force_stop();
  _exit(code);
}

void LocalCluster::force_stop() {
  std::map<pid_t, std::filesystem::path> agents;
  {
    std::lock_guard lock(started().mutex);
    started().stopping = true;
    agents.swap(started().agents);
  }
  std::set<std::filesystem::path> run_dirs;
  for (const auto& [pid, dir] : agents) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    run_dirs.insert(dir);
  }
  // Each partition host leads its own session (it outlives a killed agent):
  // its process group holds the service partitions.
  for (const auto& dir : run_dirs) {
    std::error_code ec;
    for (const auto& host : std::filesystem::directory_iterator(dir / "hosts", ec)) {
      const auto file = agents::partitions_pid_file(dir, host.path().filename().string());
      if (const pid_t pid = partition_host_of(file)) ::kill(-pid, SIGKILL);
      std::filesystem::remove(file, ec);
    }
  }
  remove_leftover_shm();
}

LocalCluster::LocalCluster(caf::actor_system& sys, const topology::Topology& topology, LocalClusterOptions options)
    : options_(std::move(options)) {
  std::filesystem::create_directories(options_.run_dir / "logs");
  ClusterOptions c;
  c.run_dir = options_.run_dir.string();
  c.metrics_listen = options_.metrics_listen;
  c.bind = options_.bind;
  cluster_ = std::make_unique<Cluster>(sys, c);
  cluster_->set_agent_control(&control_);
  for (const auto& h : topology.hosts) hosts_.push_back(h.name);
  // Every agent is started from this one thread, which lives as long as the
  // cluster: an agent is told to stop (PR_SET_PDEATHSIG) when the thread
  // that started it ends — with this process, however it ends (kill -9
  // included), so a lost orchestrator leaves nothing running.
  supervisor_ = std::jthread([this](std::stop_token stop) {
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      supervise_locked();
      changed_.wait_for(lock, stop, std::chrono::milliseconds(200), [&] { return wanted_; });
      wanted_ = false;
    }
  });
  for (const auto& host : hosts_) start_agent(host);
}

// One look: an agent that died is reaped and, after its back-off, started
// again (it adopts the partition host it left running).
void LocalCluster::supervise_locked() {
  if (stopping_ || stopping()) return;  // whoever stops the cluster reaps them now
  const auto now = std::chrono::steady_clock::now();
  for (auto it = agents_.begin(); it != agents_.end();) {
    int status = 0;
    const pid_t reaped = ::waitpid(it->second, &status, WNOHANG);
    if (reaped == 0 || (reaped < 0 && errno != ECHILD)) {
      ++it;
      continue;
    }
    forget(it->second);
    Restart& r = restarts_[it->first];
    const auto wait = r.backoff.died(now);
    spdlog::warn("agent of host {} (pid {}) {}; starting it again in {} ms", it->first, it->second,
                 reaped > 0 ? agents::how_it_ended(status) : "was reaped elsewhere", wait.count());
    r.at = now + wait;
    it = agents_.erase(it);
  }
  for (auto& [host, r] : restarts_)
    if (r.at && now >= *r.at && !held_.contains(host) && !agents_.contains(host)) {
      r.at.reset();
      try {
        launch_locked(host);
      } catch (const std::exception& e) {
        spdlog::error("agent of host {}: {}", host, e.what());
        r.at = now + r.backoff.died(now);
      }
      changed_.notify_all();  // start_agent waits for it
    }
}

// The partition hosts no agent looks after any more (their agent was killed
// and not started again): stopped as their agents would, SIGTERM to each
// one's process group, then SIGKILL.
void LocalCluster::stop_orphaned_partitions() {
  std::vector<pid_t> orphans;
  for (const auto& host : hosts_)
    if (!agents_.contains(host))
      if (const pid_t pid = partition_host_of(agents::partitions_pid_file(options_.run_dir, host))) {
        spdlog::info("stopping the partitions of host {} (pid {}): its agent is down", host, pid);
        ::kill(-pid, SIGTERM);
        orphans.push_back(pid);
      }
  for (const pid_t pid : orphans) {
    for (int i = 0; i < 400 && ::kill(pid, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (::kill(pid, 0) == 0) ::kill(-pid, SIGKILL);
  }
}

LocalCluster::~LocalCluster() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;  // no more restarts; the agents are ours to reap
  }
  try {
    cluster_->teardown();
  } catch (const std::exception& e) {
    spdlog::error("local cluster teardown: {}", e.what());
  }
  stop_orphaned_partitions();
  for (auto& [host, pid] : agents_) ::kill(pid, SIGTERM);
  for (auto& [host, pid] : agents_) {
    for (int i = 0; i < 1000 && ::waitpid(pid, nullptr, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (::kill(pid, 0) == 0) {
      spdlog::warn("agent {} did not stop in 5 s: killing it", host);
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    forget(pid);
  }
  supervisor_.request_stop();
  if (supervisor_.joinable()) supervisor_.join();
  cluster_.reset();
  remove_leftover_shm();
}

// Asks the supervisor's thread to start it (see the constructor) and waits.
void LocalCluster::start_agent(const std::string& host) {
  std::unique_lock lock(mu_);
  held_.erase(host);
  if (agents_.contains(host)) return;
  restarts_[host].at = std::chrono::steady_clock::now();
  wanted_ = true;
  changed_.notify_all();
  if (!changed_.wait_for(lock, std::chrono::seconds(10), [&] { return agents_.contains(host); }))
    throw ClusterError(ClusterError::Code::unavailable, "the agent of host " + host + " could not be started");
}

void LocalCluster::launch_locked(const std::string& host) {
  const std::string orchestrator = options_.bind + ":" + std::to_string(cluster_->agent_port());
  const std::string log = (options_.run_dir / "logs" / ("host-" + host + ".log")).string();
  std::vector<std::string> args;
  if (const auto p = options_.launch_prefix.find(host); p != options_.launch_prefix.end()) args = p->second;
  for (std::string a : {options_.visorlab_bin, std::string("agent"), std::string("--host"), host,
                        std::string("--orchestrator"), orchestrator, std::string("--run-dir"), options_.run_dir.string()})
    args.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = fork();
  if (pid < 0) throw ClusterError(ClusterError::Code::unavailable, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Stop (in order: SIGTERM) if this process goes without stopping us.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) _exit(0);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGINT, SIG_IGN);  // Ctrl-C reaches the drill, which stops us in order
    signal(SIGHUP, SIG_IGN);  // so does a closed terminal
    execvp(argv[0], argv.data());
    _exit(127);
  }
  agents_[host] = pid;
  restarts_[host].backoff.started(std::chrono::steady_clock::now());
  remember(pid, options_.run_dir);
}

pid_t LocalCluster::agent_pid(const std::string& host) const {
  std::lock_guard lock(mu_);
  const auto it = agents_.find(host);
  return it == agents_.end() ? 0 : it->second;
}

void LocalCluster::kill_agent(const std::string& host) {
  std::lock_guard lock(mu_);
  const auto it = agents_.find(host);
  if (it == agents_.end()) {
    if (std::find(hosts_.begin(), hosts_.end(), host) == hosts_.end())
      throw ClusterError(ClusterError::Code::not_found, "no local agent for host " + host);
    held_.insert(host);  // already dead, waiting for the supervisor: it stays down now
    return;
  }
  ::kill(it->second, SIGKILL);
  ::waitpid(it->second, nullptr, 0);
  forget(it->second);
  agents_.erase(it);
  held_.insert(host);
}

}  // namespace visorlab::orchestrator
