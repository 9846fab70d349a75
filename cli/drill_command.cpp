#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"

namespace visorlab::cli {
void add_drill_command(CLI::App&, Action&) {}
}
