#include "actors/runtime/error.hpp"

#include <caf/message.hpp>
#include <caf/exit_reason.hpp>
#include <caf/sec.hpp>

namespace visorlab {

std::string to_string(Errc code) {
  switch (code) {
    case Errc::none: return "none";
    case Errc::invalid_argument: return "invalid_argument";
    case Errc::not_found: return "not_found";
    case Errc::failed_precondition: return "failed_precondition";
    case Errc::unavailable: return "unavailable";
    case Errc::internal: return "internal";
    case Errc::cancelled: return "cancelled";
  }
  return "unknown";
}

caf::error make_error(Errc code, std::string message) {
  return caf::error(static_cast<std::uint8_t>(code), kErrorCategory, caf::make_message(std::move(message)));
}

caf::error make_error(Errc code) { return caf::error(static_cast<std::uint8_t>(code), kErrorCategory); }

std::string render_error(std::uint8_t code, caf::atom_value, const caf::message& ctx) {
  std::string out = to_string(static_cast<Errc>(code));
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) out += ": " + ctx.get_as<std::string>(0);
  return out;
}

Errc code_of(const caf::error& e) {
  if (!e) return Errc::none;
  if (e.category() == kErrorCategory) return static_cast<Errc>(e.code());
  return Errc::unavailable;
}

std::string message_of(const caf::error& e) {
  if (!e) return {};
  if (e.category() == kErrorCategory) {
    const caf::message& ctx = e.context();
    if (ctx.size() == 1 && ctx.match_element<std::string>(0)) return ctx.get_as<std::string>(0);
    return to_string(static_cast<Errc>(e.code()));
  }
  // CAF's own errors, in words: they reach operators as the reason a
  // partition or host did not answer.
  if (e.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(e.code())) {
      case caf::sec::request_receiver_down: return "the actor asked is gone (its process stopped or was lost)";
      case caf::sec::request_timeout: return "no answer in time";
      case caf::sec::no_route_to_receiving_node:
      case caf::sec::cannot_connect_to_node:
      case caf::sec::connection_timeout:
      case caf::sec::disconnect_during_handshake:
      case caf::sec::remote_linking_failed: return "its host cannot be reached";
      case caf::sec::unexpected_message: return "it does not understand the request (a different visorlab version?)";
      default: break;
    }
  } else if (e.category() == caf::atom("exit")) {
    switch (static_cast<caf::exit_reason>(e.code())) {
      case caf::exit_reason::remote_link_unreachable: return "the connection to its host was lost";
      case caf::exit_reason::user_shutdown: return "it was stopped";
      case caf::exit_reason::kill: return "it was killed";
      case caf::exit_reason::unhandled_exception: return "it failed (an unhandled exception)";
      default: break;
    }
  }
  return caf::to_string(e);
}

}  // namespace visorlab
