// PixelShuffle (depth to space): c * r * r channels of h x w become c channels of rh x rw.
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const int r = node.p<PixelShuffleParams>().factor;
  if (r < 1 || in[0].c % (r * r) != 0)
    op_error(node, fmt::format("{} channels do not divide by factor {} squared", in[0].c, r));
  return {{in[0].c / (r * r), in[0].h * r, in[0].w * r}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<PixelShuffleParams>();
  const int r = p.factor;
  const TensorView& x = in[0];
  const TensorView& y = out[0];
#pragma omp parallel for
  for (int c = 0; c < y.shape.c; ++c)
    for (int i = 0; i < r; ++i)
      for (int j = 0; j < r; ++j) {
        const int src_c = depth_channel(p, c, i, j, y.shape.c);
        for (int sy = 0; sy < x.shape.h; ++sy)
          for (int sx = 0; sx < x.shape.w; ++sx) y.at(c, sy * r + i, sx * r + j) = x.at(src_c, sy, sx);
      }
}

}  // namespace

extern const OpDef op_pixel_shuffle = {"PixelShuffle", infer, run, nullptr};

}  // namespace upres
