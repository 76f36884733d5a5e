// Shared shape rule for ops that map one tensor to one tensor of the same shape.
#pragma once

#include "ops/op.hpp"

namespace upres {

inline std::vector<Shape> same_shape_as_input(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  return {in[0]};
}

// Applies f(value, channel) to every element.
template <class F>
void map_elements(const TensorView& x, const TensorView& y, F f) {
  const int64_t plane = int64_t(x.shape.h) * x.shape.w;
#pragma omp parallel for
  for (int c = 0; c < x.shape.c; ++c)
    for (int64_t i = 0; i < plane; ++i) y.channel(c)[i] = f(x.channel(c)[i], c);
}

}  // namespace upres
