#include "agents/agent.hpp"

#include <fcntl.h>
#include <cstring>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/stateful_actor.hpp>

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "net/host_port.hpp"
#include "actors/runtime/config.hpp"
#include "agents/partition_host.hpp"
#include "agents/restart_backoff.hpp"
#include "metrics/exposer.hpp"
#include "metrics/registry.hpp"

namespace visorlab::agents {

std::filesystem::path partitions_pid_file(const std::filesystem::path& run_dir, const std::string& host) {
  return run_dir / "hosts" / host / "partitions.pid";
}

namespace {

namespace fs = std::filesystem;
using namespace visorlab::actors;

fs::path pid_file(const AgentMain& m) { return partitions_pid_file(m.run_dir, m.host); }

}  // namespace

std::string how_it_ended(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "ended (status " + std::to_string(status) + ")";
}

namespace {

// Reaps `pid` if it is our child and ended, saying how in `ended`.
bool running(pid_t pid, std::string* ended = nullptr) {
  if (pid <= 0) return false;
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid) {
    if (ended) *ended = how_it_ended(status);
    return false;
  }
  return ::kill(pid, 0) == 0;
}

// The partition host left by an earlier run of this agent, if it still runs.
pid_t adopt(const AgentMain& m) {
  std::ifstream in(pid_file(m));
  pid_t pid = 0;
  if (!(in >> pid) || !running(pid)) return 0;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string text((std::istreambuf_iterator<char>(cmdline)), {});
  return text.find("partition-host") != std::string::npos ? pid : 0;
}

pid_t start_partitions(const AgentMain& m) {
  std::vector<std::string> args{m.visorlab_bin, "partition-host", "--host", m.host, "--orchestrator",
                                m.orchestrator, "--run-dir", m.run_dir, "--metrics", m.partition_metrics_listen};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setsid();  // its own session: an agent's SIGKILL does not take the partitions along
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  fs::create_directories(pid_file(m).parent_path());
  std::ofstream(pid_file(m)) << pid << "\n";
  return pid;
}

struct AgentState {
  caf::actor orchestrator;
  static inline const char* name = "visorlab.agent";
};

// Registers with the orchestrator and keeps doing so after losing it.
caf::behavior agent_actor(caf::stateful_actor<AgentState>* self, AgentMain m) {
  self->set_down_handler([=](const caf::down_msg&) {
    spdlog::warn("agent {}: lost the orchestrator at {}; reconnecting", m.host, m.orchestrator);
    self->state.orchestrator = nullptr;
    self->send(self, tick_atom::value);
  });
  self->send(self, tick_atom::value);
  return {
      [=](tick_atom) {
        const auto [host, port] = net::parse_host_port(m.orchestrator, "--orchestrator", net::PortUse::connect);
        auto orchestrator = self->system().middleman().remote_actor(host, port);
        if (!orchestrator) {
          self->delayed_send(self, std::chrono::milliseconds(500), tick_atom::value);
          return;
        }
        self->state.orchestrator = *orchestrator;
        self->monitor(*orchestrator);
        self->send(*orchestrator, register_atom::value, Registration{m.host, HostRole::agent},
                   caf::actor_cast<caf::actor>(self));
        spdlog::info("agent {} registered with {}", m.host, m.orchestrator);
      },
  };
}

}  // namespace

int run_agent(const AgentMain& m) {
  try {
    net::parse_host_port(m.orchestrator, "--orchestrator", net::PortUse::connect);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "visorlab agent: %s\n", e.what());
    return 2;
  }
  metrics::ListenAddress listen;
  try {
    listen = metrics::parse_listen_address(m.metrics_listen);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "visorlab agent: --metrics: %s\n", e.what());
    return 2;
  }
  try {
    metrics::parse_listen_address(m.partition_metrics_listen);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "visorlab agent: --partition-metrics: %s\n", e.what());
    return 2;
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  // The agent's own metrics: it is up while it serves them.
  metrics::Metrics exported;
  exported.agent_up(m.host).Set(1);
  std::optional<metrics::MetricsServer> server;
  PortFile port_file(agent_metrics_port_file(m.run_dir, m.host));
  try {
    server.emplace(exported, listen);
    port_file.write(server->port());
  } catch (const std::invalid_argument& e) {  // not an IPv4 address
    std::fprintf(stderr, "visorlab agent: --metrics: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {  // the port is taken; the port file cannot be written
    std::fprintf(stderr, "visorlab agent: %s\n", e.what());
    return 3;
  }
  spdlog::info("agent {}: metrics on {}", m.host, server->url());

  pid_t partitions = adopt(m);
  if (partitions)
    spdlog::info("agent {}: adopted its running partitions (pid {})", m.host, partitions);
  else
    partitions = start_partitions(m);

  actors::Config cfg;
  cfg.set("logger.verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto agent = sys.spawn<caf::detached>(agent_actor, m);

  // A partition host that keeps dying young (it cannot reach the
  // orchestrator, say) is started again less and less often.
  RestartBackoff backoff;
  backoff.started(RestartBackoff::Clock::now());
  std::optional<RestartBackoff::Clock::time_point> restart_at;
  int sig = 0;
  const timespec tick{0, 200'000'000};
  while (true) {
    siginfo_t info;
    sig = sigtimedwait(&stop, &info, &tick);
    if (sig > 0) break;
    const auto now = RestartBackoff::Clock::now();
    if (restart_at) {
      if (now < *restart_at) continue;
      restart_at.reset();
      partitions = start_partitions(m);
      backoff.started(now);
    } else if (std::string ended; !running(partitions, &ended)) {
      const auto wait = backoff.died(now);
      spdlog::error("agent {}: its partition host (pid {}) {}; starting a new one{}", m.host, partitions,
                    ended.empty() ? "is gone" : ended,
                    wait.count() ? " in " + std::to_string(wait.count()) + " ms" : "");
      restart_at = now + wait;
      partitions = 0;
    }
  }
  spdlog::info("agent {} stopping on signal {}: stopping its partitions", m.host, sig);
  if (partitions > 0) ::kill(partitions, SIGTERM);  // 0: none (waiting to restart); kill(0) would be our group
  std::string ended;
  for (int i = 0; i < 500 && running(partitions, &ended); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (running(partitions, &ended)) {
    ::kill(partitions, SIGKILL);
    for (int i = 0; i < 1000 && running(partitions, &ended); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!ended.empty()) spdlog::info("agent {}: its partition host (pid {}) {}", m.host, partitions, ended);
  std::error_code ec;
  fs::remove(pid_file(m), ec);
  fs::remove(port_file.path(), ec);
  spdlog::info("agent {} stopped", m.host);
  spdlog::default_logger()->flush();
  // Everything the agent owns is cleaned up above. The actor system's
  // teardown would wait for the agent actor, which may sit in a blocking
  // connect to an orchestrator that is gone: a stopping daemon must not
  // hang on that.
  caf::anon_send_exit(agent, caf::exit_reason::user_shutdown);
  std::fflush(nullptr);
  ::_exit(0);
}

}  // namespace visorlab::agents
