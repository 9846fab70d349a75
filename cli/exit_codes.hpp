// visorlab's exit codes (DESIGN.md): scripts and CI branch on them.
#pragma once

#include "actors/runtime/error.hpp"

namespace visorlab::cli {

enum ExitCode : int {
  kPass = 0,            // the command did what it was asked; a drill passed
  kInvariantFailed = 1, // a drill invariant or expect limit failed
  kBadInput = 2,        // bad usage, file or field; the message names it
  kInfrastructure = 3,  // the machine or cluster failed us (port taken, agent gone)
  kInterrupted = 130,   // stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells say), cleaned up
};

// A visorlab error as an exit code: the caller's mistake is bad input,
// anything else the infrastructure's.
inline int exit_code(Errc code) {
  switch (code) {
    case Errc::none: return kPass;
    case Errc::invalid_argument:
    case Errc::not_found:
    case Errc::failed_precondition: return kBadInput;
    default: return kInfrastructure;
  }
}

}  // namespace visorlab::cli
