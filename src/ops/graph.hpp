// The graph IR: ops in execution order over numbered blobs, with their weights.
//
// Loaders (one file per format, e.g. ncnn_loader.cpp) turn files into a Graph; passes rewrite
// it (fuse activations and residual adds into convolutions); backends execute it. Split and
// Input layers of the source format do not survive loading: consumers read the blob directly.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.hpp"

namespace upres {

// Adding an op: a value here, a file in src/ops/, a line in src/ops/op_table.cpp, a test.
enum class OpType {
  convolution,
  deconvolution,
  prelu,
  pixel_shuffle,
  interp,
  binary_op,
  eltwise,
  concat,
  crop,
  pooling,
  inner_product,
  scale,
  relu,
  sigmoid,
  clip,
  swish,
  given,
  tanh,
  mish,
  pad,
  pixel_unshuffle,
  gelu,
  channel_norm,
  group_norm,
  window_attention,
  count,
};

enum class Activation { none, relu, leaky_relu, clip, sigmoid, prelu, swish, tanh, mish, gelu };

struct ActivationParams {
  Activation type = Activation::none;
  float alpha = 0;  // leaky_relu slope; clip minimum
  float beta = 0;   // clip maximum
};

// Convolution and deconvolution (transposed convolution). Weights: [0] weight, laid out
// out_channels x (in_channels / groups) x kernel_h x kernel_w for both; [1] bias (when bias); [2]
// PReLU slopes (when activation is prelu). A grouped convolution (groups > 1, convolution only)
// splits input and output channels into `groups` equal runs, each run of outputs reading only its
// run of inputs (groups == channels: depthwise).
struct ConvParams {
  int out_channels = 0;
  int groups = 1;
  int kernel_w = 1, kernel_h = 1;
  int stride_w = 1, stride_h = 1;
  int dilation_w = 1, dilation_h = 1;
  int pad_left = 0, pad_right = 0, pad_top = 0, pad_bottom = 0;  // deconv: cut from the output
  int output_pad_right = 0, output_pad_bottom = 0;               // deconv only
  bool bias = false;
  ActivationParams activation;
  // Residual epilogue fused by a pass: when the node has a second input r,
  // out = residual_scale_self * activation(conv) + residual_scale_other * r.
  float residual_scale_self = 1, residual_scale_other = 1;
};

// PixelShuffle (depth to space) and PixelUnshuffle (space to depth, its inverse).
struct PixelShuffleParams {
  int factor = 1;
  bool depth_column_row = false;  // false: PyTorch PixelShuffle order (c, i, j)
};
// The channel on the deep side (c * r * r channels) that holds offset (i, j) of channel c of the
// `channels`-channel picture: the one index rule both ops share.
inline int depth_channel(const PixelShuffleParams& p, int c, int i, int j, int channels) {
  const int r = p.factor;
  return p.depth_column_row ? (i * r + j) * channels + c : (c * r + i) * r + j;
}

// Pads rows and columns: with a constant, by mirroring about the edge pixel (reflect: the edge
// is not repeated) or by repeating the edge (edge).
enum class PadMode { constant, reflect, edge };
struct PadParams {
  PadMode mode = PadMode::constant;
  int top = 0, bottom = 0, left = 0, right = 0;
  float value = 0;
};

enum class InterpMode { nearest, bilinear, bicubic };
struct InterpParams {
  InterpMode mode = InterpMode::nearest;
  float scale_h = 1, scale_w = 1;  // used when out_h/out_w are 0
  int out_h = 0, out_w = 0;
  bool align_corners = false;
};

enum class BinaryOpKind { add, sub, mul, div, max, min, pow, rsub, rdiv };
struct BinaryOpParams {
  BinaryOpKind kind = BinaryOpKind::add;
  bool with_scalar = false;
  float scalar = 0;
};

enum class EltwiseKind { prod, sum, max };
struct EltwiseParams {
  EltwiseKind kind = EltwiseKind::sum;
  std::vector<float> coeffs;  // sum only; empty means all ones
};

struct ConcatParams {
  int axis = 0;  // 0: channels, 1: rows, 2: columns
};

// Per axis (channels, rows, columns): begin may be negative (counted from the end); end is
// absolute when end_from_end is false, else dim + end (end <= 0). With a second input, the
// sizes come from it and only begin offsets apply.
struct CropParams {
  int begin[3] = {0, 0, 0};
  int end[3] = {0, 0, 0};
  bool end_from_end[3] = {true, true, true};
};

enum class PoolKind { max, average };
struct PoolingParams {
  PoolKind kind = PoolKind::max;
  bool global = false;
  int kernel_w = 1, kernel_h = 1, stride_w = 1, stride_h = 1;
  int pad_left = 0, pad_right = 0, pad_top = 0, pad_bottom = 0;
  bool count_include_pad = true;
};

// Weights: [0] out x in, [1] bias.
struct InnerProductParams {
  int out_features = 0;
  bool bias = false;
  ActivationParams activation;
};

// Multiplies channels by per-channel factors: weights [0] (or the second input), plus [1] bias.
struct ScaleParams {
  bool from_input = false;
  bool bias = false;
};

struct ReluParams {
  float slope = 0;
};
struct ClipParams {
  float min = 0, max = 1;
};
// Values the caller hands in at run time instead of computing them: the runtime replaces a global
// average pooling by this when a frame is tiled (its frame-wide means come from all tiles).
// Output shape channels x 1 x 1; `values` (owned by the caller, outliving the graph) is read
// at each run.
struct GivenParams {
  int channels = 0;
  const std::vector<float>* values = nullptr;
};
// LayerNorm over the channels of each pixel (SAFMN's and ConvNeXt's "channels first" LayerNorm,
// and a transformer's LayerNorm over the features of each token): per pixel, the channels less
// their mean, divided by sqrt(variance + eps), then times weights[0] plus weights[1] per channel
// (when affine).
struct ChannelNormParams {
  float eps = 1e-5f;
  bool affine = false;
};
// GroupNorm: channels in `groups` equal runs, each normalised over all its channels and pixels.
// Inputs: the picture, then its per-channel mean and mean of squares over the whole frame
// (C x 1 x 1 each, from global average poolings, so that a tiled frame is normalised with the
// whole frame's statistics as the squeeze-excitation split gathers them); weights [0] and [1]
// scale and shift per channel (when affine).
struct GroupNormParams {
  int groups = 1;
  float eps = 1e-5f;
  bool affine = false;
};
// Multi-head self-attention inside windows of the picture (Swin-style transformers): the picture
// is cut into window_h x window_w windows starting shift_y rows and shift_x columns in (wrapping
// around the edges: a cyclic shift), and in each window every pixel (token) attends to every other.
// Inputs 0, 1, 2 hold Q, K and V as heads * head_dim channels starting at q_channel, k_channel and
// v_channel; for head h, token i, the weights are softmax_j(scale * q_i . k_j + bias[h][i][j] +
// mask), the output heads * head_dim channels (head h at h * head_dim) their sums of v_j. weights[0]
// is the bias, heads x N x N (N = window_h * window_w, tokens row-major in their window). With
// `masked`, tokens of a window that wrapped around an edge and tokens that did not get mask_value
// added (Swin's mask for shifted windows), else 0.
struct WindowAttentionParams {
  int heads = 1, head_dim = 1;
  int window_h = 1, window_w = 1;
  int shift_y = 0, shift_x = 0;
  int q_channel = 0, k_channel = 0, v_channel = 0;
  float scale = 1;
  bool masked = false;
  float mask_value = 0;
};
struct NoParams {};

using OpParams = std::variant<NoParams, ConvParams, PixelShuffleParams, InterpParams, BinaryOpParams,
                              EltwiseParams, ConcatParams, CropParams, PoolingParams, InnerProductParams,
                              ScaleParams, ReluParams, ClipParams, GivenParams, PadParams, ChannelNormParams,
                              GroupNormParams, WindowAttentionParams>;

struct Node {
  OpType type = OpType::count;
  std::string name;                  // the layer name in the source file
  int source_line = 0;               // line in the source file, for error messages
  std::vector<int> inputs, outputs;  // blob ids
  OpParams params;
  std::vector<Tensor> weights;

  template <class P>
  const P& p() const {
    return std::get<P>(params);
  }
  template <class P>
  P& p() {
    return std::get<P>(params);
  }
};

class Graph {
 public:
  std::string source;       // file name, for error messages
  std::vector<Node> nodes;  // in an order where every input is produced before it is read
  std::vector<std::string> blob_names;
  int input_blob = -1;
  int output_blob = -1;
  // Input sides must be multiples of this (a model that folds away its own padding to a
  // multiple, e.g. for windows, relies on the runtime padding to it instead).
  int input_alignment = 1;
  // How the model itself pads its input up to that multiple, when it does (reflect in SwinIR- and
  // SPAN-style exports): the runtime pads the same way instead.
  std::optional<PadMode> input_pad_mode;

  int add_blob(const std::string& name);
  // Shapes of every blob for an input of `input` shape; throws Error(invalid_model) naming the
  // layer whose shapes do not fit.
  std::vector<Shape> infer_shapes(Shape input) const;
  // Checks structure: blobs produced once, read after being produced, one output.
  void validate() const;
  // For each blob, the index of the last node reading it (-1 for none; the output is kept).
  std::vector<int> last_uses() const;
  int64_t parameter_count() const;
};

inline bool is_global_average_pooling(const Node& node) {
  return node.type == OpType::pooling && node.p<PoolingParams>().global &&
         node.p<PoolingParams>().kind == PoolKind::average;
}

}  // namespace upres
