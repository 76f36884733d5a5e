// Range checks for numeric options. Every front end (CLI, HTTP, MCP, presets) hands its numbers to
// the library, which checks them here, so one message names the range wherever a value came from.
#pragma once

#include <cmath>
#include <concepts>
#include <cstdint>
#include <string_view>

#include <fmt/format.h>

#include "upres/error.hpp"

namespace upres {

// Throws Error(invalid_argument): "{name} {value} is outside {lo}..{hi}{note}", where `note` says
// what special values mean (" (0: all cores)").
template <std::integral T>
void check_range(std::string_view name, T value, int64_t lo, int64_t hi, std::string_view note = {}) {
  if (int64_t(value) < lo || int64_t(value) > hi)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} {} is outside {}..{}{}", name, value, lo, hi, note));
}

inline void check_range(std::string_view name, double value, double lo, double hi,
                        std::string_view note = {}) {
  if (!std::isfinite(value) || value < lo || value > hi)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} {} is outside {}..{}{}", name, value, lo, hi, note));
}

}  // namespace upres
