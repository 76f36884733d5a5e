// Window attention for the cpu backend (see WindowAttentionParams): one row of windows at a time,
// its queries, keys and values gathered into window-major buffers, then oneDNN's batched matmul
// (Q K^T), the scale, the relative bias and the mask (on the windows that wrap) in one pass, oneDNN's
// softmax in place, a second batched matmul by V, and the result scattered back. Scores exist for
// one row of windows only, whatever the frame's size.
#pragma once

#include <vector>

#include <dnnl.hpp>

#include "ops/graph.hpp"

namespace upres {

class WindowAttentionKernel {
 public:
  WindowAttentionKernel(const Node& node, Shape picture, const dnnl::engine& engine);
  // q, k, v: plain c x h x w pictures (possibly the same); out: heads * head_dim channels.
  void run(const float* q, const float* k, const float* v, float* out, dnnl::stream& stream);

 private:
  WindowAttentionParams p_;
  int height_, width_, across_, tokens_;
  std::vector<float> queries_, keys_, values_, scores_, results_;  // one row of windows
  std::vector<float> relative_;                                    // heads x tokens x tokens
  std::vector<int> pixel_, wrap_;                                  // per window of a row and token, per row
  dnnl::memory q_mem_, k_mem_, v_mem_, s_mem_, o_mem_;
  dnnl::matmul scores_mm_, output_mm_;
  dnnl::softmax_forward softmax_;
};

}  // namespace upres
