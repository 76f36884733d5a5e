// PixelUnshuffle (space to depth): c channels of rh x rw become c * r * r channels of h x w, the
// inverse of PixelShuffle with the same factor and channel order.
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const int r = node.p<PixelShuffleParams>().factor;
  if (r < 1 || in[0].h % r != 0 || in[0].w % r != 0)
    op_error(node, fmt::format("input {}x{} does not divide by factor {}", in[0].w, in[0].h, r));
  return {{in[0].c * r * r, in[0].h / r, in[0].w / r}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<PixelShuffleParams>();
  const int r = p.factor;
  const TensorView& x = in[0];
  const TensorView& y = out[0];
#pragma omp parallel for
  for (int c = 0; c < x.shape.c; ++c)
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < r; ++j) {
        const int dst_c = depth_channel(p, c, i, j, x.shape.c);
        for (int oy = 0; oy < y.shape.h; ++oy)
          for (int ox = 0; ox < y.shape.w; ++ox) y.at(dst_c, oy, ox) = x.at(c, oy * r + i, ox * r + j);
      }
}

}  // namespace

extern const OpDef op_pixel_unshuffle = {"PixelUnshuffle", infer, run, nullptr};

}  // namespace upres
