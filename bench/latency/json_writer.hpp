// The few JSON pieces the CLI writes (bench reports, `moirai topo`, `doctor` and `soak`): strings escaped as
// RFC 8259 asks, numbers in their shortest exact form, and arrays of integers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moirai::cli::json {

void append_string(std::string& out, std::string_view s);
void append_number(std::string& out, std::uint64_t v);
// Shortest form that reads back to the same double. JSON has no NaN or infinity: those become null.
void append_number(std::string& out, double v);
// "key":
void append_key(std::string& out, std::string_view key);
// [1,2,3]
void append_array(std::string& out, const std::vector<int>& values);

}  // namespace moirai::cli::json
