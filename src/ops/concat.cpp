// Joins tensors along channels, rows or columns.
#include <cstring>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

int& extent(Shape& s, int axis) {
  return axis == 0 ? s.c : (axis == 1 ? s.h : s.w);
}

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 256);
  const int axis = node.p<ConcatParams>().axis;
  Shape base = in[0], out = in[0];
  extent(base, axis) = 0;
  extent(out, axis) = 0;
  for (Shape s : in) {
    int along = extent(s, axis);
    extent(s, axis) = 0;
    if (s != base)
      op_error(node, fmt::format("inputs {} and {} differ off the concat axis", in[0].str(), s.str()));
    extent(out, axis) += along;
  }
  return {out};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const int axis = node.p<ConcatParams>().axis;
  const TensorView& y = out[0];
  int offset = 0;
  for (const TensorView& x : in) {
    for (int c = 0; c < x.shape.c; ++c)
      for (int yy = 0; yy < x.shape.h; ++yy)
        for (int xx = 0; xx < x.shape.w; ++xx) {
          int oc = c, oy = yy, ox = xx;
          (axis == 0 ? oc : (axis == 1 ? oy : ox)) += offset;
          y.at(oc, oy, ox) = x.at(c, yy, xx);
        }
    offset += axis == 0 ? x.shape.c : (axis == 1 ? x.shape.h : x.shape.w);
  }
}

}  // namespace

extern const OpDef op_concat = {"Concat", infer, run, nullptr};

}  // namespace upres
