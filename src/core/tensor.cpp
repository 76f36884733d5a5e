#include "core/tensor.hpp"

#include <fmt/format.h>

namespace upres {

std::string Shape::str() const {
  return fmt::format("{}x{}x{}", c, h, w);
}

}  // namespace upres
