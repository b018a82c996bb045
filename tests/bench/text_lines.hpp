// The lines of a text the CLI writes, without their newlines: what the tests of tables and files read.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace moirai::cli::testing {

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  return lines;
}

}  // namespace moirai::cli::testing
