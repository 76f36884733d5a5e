// Multi-head self-attention inside (shifted) windows (see WindowAttentionParams).
#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "ops/op.hpp"
#include "ops/window_attention.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 3, 3);
  const auto& p = node.p<WindowAttentionParams>();
  if (p.heads < 1 || p.head_dim < 1 || p.window_h < 1 || p.window_w < 1 || p.heads > 4096 ||
      p.head_dim > 4096 || p.window_h > 4096 || p.window_w > 4096 || int64_t(p.window_h) * p.window_w > 65536)
    op_error(node, "has impossible heads or windows");
  const int channels = p.heads * p.head_dim;
  const Shape q = in[0];
  for (size_t k = 0; k < 3; ++k) {
    const int first = k == 0 ? p.q_channel : k == 1 ? p.k_channel : p.v_channel;
    if (in[k].h != q.h || in[k].w != q.w)
      op_error(node, fmt::format("reads pictures of different sizes, {} and {}", q.str(), in[k].str()));
    if (first < 0 || first + channels > in[k].c)
      op_error(node, fmt::format("reads channels {}..{} of a {}-channel picture", first, first + channels - 1,
                                 in[k].c));
  }
  if (q.h % p.window_h || q.w % p.window_w)
    op_error(node, fmt::format("cannot cut {} into {}x{} windows", q.str(), p.window_w, p.window_h));
  const int64_t tokens = int64_t(p.window_h) * p.window_w;
  if (node.weights.size() != 1 || int64_t(node.weights[0].values.size()) != p.heads * tokens * tokens)
    op_error(node, "needs a bias per head and pair of tokens");
  return {{channels, q.h, q.w}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<WindowAttentionParams>();
  const int h = in[0].shape.h, w = in[0].shape.w;
  const int wh = p.window_h, ww = p.window_w, tokens = wh * ww;
  const int windows = (h / wh) * (w / ww);
  const float* bias = node.weights[0].values.data();
#pragma omp parallel for
  for (int win = 0; win < windows * p.heads; ++win) {
    const int window = win / p.heads, head = win % p.heads;
    std::vector<int> y(static_cast<size_t>(tokens)), x(static_cast<size_t>(tokens)),
        wrap(static_cast<size_t>(tokens));
    for (int n = 0; n < tokens; ++n) {
      const WindowToken t = window_token(p, h, w, window, n);
      y[size_t(n)] = t.pixel / w;
      x[size_t(n)] = t.pixel % w;
      wrap[size_t(n)] = t.wrap;
    }
    std::vector<double> weight(static_cast<size_t>(tokens));
    for (int i = 0; i < tokens; ++i) {
      double top = -INFINITY;
      for (int j = 0; j < tokens; ++j) {
        double dot = 0;
        for (int d = 0; d < p.head_dim; ++d)
          dot += double(in[0].at(p.q_channel + head * p.head_dim + d, y[size_t(i)], x[size_t(i)])) *
                 in[1].at(p.k_channel + head * p.head_dim + d, y[size_t(j)], x[size_t(j)]);
        double s =
            p.scale * dot + bias[(size_t(head) * size_t(tokens) + size_t(i)) * size_t(tokens) + size_t(j)];
        if (p.masked && wrap[size_t(i)] != wrap[size_t(j)]) s += p.mask_value;
        weight[size_t(j)] = s;
        top = std::max(top, s);
      }
      double sum = 0;
      for (double& v : weight) sum += (v = std::exp(v - top));
      for (int d = 0; d < p.head_dim; ++d) {
        double acc = 0;
        for (int j = 0; j < tokens; ++j)
          acc +=
              weight[size_t(j)] * in[2].at(p.v_channel + head * p.head_dim + d, y[size_t(j)], x[size_t(j)]);
        out[0].at(head * p.head_dim + d, y[size_t(i)], x[size_t(i)]) = float(acc / sum);
      }
    }
  }
}

double macs(const Node& node, const std::vector<Shape>& in, const std::vector<Shape>&) {
  const auto& p = node.p<WindowAttentionParams>();
  return 2.0 * double(in[0].h) * in[0].w * p.window_h * p.window_w * p.heads * p.head_dim;
}

}  // namespace

extern const OpDef op_window_attention = {"WindowAttention", infer, run, macs};

}  // namespace upres
