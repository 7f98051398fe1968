// CLI11 glue shared by the command-line tools: a usage error is one line,
// "TOOL: error: MESSAGE (see 'TOOL COMMAND --help')", and exit status 2, like
// every other error of the tools (the last stderr line is always theirs);
// validators for values CLI11 converts too loosely (it wraps "-1" into an
// unsigned option, and accepts any thread count).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "common/ParseInteger.h"

namespace v4tools {

inline constexpr int kExitUsage = 2;

// "v4run cache stats": the subcommands the parse reached, below `app`.
inline std::string commandPath(CLI::App &app, const std::string &tool) {
  std::string path = tool;
  CLI::App *current = &app;
  while (!current->get_subcommands().empty()) {
    current = current->get_subcommands().front();
    path += " " + current->get_name();
  }
  return path;
}

// Parses argv into `app`. Returns -1 when the command should run; otherwise
// the exit status: 0 after --help, kExitUsage after a one-line usage error.
inline int parseCommandLine(CLI::App &app, int argc, char **argv, const std::string &tool) {
  // "v4c frobnicate": CLI11 would only say that a subcommand is required.
  if (argc > 1 && argv[1][0] != '-' && !app.get_subcommands({}).empty()) {
    std::string known;
    bool found = false;
    for (const CLI::App *sub : app.get_subcommands({})) {
      found = found || sub->get_name() == argv[1];
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    if (!found) {
      std::fprintf(stderr, "%s: error: unknown command '%s'; commands: %s\n", tool.c_str(), argv[1], known.c_str());
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
    return -1;
  } catch (const CLI::ParseError &e) {
    if (e.get_exit_code() == 0) // --help
      return app.exit(e);
    std::string message = e.what();
    for (char &c : message)
      if (c == '\n')
        c = ' ';
    std::fprintf(stderr, "%s: error: %s (see '%s --help')\n", tool.c_str(), message.c_str(),
                 commandPath(app, tool).c_str());
    return kExitUsage;
  }
}

// A whole decimal integer in [low, high]: no sign tricks, no trailing text.
inline CLI::Validator integerIn(long long low, long long high) {
  return CLI::Validator(
      [low, high](std::string &text) -> std::string {
        const std::optional<long long> value = v4c::parseInteger(text);
        if (value && *value >= low && *value <= high && text.find_first_of(" \t") == std::string::npos)
          return "";
        return "'" + text + "' is not an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
      },
      "INT in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
}

// For unsigned options (byte budgets, seeds): digits only, so "-1" cannot
// wrap around to 2^64 - 1.
inline CLI::Validator nonNegativeInteger() {
  return CLI::Validator(
      [](std::string &text) -> std::string {
        if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos)
          return "";
        return "'" + text + "' is not a non-negative integer";
      },
      "UINT");
}

// Worker threads: 0 (one per core) up to far more than any machine has; a
// huge count would only spend minutes creating threads.
inline CLI::Validator threadCount() { return integerIn(0, 1024); }

} // namespace v4tools
