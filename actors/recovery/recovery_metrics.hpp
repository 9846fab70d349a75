// A recovery's phases into visorlab_recovery_phase_seconds{host,partition,phase}
// (docs/metrics.md), with the spans the drill report and the gRPC API use:
//   detect   start → detect          (crashes only)
//   pause    detect (else start) → every device paused
//   restart  paused → the new process serves every device
//   resume   restarted → every device resumed
//   total    start → resumed
// A phase the recovery did not reach (a failed one) is not observed. Header
// only: the keeper (partition host) and the orchestrator both record them.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "actors/runtime/messages.hpp"
#include "metrics/registry.hpp"

namespace visorlab::recovery {

inline void observe_recovery(metrics::Metrics& m, std::string_view host, const actors::RecoveryTimes& t) {
  const auto span = [](std::int64_t from, std::int64_t to) -> std::optional<double> {
    if (from == 0 || to == 0 || to < from) return std::nullopt;
    return static_cast<double>(to - from) / 1e9;
  };
  const auto observe = [&](metrics::RecoveryPhase phase, std::optional<double> seconds) {
    if (seconds) m.recovery_phase(host, t.service, phase).Observe(*seconds);
  };
  observe(metrics::RecoveryPhase::detect, span(t.start_ns, t.detect_ns));
  observe(metrics::RecoveryPhase::pause, span(t.detect_ns ? t.detect_ns : t.start_ns, t.paused_ns));
  observe(metrics::RecoveryPhase::restart, span(t.paused_ns, t.restarted_ns));
  observe(metrics::RecoveryPhase::resume, span(t.restarted_ns, t.resumed_ns));
  observe(metrics::RecoveryPhase::total, span(t.start_ns, t.resumed_ns));
}

}  // namespace visorlab::recovery
