#include "backend/cpu/interp_kernel.hpp"

#include "ops/interp.hpp"

namespace upres {

InterpKernel::InterpKernel(const InterpParams& params, Shape in, Shape out)
    : in_(in), out_(out), horizontal_(size_t(in.c) * in.h * out.w) {
  auto convert = [](const std::vector<InterpTaps>& taps) {
    std::vector<Tap> t(taps.size());
    for (size_t i = 0; i < taps.size(); ++i) {
      t[i].count = taps[i].count;
      for (int k = 0; k < taps[i].count; ++k) {
        t[i].index[k] = taps[i].index[k];
        t[i].weight[k] = float(taps[i].weight[k]);
      }
    }
    return t;
  };
  rows_ = convert(interp_axis_taps(params, in.h, out.h, true));
  cols_ = convert(interp_axis_taps(params, in.w, out.w, false));
}

void InterpKernel::run(const float* x, float* y) {
  const int C = in_.c, H = in_.h, W = in_.w, OH = out_.h, OW = out_.w;
  const Tap* cols = cols_.data();
  const Tap* rows = rows_.data();
  float* tmp = horizontal_.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (int c = 0; c < C; ++c)
    for (int r = 0; r < H; ++r) {
      const float* src = x + (size_t(c) * H + r) * W;
      float* dst = tmp + (size_t(c) * H + r) * OW;
      for (int o = 0; o < OW; ++o) {
        const Tap& t = cols[o];
        float sum = 0;
        for (int k = 0; k < t.count; ++k) sum += t.weight[k] * src[t.index[k]];
        dst[o] = sum;
      }
    }
#pragma omp parallel for collapse(2) schedule(static)
  for (int c = 0; c < C; ++c)
    for (int o = 0; o < OH; ++o) {
      const Tap& t = rows[o];
      float* dst = y + (size_t(c) * OH + o) * OW;
      const float* r0 = tmp + (size_t(c) * H + t.index[0]) * OW;
      if (t.count == 1) {
        for (int i = 0; i < OW; ++i) dst[i] = r0[i];
        continue;
      }
      for (int i = 0; i < OW; ++i) dst[i] = t.weight[0] * r0[i];
      for (int k = 1; k < t.count; ++k) {
        const float* rk = tmp + (size_t(c) * H + t.index[k]) * OW;
        const float w = t.weight[k];
        for (int i = 0; i < OW; ++i) dst[i] += w * rk[i];
      }
    }
}

}  // namespace upres
