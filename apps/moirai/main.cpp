// bin/moirai: the project's command line. Each sub-command declares its options and what it runs in
// commands/<name>.cpp; main() assembles them into one tree, parses, and runs the one given.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands/command.hpp"
#include "moirai/core/error.hpp"

int main(int argc, char** argv) {
  using namespace moirai::cli;
  CLI::App app{"moirai: a thread-per-core runtime for services that answer in microseconds"};
  app.require_subcommand(1);
  const Command commands[] = {add_bench_command(app),  add_topo_command(app), add_echo_command(app),
                              add_doctor_command(app), add_demo_command(app), add_soak_command(app)};
  CLI11_PARSE(app, argc, argv);

  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
    return 2;  // not reached: require_subcommand(1) asks for one
  } catch (const moirai::Error& e) {
    std::fprintf(stderr, "moirai: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moirai: error: %s\n", e.what());
    return 1;
  }
}
