// Element-wise product, weighted sum or maximum of same-shaped tensors.
#include <algorithm>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 2, 64);
  const auto& p = node.p<EltwiseParams>();
  if (!p.coeffs.empty() && p.coeffs.size() != in.size())
    op_error(node, fmt::format("has {} coefficients for {} inputs", p.coeffs.size(), in.size()));
  for (const Shape& s : in)
    if (s != in[0]) op_error(node, fmt::format("inputs {} and {} differ", in[0].str(), s.str()));
  return {in[0]};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<EltwiseParams>();
  const int64_t n = out[0].shape.size();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    double acc = 0;
    for (size_t k = 0; k < in.size(); ++k) {
      double v = in[k].data[i];
      if (p.kind == EltwiseKind::sum)
        acc += (p.coeffs.empty() ? 1.0 : p.coeffs[k]) * v;
      else if (k == 0)
        acc = v;
      else
        acc = p.kind == EltwiseKind::prod ? acc * v : std::max(acc, v);
    }
    out[0].data[i] = float(acc);
  }
}

}  // namespace

extern const OpDef op_eltwise = {"Eltwise", infer, run, nullptr};

}  // namespace upres
