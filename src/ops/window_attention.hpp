// Where window_attention's tokens sit (see WindowAttentionParams): the one rule the loader's
// recognition, the reference kernel and the cpu kernel share (the Vulkan shader writes it in GLSL).
#pragma once

#include "ops/graph.hpp"

namespace upres {

struct WindowToken {
  int pixel;  // y * width + x in the picture
  int wrap;   // the edges it wrapped around: 2 bottom, 1 right
};

// Token `token` (row-major in its window) of window `window` (row-major over the picture) of a
// height x width picture.
inline WindowToken window_token(const WindowAttentionParams& p, int height, int width, int window,
                                int token) {
  const int across = width / p.window_w;
  const int y = (window / across) * p.window_h + token / p.window_w + p.shift_y;
  const int x = (window % across) * p.window_w + token % p.window_w + p.shift_x;
  return {(y % height) * width + x % width, (y >= height) * 2 + (x >= width)};
}

}  // namespace upres
