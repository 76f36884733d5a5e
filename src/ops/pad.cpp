// Pad: adds rows above and below and columns left and right, filled with a constant, mirrored
// about the edge pixel (reflect) or repeating it (edge).
#include <algorithm>

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

// The source index for padded index `i` (counted from the original start) on an axis of `n`;
// -1 for a constant fill.
int pad_source_index(PadMode mode, int i, int n) {
  if (i >= 0 && i < n) return i;
  switch (mode) {
    case PadMode::constant: return -1;
    case PadMode::edge: return i < 0 ? 0 : n - 1;
    case PadMode::reflect:
      // Reflect without repeating the edge; pads are at most n - 1 (checked), so once is enough.
      return i < 0 ? -i : 2 * (n - 1) - i;
  }
  return -1;
}

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const auto& p = node.p<PadParams>();
  if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) op_error(node, "pads must not be negative");
  if (p.mode == PadMode::reflect &&
      (std::max(p.top, p.bottom) >= in[0].h || std::max(p.left, p.right) >= in[0].w))
    op_error(node, fmt::format("reflect padding of {} needs an input larger than {}x{}",
                               std::max({p.top, p.bottom, p.left, p.right}), in[0].w, in[0].h));
  return {{in[0].c, in[0].h + p.top + p.bottom, in[0].w + p.left + p.right}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<PadParams>();
  const TensorView& x = in[0];
  const TensorView& y = out[0];
#pragma omp parallel for
  for (int c = 0; c < y.shape.c; ++c)
    for (int oy = 0; oy < y.shape.h; ++oy) {
      const int sy = pad_source_index(p.mode, oy - p.top, x.shape.h);
      for (int ox = 0; ox < y.shape.w; ++ox) {
        const int sx = pad_source_index(p.mode, ox - p.left, x.shape.w);
        y.at(c, oy, ox) = sy < 0 || sx < 0 ? p.value : x.at(c, sy, sx);
      }
    }
}

}  // namespace

extern const OpDef op_pad = {"Pad", infer, run, nullptr};

}  // namespace upres
