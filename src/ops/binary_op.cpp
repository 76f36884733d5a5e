// Element-wise arithmetic on two tensors with numpy-style broadcasting (a dimension of 1
// stretches), or on one tensor and a scalar.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

float apply(BinaryOpKind kind, float a, float b) {
  switch (kind) {
    case BinaryOpKind::add: return a + b;
    case BinaryOpKind::sub: return a - b;
    case BinaryOpKind::mul: return a * b;
    case BinaryOpKind::div: return a / b;
    case BinaryOpKind::max: return std::max(a, b);
    case BinaryOpKind::min: return std::min(a, b);
    case BinaryOpKind::pow: return std::pow(a, b);
    case BinaryOpKind::rsub: return b - a;
    case BinaryOpKind::rdiv: return b / a;
  }
  return 0;
}

int broadcast_dim(const Node& node, int a, int b) {
  if (a == b || b == 1) return a;
  if (a == 1) return b;
  op_error(node, fmt::format("cannot broadcast extents {} and {}", a, b));
}

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  const auto& p = node.p<BinaryOpParams>();
  check_input_count(node, in, p.with_scalar ? 1 : 2, p.with_scalar ? 1 : 2);
  if (p.with_scalar) return {in[0]};
  return {{broadcast_dim(node, in[0].c, in[1].c), broadcast_dim(node, in[0].h, in[1].h),
           broadcast_dim(node, in[0].w, in[1].w)}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<BinaryOpParams>();
  const TensorView& y = out[0];
  const TensorView& a = in[0];
  auto pick = [](int extent, int i) { return extent == 1 ? 0 : i; };
#pragma omp parallel for
  for (int c = 0; c < y.shape.c; ++c)
    for (int yy = 0; yy < y.shape.h; ++yy)
      for (int xx = 0; xx < y.shape.w; ++xx) {
        float va = a.at(pick(a.shape.c, c), pick(a.shape.h, yy), pick(a.shape.w, xx));
        float vb = p.scalar;
        if (!p.with_scalar) {
          const TensorView& b = in[1];
          vb = b.at(pick(b.shape.c, c), pick(b.shape.h, yy), pick(b.shape.w, xx));
        }
        y.at(c, yy, xx) = apply(p.kind, va, vb);
      }
}

}  // namespace

extern const OpDef op_binary_op = {"BinaryOp", infer, run, nullptr};

}  // namespace upres
