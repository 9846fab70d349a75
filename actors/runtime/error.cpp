#include "actors/runtime/error.hpp"

#include <caf/message.hpp>
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
  return caf::to_string(e);
}

}  // namespace visorlab
