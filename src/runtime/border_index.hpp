// Where a pixel outside a picture takes its value from: the one rule the upscaler's padding and
// the realesrgan-ncnn-vulkan command line's padding share.
#pragma once

#include <algorithm>

#include "upres/model.hpp"  // BorderMode

namespace upres {

// The index in 0..n-1 that position `i` of a side of `n` pixels reads: itself inside; outside,
// mirrored without repeating the edge pixel (reflect, period 2n - 2) or the nearest edge pixel
// (replicate, and zero, whose callers write the zeros themselves).
inline int border_index(int i, int n, BorderMode mode) {
  if (i >= 0 && i < n) return i;
  if (mode == BorderMode::reflect && n > 1) {
    const int period = 2 * (n - 1);
    const int m = ((i % period) + period) % period;
    return m < n ? m : period - m;
  }
  return std::clamp(i, 0, n - 1);
}

}  // namespace upres
