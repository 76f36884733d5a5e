#include "backend/cpu/window_attention_kernel.hpp"

#include <omp.h>

#include "ops/window_attention.hpp"

namespace upres {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;

WindowAttentionKernel::WindowAttentionKernel(const Node& node, Shape picture, const dnnl::engine& engine)
    : p_(node.p<WindowAttentionParams>()),
      height_(picture.h),
      width_(picture.w),
      across_(picture.w / p_.window_w),
      tokens_(p_.window_h * p_.window_w),
      relative_(node.weights[0].values) {
  const memory::dim w = across_, h = p_.heads, n = tokens_, d = p_.head_dim;
  const size_t row = size_t(w * h * n);
  queries_.resize(row * size_t(d));
  keys_.resize(row * size_t(d));
  values_.resize(row * size_t(d));
  results_.resize(row * size_t(d));
  scores_.resize(row * size_t(n));
  memory::desc q_md({w, h, n, d}, f32, tag::abcd);
  memory::desc kt_md({w, h, d, n}, f32, tag::abcd);  // K transposed, as it is gathered
  memory::desc s_md({w, h, n, n}, f32, tag::abcd);
  // (oneDNN 2.6 runs this product with a scale or a broadcast bias fused only on its reference
  // kernel, 800x slower: both are added in the pass that applies the mask.)
  scores_mm_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md, kt_md, s_md), engine));
  output_mm_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(s_md, q_md, q_md), engine));
  softmax_ = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, s_md, 3), engine));
  q_mem_ = memory(q_md, engine, queries_.data());
  k_mem_ = memory(kt_md, engine, keys_.data());
  v_mem_ = memory(q_md, engine, values_.data());
  o_mem_ = memory(q_md, engine, results_.data());
  s_mem_ = memory(s_md, engine, scores_.data());
  // Where each token of each window of row r sits, and which edges it wrapped around.
  const int rows = height_ / p_.window_h;
  pixel_.resize(size_t(rows) * size_t(across_) * size_t(tokens_));
  wrap_.resize(pixel_.size());
  for (int r = 0; r < rows; ++r)
    for (int win = 0; win < across_; ++win)
      for (int t = 0; t < tokens_; ++t) {
        const WindowToken token = window_token(p_, height_, width_, r * across_ + win, t);
        const size_t at = (size_t(r) * size_t(across_) + size_t(win)) * size_t(tokens_) + size_t(t);
        pixel_[at] = token.pixel;
        wrap_[at] = token.wrap;
      }
}

void WindowAttentionKernel::run(const float* q, const float* k, const float* v, float* out,
                                dnnl::stream& stream) {
  const int64_t plane = int64_t(height_) * width_;
  const int heads = p_.heads, d = p_.head_dim, n = tokens_;
  const int rows = height_ / p_.window_h;
  for (int r = 0; r < rows; ++r) {
    const int* pixel = &pixel_[size_t(r) * size_t(across_) * size_t(n)];
    const int* wrap = &wrap_[size_t(r) * size_t(across_) * size_t(n)];
#pragma omp parallel for
    for (int wh = 0; wh < across_ * heads; ++wh) {
      const int win = wh / heads, h = wh % heads;
      for (int t = 0; t < n; ++t) {
        const int64_t px = pixel[win * n + t];
        const size_t at = (size_t(wh) * size_t(n) + size_t(t)) * size_t(d);
        for (int j = 0; j < d; ++j) {
          queries_[at + size_t(j)] = q[(p_.q_channel + h * d + j) * plane + px];
          keys_[(size_t(wh) * size_t(d) + size_t(j)) * size_t(n) + size_t(t)] =
              k[(p_.k_channel + h * d + j) * plane + px];
          values_[at + size_t(j)] = v[(p_.v_channel + h * d + j) * plane + px];
        }
      }
    }
    scores_mm_.execute(stream, {{DNNL_ARG_SRC, q_mem_}, {DNNL_ARG_WEIGHTS, k_mem_}, {DNNL_ARG_DST, s_mem_}});
    stream.wait();
    // The scale, the relative bias and, on windows whose tokens wrapped differently, the mask.
#pragma omp parallel for
    for (int wh = 0; wh < across_ * heads; ++wh) {
      const int win = wh / heads, h = wh % heads;
      float* s = &scores_[size_t(wh) * size_t(n) * size_t(n)];
      const float* bias = &relative_[size_t(h) * size_t(n) * size_t(n)];
      for (int e = 0; e < n * n; ++e) s[e] = s[e] * p_.scale + bias[e];
      if (!p_.masked) continue;
      const int* wr = wrap + win * n;
      bool mixed = false;
      for (int t = 1; t < n && !mixed; ++t) mixed = wr[t] != wr[0];
      if (!mixed) continue;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          if (wr[i] != wr[j]) s[i * n + j] += p_.mask_value;
    }
    softmax_.execute(stream, {{DNNL_ARG_SRC, s_mem_}, {DNNL_ARG_DST, s_mem_}});
    output_mm_.execute(stream, {{DNNL_ARG_SRC, s_mem_}, {DNNL_ARG_WEIGHTS, v_mem_}, {DNNL_ARG_DST, o_mem_}});
    stream.wait();
#pragma omp parallel for
    for (int wh = 0; wh < across_ * heads; ++wh) {
      const int win = wh / heads, h = wh % heads;
      for (int t = 0; t < n; ++t) {
        const int64_t px = pixel[win * n + t];
        const size_t at = (size_t(wh) * size_t(n) + size_t(t)) * size_t(d);
        for (int j = 0; j < d; ++j) out[(h * d + j) * plane + px] = results_[at + size_t(j)];
      }
    }
  }
}

}  // namespace upres
