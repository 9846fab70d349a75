// visorlab's one error convention: a code from this enum carried as a
// caf::error (category "visorlab", the message as its context) across actor
// and process boundaries, mapped once to gRPC statuses (api/status.hpp) and
// once to exit codes (cli/exit_codes.hpp).
#pragma once

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <string>

namespace visorlab {

enum class Errc : std::uint8_t {
  none = 0,
  invalid_argument,     // the request is wrong: a name, a value, a file
  not_found,            // no such guest, device, service or host
  failed_precondition,  // not now: nothing applied, already paused, …
  unavailable,          // a partition, agent or host did not answer
  internal,             // the cluster failed to do it
  cancelled,            // stopped on request
};

std::string to_string(Errc code);

inline constexpr caf::atom_value kErrorCategory = caf::atom("visorlab");

// CAF 0.17's form: make_error(code, category atom, context). Also lets
// caf::result<T> take an Errc directly.
caf::error make_error(Errc code, std::string message);
caf::error make_error(Errc code);

// The Errc of an error: its own for visorlab's, unavailable for CAF's (a
// request timed out, an actor or node went away).
Errc code_of(const caf::error& e);
// What went wrong, in words: visorlab's message, or CAF's description.
std::string message_of(const caf::error& e);
// The actor system's renderer for the category (actor_system::render).
std::string render_error(std::uint8_t code, caf::atom_value category, const caf::message& context);

}  // namespace visorlab
