// visorlab's exit codes (DESIGN.md): scripts and CI branch on them.
#pragma once

namespace visorlab::cli {

enum ExitCode : int {
  kPass = 0,            // the command did what it was asked; a drill passed
  kInvariantFailed = 1, // a drill invariant or expect limit failed
  kBadInput = 2,        // bad usage, file or field; the message names it
  kInfrastructure = 3,  // the machine or cluster failed us (port taken, agent gone)
};

}  // namespace visorlab::cli
