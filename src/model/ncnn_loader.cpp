// ncnn's .param format: a magic line (7767517), "layer_count blob_count", then one layer per
// line: type name input_count output_count inputs... outputs... key=value...
// Keys below -23300 are arrays: -23300 - key is the real key and the value is "n,v1,...,vn".
// The .bin holds weights in layer order; see BinReader for the encodings.
#include "model/ncnn_loader.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>

#include "core/float16.hpp"
#include "model/loader.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

constexpr int kMagic = 7767517;
constexpr int kMaxLayers = 1 << 20;
constexpr int64_t kMaxWeightCount = int64_t(1) << 28;

[[noreturn]] void fail(const std::string& file, int line, const std::string& problem) {
  if (line > 0) throw Error(ErrorCode::invalid_model, fmt::format("{}:{}: {}", file, line, problem));
  throw Error(ErrorCode::invalid_model, fmt::format("{}: {}", file, problem));
}

// A layer's key=value pairs; scalar values keep their text so ints and floats both parse.
class ParamDict {
 public:
  ParamDict(const std::string& file, int line) : file_(file), line_(line) {}

  void parse(const std::string& token) {
    size_t eq = token.find('=');
    if (eq == std::string::npos || eq == 0) bad(fmt::format("expected key=value, got '{}'", token));
    int key = parse_int(token.substr(0, eq), "key");
    std::string value = token.substr(eq + 1);
    if (key <= -23300) {
      key = -23300 - key;
      std::vector<std::string> items;
      std::stringstream ss(value);
      std::string item;
      while (std::getline(ss, item, ',')) items.push_back(item);
      if (items.empty()) bad(fmt::format("array key {} has no length", key));
      int n = parse_int(items[0], "array length");
      if (n < 0 || size_t(n) != items.size() - 1)
        bad(fmt::format("array key {} says {} items but has {}", key, n, items.size() - 1));
      std::vector<double> values;
      for (size_t i = 1; i < items.size(); ++i) values.push_back(parse_number(items[i]));
      arrays_[key] = std::move(values);
    } else {
      if (key < 0 || key >= 100) bad(fmt::format("key {} is out of range", key));
      scalars_[key] = parse_number(value);
    }
  }

  int get_int(int key, int fallback) const {
    auto it = scalars_.find(key);
    if (it == scalars_.end()) return fallback;
    double v = it->second;
    if (v != std::floor(v) || std::fabs(v) > 1e9) bad(fmt::format("key {} must be an integer", key));
    return int(v);
  }
  float get_float(int key, float fallback) const {
    auto it = scalars_.find(key);
    return it == scalars_.end() ? fallback : float(it->second);
  }
  std::vector<double> get_array(int key) const {
    auto it = arrays_.find(key);
    return it == arrays_.end() ? std::vector<double>{} : it->second;
  }
  bool has(int key) const { return scalars_.count(key) || arrays_.count(key); }

  [[noreturn]] void bad(const std::string& problem) const { fail(file_, line_, problem); }

 private:
  int parse_int(const std::string& s, const char* what) const {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || errno || v < INT32_MIN || v > INT32_MAX)
      bad(fmt::format("{} '{}' is not an integer", what, s));
    return int(v);
  }
  double parse_number(const std::string& s) const {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !std::isfinite(v)) bad(fmt::format("value '{}' is not a number", s));
    return v;
  }

  std::string file_;
  int line_;
  std::map<int, double> scalars_;
  std::map<int, std::vector<double>> arrays_;
};

// Weight arrays from the .bin. A "tagged" array starts with a 4-byte tag: 0x01306B47 means
// float16 follows (padded to 4 bytes), 0 (or 0x0002C056) float32; "raw" arrays are float32
// with no tag (ncnn uses them for biases and slopes).
class BinReader {
 public:
  BinReader(const std::vector<uint8_t>& bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  std::vector<float> tagged(int64_t count, const std::string& layer) {
    check_count(count, layer);
    uint32_t tag = 0;
    take(&tag, 4, layer);
    std::vector<float> v(static_cast<size_t>(count));
    if (tag == 0x01306B47) {
      std::vector<uint16_t> half(static_cast<size_t>(count));
      take(half.data(), size_t(count) * 2, layer);
      skip((4 - (count * 2) % 4) % 4, layer);
      for (size_t i = 0; i < half.size(); ++i) v[i] = half_to_float(half[i]);
    } else if (tag == 0 || tag == 0x0002C056) {
      take(v.data(), size_t(count) * 4, layer);
    } else if (tag == 0x000D4B38) {
      fail(name_, 0,
           fmt::format("layer '{}' has int8 weights, which upres does not load; export "
                       "the model with float16 or float32 weights",
                       layer));
    } else {
      fail(name_, 0,
           fmt::format("layer '{}' has weights at offset {} with unknown encoding tag "
                       "0x{:08x} (quantised tables are not supported)",
                       layer, offset_ - 4, tag));
    }
    check_finite(v, layer);
    return v;
  }

  std::vector<float> raw(int64_t count, const std::string& layer) {
    check_count(count, layer);
    std::vector<float> v(static_cast<size_t>(count));
    take(v.data(), size_t(count) * 4, layer);
    check_finite(v, layer);
    return v;
  }

  size_t remaining() const { return bytes_.size() - offset_; }

 private:
  void check_count(int64_t count, const std::string& layer) {
    if (count <= 0 || count > kMaxWeightCount)
      fail(name_, 0, fmt::format("layer '{}' asks for {} weights", layer, count));
  }
  void check_finite(const std::vector<float>& v, const std::string& layer) {
    for (float f : v)
      if (!std::isfinite(f))
        fail(name_, 0,
             fmt::format("layer '{}' has a weight that is not a finite number "
                         "(corrupt file?)",
                         layer));
  }
  void take(void* dst, size_t n, const std::string& layer) {
    if (n > remaining())
      fail(name_, 0,
           fmt::format("truncated: layer '{}' needs {} bytes at offset {} but the file "
                       "is {} bytes; fetch the model again (upres models fetch)",
                       layer, n, offset_, bytes_.size()));
    std::memcpy(dst, bytes_.data() + offset_, n);
    offset_ += n;
  }
  void skip(size_t n, const std::string& layer) {
    if (n > remaining()) fail(name_, 0, fmt::format("truncated at layer '{}'", layer));
    offset_ += n;
  }

  const std::vector<uint8_t>& bytes_;
  std::string name_;
  size_t offset_ = 0;
};

ActivationParams read_activation(const ParamDict& pd) {
  ActivationParams a;
  std::vector<double> args = pd.get_array(10);
  auto arg = [&](size_t i, float fallback) { return i < args.size() ? float(args[i]) : fallback; };
  switch (pd.get_int(9, 0)) {
    case 0: a.type = Activation::none; break;
    case 1: a.type = Activation::relu; break;
    case 2:
      a.type = Activation::leaky_relu;
      a.alpha = arg(0, 0.f);
      break;
    case 3:
      a.type = Activation::clip;
      a.alpha = arg(0, -INFINITY);
      a.beta = arg(1, INFINITY);
      break;
    case 4: a.type = Activation::sigmoid; break;
    default: pd.bad(fmt::format("activation type {} is not supported", pd.get_int(9, 0)));
  }
  return a;
}

void read_conv(const ParamDict& pd, Node& node, BinReader& bin, bool deconv) {
  ConvParams p;
  p.out_channels = pd.get_int(0, 0);
  p.kernel_w = pd.get_int(1, 0);
  p.kernel_h = pd.get_int(11, p.kernel_w);
  p.dilation_w = pd.get_int(2, 1);
  p.dilation_h = pd.get_int(12, p.dilation_w);
  p.stride_w = pd.get_int(3, 1);
  p.stride_h = pd.get_int(13, p.stride_w);
  p.pad_left = pd.get_int(4, 0);
  p.pad_right = pd.get_int(15, p.pad_left);
  p.pad_top = pd.get_int(14, p.pad_left);
  p.pad_bottom = pd.get_int(16, p.pad_top);
  p.bias = pd.get_int(5, 0) != 0;
  if (deconv) {
    p.output_pad_right = pd.get_int(18, 0);
    p.output_pad_bottom = pd.get_int(19, p.output_pad_right);
    if (pd.get_int(20, 0) || pd.get_int(21, 0)) pd.bad("fixed deconvolution output sizes are not supported");
  } else if (pd.get_float(18, 0) != 0) {
    pd.bad("convolution padding with a non-zero value is not supported");
  }
  if (pd.get_int(8, 0)) pd.bad("int8 convolutions are not supported; use a float model");
  if (pd.get_int(7, 1) != 1) pd.bad("grouped convolutions are not supported");
  int weight_count = pd.get_int(6, 0);
  if (p.out_channels <= 0 || p.kernel_w <= 0 || p.kernel_h <= 0 || p.stride_w <= 0 || p.stride_h <= 0 ||
      p.dilation_w <= 0 || p.dilation_h <= 0 || weight_count <= 0)
    pd.bad("needs positive num_output (0), kernel (1), stride (3), dilation (2) and weight size (6)");
  if (p.pad_left < 0 || p.pad_right < 0 || p.pad_top < 0 || p.pad_bottom < 0 || p.output_pad_right < 0 ||
      p.output_pad_bottom < 0)
    pd.bad("automatic (negative) padding is not supported");
  if (weight_count % (p.out_channels * p.kernel_w * p.kernel_h) != 0)
    pd.bad(fmt::format("weight size {} is not a multiple of {} outputs x {}x{} kernel", weight_count,
                       p.out_channels, p.kernel_w, p.kernel_h));
  p.activation = read_activation(pd);
  if (p.activation.type == Activation::clip && p.activation.alpha > p.activation.beta)
    pd.bad("clip activation has min above max");
  node.weights.emplace_back(Shape{weight_count, 1, 1}, bin.tagged(weight_count, node.name));
  if (p.bias) node.weights.emplace_back(Shape{p.out_channels, 1, 1}, bin.raw(p.out_channels, node.name));
  node.type = deconv ? OpType::deconvolution : OpType::convolution;
  node.params = p;
}

int axis_of(const ParamDict& pd, double axis) {
  int a = int(axis);
  if (a < 0) a += 3;
  if (a < 0 || a > 2) pd.bad(fmt::format("axis {} is out of range for a c x h x w blob", axis));
  return a;
}

CropParams crop_params(const ParamDict& pd, bool has_reference) {
  CropParams p;
  if (pd.has(9) || pd.has(10) || pd.has(11)) {
    std::vector<double> starts = pd.get_array(9), ends = pd.get_array(10), axes = pd.get_array(11);
    if (axes.empty()) axes = {0, 1, 2};
    for (size_t i = 0; i < axes.size(); ++i) {
      int a = axis_of(pd, axes[i]);
      p.begin[a] = i < starts.size() ? int(starts[i]) : 0;
      int end = i < ends.size() ? int(ends[i]) : 0;
      p.end_from_end[a] = end <= 0;
      p.end[a] = end;
    }
    return p;
  }
  const int offset[3] = {pd.get_int(2, 0), pd.get_int(1, 0), pd.get_int(0, 0)};
  const int size[3] = {pd.get_int(5, 0), pd.get_int(4, 0), pd.get_int(3, 0)};
  const int offset2[3] = {pd.get_int(8, 0), pd.get_int(7, 0), pd.get_int(6, 0)};
  for (int a = 0; a < 3; ++a) {
    if (offset[a] < 0 || offset2[a] < 0) pd.bad("negative crop offsets are not supported");
    p.begin[a] = offset[a];
    if (has_reference || size[a] == 0) {
      p.end_from_end[a] = true;
      p.end[a] = -offset2[a];
    } else if (size[a] == -233) {
      p.end_from_end[a] = true;
      p.end[a] = 0;
    } else if (size[a] > 0) {
      p.end_from_end[a] = false;
      p.end[a] = offset[a] + size[a];
    } else {
      pd.bad(fmt::format("crop size {} is not supported", size[a]));
    }
  }
  return p;
}

void read_convolution(const ParamDict& pd, Node& node, BinReader& bin, size_t /*input_count*/) {
  read_conv(pd, node, bin, false);
}

void read_deconvolution(const ParamDict& pd, Node& node, BinReader& bin, size_t /*input_count*/) {
  read_conv(pd, node, bin, true);
}

void read_prelu(const ParamDict& pd, Node& node, BinReader& bin, size_t /*input_count*/) {
  int n = pd.get_int(0, 0);
  if (n <= 0) pd.bad("needs a positive slope count (0)");
  node.type = OpType::prelu;
  node.weights.emplace_back(Shape{n, 1, 1}, bin.raw(n, node.name));
}

void read_pixel_shuffle(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  PixelShuffleParams p;
  p.factor = pd.get_int(0, 1);
  p.depth_column_row = pd.get_int(1, 0) != 0;
  if (p.factor < 1 || p.factor > 16) pd.bad(fmt::format("upscale factor {} is out of range", p.factor));
  node.type = OpType::pixel_shuffle;
  node.params = p;
}

void read_interp(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  InterpParams p;
  switch (pd.get_int(0, 0)) {
    case 1: p.mode = InterpMode::nearest; break;
    case 2: p.mode = InterpMode::bilinear; break;
    case 3: p.mode = InterpMode::bicubic; break;
    default: pd.bad(fmt::format("resize type {} is not supported", pd.get_int(0, 0)));
  }
  p.scale_h = pd.get_float(1, 1.f);
  p.scale_w = pd.get_float(2, 1.f);
  p.out_h = pd.get_int(3, 0);
  p.out_w = pd.get_int(4, 0);
  p.align_corners = pd.get_int(6, 0) != 0;
  if (pd.get_int(5, 0)) pd.bad("dynamic target sizes are not supported");
  if (!(p.scale_h > 0 && p.scale_h <= 16 && p.scale_w > 0 && p.scale_w <= 16) || p.out_h < 0 || p.out_w < 0)
    pd.bad("scale must be in (0, 16] and sizes non-negative");
  node.type = OpType::interp;
  node.params = p;
}

void read_binary_op(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  BinaryOpParams p;
  int kind = pd.get_int(0, 0);
  // ncnn's operation_type numbers, in order.
  static const BinaryOpKind kinds[] = {BinaryOpKind::add, BinaryOpKind::sub,  BinaryOpKind::mul,
                                       BinaryOpKind::div, BinaryOpKind::max,  BinaryOpKind::min,
                                       BinaryOpKind::pow, BinaryOpKind::rsub, BinaryOpKind::rdiv};
  if (kind < 0 || kind > 8) pd.bad(fmt::format("binary op type {} is not supported", kind));
  p.kind = kinds[kind];
  p.with_scalar = pd.get_int(1, 0) != 0;
  p.scalar = pd.get_float(2, 0.f);
  node.type = OpType::binary_op;
  node.params = p;
}

void read_eltwise(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  EltwiseParams p;
  int kind = pd.get_int(0, 1);
  static const EltwiseKind kinds[] = {EltwiseKind::prod, EltwiseKind::sum, EltwiseKind::max};  // ncnn's order
  if (kind < 0 || kind > 2) pd.bad(fmt::format("eltwise op type {} is not supported", kind));
  p.kind = kinds[kind];
  for (double c : pd.get_array(1)) p.coeffs.push_back(float(c));
  node.type = OpType::eltwise;
  node.params = p;
}

void read_concat(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  node.type = OpType::concat;
  node.params = ConcatParams{axis_of(pd, pd.get_int(0, 0))};
}

void read_crop(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t input_count) {
  node.type = OpType::crop;
  node.params = crop_params(pd, input_count == 2);
}

void read_pooling(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  PoolingParams p;
  int kind = pd.get_int(0, 0);
  if (kind != 0 && kind != 1) pd.bad(fmt::format("pooling type {} is not supported", kind));
  p.kind = kind == 0 ? PoolKind::max : PoolKind::average;
  p.global = pd.get_int(4, 0) != 0;
  p.kernel_w = pd.get_int(1, 0);
  p.kernel_h = pd.get_int(11, p.kernel_w);
  p.stride_w = pd.get_int(2, 1);
  p.stride_h = pd.get_int(12, p.stride_w);
  p.pad_left = pd.get_int(3, 0);
  p.pad_top = pd.get_int(13, p.pad_left);
  p.pad_right = pd.get_int(14, p.pad_left);
  p.pad_bottom = pd.get_int(15, p.pad_top);
  p.count_include_pad = pd.get_int(6, 0) != 0;
  if (pd.get_int(7, 0)) pd.bad("adaptive pooling is not supported");
  if (!p.global) {
    if (pd.get_int(5, 0) != 1) pd.bad("windowed pooling is supported with pad_mode 1 (valid) only");
    if (p.kernel_w <= 0 || p.kernel_h <= 0 || p.stride_w <= 0 || p.stride_h <= 0 || p.pad_left < 0 ||
        p.pad_right < 0 || p.pad_top < 0 || p.pad_bottom < 0)
      pd.bad("needs positive kernel and stride and non-negative padding");
  }
  node.type = OpType::pooling;
  node.params = p;
}

void read_inner_product(const ParamDict& pd, Node& node, BinReader& bin, size_t /*input_count*/) {
  InnerProductParams p;
  p.out_features = pd.get_int(0, 0);
  p.bias = pd.get_int(1, 0) != 0;
  int weight_count = pd.get_int(2, 0);
  if (p.out_features <= 0 || weight_count <= 0 || weight_count % p.out_features)
    pd.bad("needs positive num_output (0) and a weight size (2) that divides by it");
  if (pd.get_int(8, 0)) pd.bad("int8 inner products are not supported");
  p.activation = read_activation(pd);
  node.weights.emplace_back(Shape{weight_count, 1, 1}, bin.tagged(weight_count, node.name));
  if (p.bias) node.weights.emplace_back(Shape{p.out_features, 1, 1}, bin.raw(p.out_features, node.name));
  node.type = OpType::inner_product;
  node.params = p;
}

void read_scale(const ParamDict& pd, Node& node, BinReader& bin, size_t /*input_count*/) {
  ScaleParams p;
  int n = pd.get_int(0, 0);
  p.from_input = n == -233;
  p.bias = pd.get_int(1, 0) != 0;
  if (!p.from_input) {
    if (n <= 0) pd.bad("needs a positive scale size (0) or -233");
    node.weights.emplace_back(Shape{n, 1, 1}, bin.raw(n, node.name));
  }
  if (p.bias) {
    if (p.from_input) pd.bad("a bias with scales from an input is not supported");
    node.weights.emplace_back(Shape{n, 1, 1}, bin.raw(n, node.name));
  }
  node.type = OpType::scale;
  node.params = p;
}

void read_relu(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  node.type = OpType::relu;
  node.params = ReluParams{pd.get_float(0, 0.f)};
}

void read_sigmoid(const ParamDict& /*pd*/, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  node.type = OpType::sigmoid;
}

void read_tanh(const ParamDict& /*pd*/, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  node.type = OpType::tanh;
}

void read_mish(const ParamDict& /*pd*/, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  node.type = OpType::mish;
}

void read_swish(const ParamDict& /*pd*/, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  node.type = OpType::swish;
}

void read_clip(const ParamDict& pd, Node& node, BinReader& /*bin*/, size_t /*input_count*/) {
  ClipParams p{pd.get_float(0, -INFINITY), pd.get_float(1, INFINITY)};
  if (p.min > p.max) pd.bad("clip minimum is above its maximum");
  node.type = OpType::clip;
  node.params = p;
}

// ncnn layer types and their readers; a type not here is refused, naming it.
using LayerReader = void (*)(const ParamDict&, Node&, BinReader&, size_t input_count);
const std::unordered_map<std::string, LayerReader>& layer_readers() {
  static const std::unordered_map<std::string, LayerReader> readers = {
      {"Convolution", read_convolution},
      {"Deconvolution", read_deconvolution},
      {"PReLU", read_prelu},
      {"PixelShuffle", read_pixel_shuffle},
      {"Interp", read_interp},
      {"BinaryOp", read_binary_op},
      {"Eltwise", read_eltwise},
      {"Concat", read_concat},
      {"Crop", read_crop},
      {"Pooling", read_pooling},
      {"InnerProduct", read_inner_product},
      {"Scale", read_scale},
      {"ReLU", read_relu},
      {"Sigmoid", read_sigmoid},
      {"Swish", read_swish},
      {"TanH", read_tanh},
      {"Mish", read_mish},
      {"Clip", read_clip},
  };
  return readers;
}

void read_layer(const std::string& type, const ParamDict& pd, Node& node, BinReader& bin,
                size_t input_count) {
  auto it = layer_readers().find(type);
  if (it == layer_readers().end()) pd.bad(fmt::format("layer type '{}' is not supported by upres", type));
  it->second(pd, node, bin, input_count);
}

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> tokens;
  std::istringstream ss(line);
  std::string t;
  while (ss >> t) tokens.push_back(t);
  return tokens;
}

}  // namespace

std::unique_ptr<Graph> load_ncnn_from_memory(const std::string& param_text,
                                             const std::vector<uint8_t>& bin_bytes,
                                             const std::string& param_name, const std::string& bin_name) {
  auto graph = std::make_unique<Graph>();
  graph->source = param_name;
  std::istringstream in(param_text);
  std::string line;
  int line_no = 0;
  auto next_line = [&]() -> bool {
    while (std::getline(in, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") != std::string::npos) return true;
    }
    return false;
  };
  if (!next_line() || split_ws(line) != std::vector<std::string>{std::to_string(kMagic)})
    fail(param_name, line_no, "not an ncnn .param file (the first line must be 7767517)");
  if (!next_line()) fail(param_name, line_no, "missing the 'layer_count blob_count' line");
  int layer_count = 0, blob_count = 0;
  {
    std::vector<std::string> t = split_ws(line);
    char* e1 = nullptr;
    char* e2 = nullptr;
    if (t.size() != 2) fail(param_name, line_no, "expected 'layer_count blob_count'");
    layer_count = int(std::strtol(t[0].c_str(), &e1, 10));
    blob_count = int(std::strtol(t[1].c_str(), &e2, 10));
    if (*e1 || *e2 || layer_count <= 0 || blob_count <= 0 || layer_count > kMaxLayers ||
        blob_count > kMaxLayers)
      fail(param_name, line_no, "layer and blob counts must be positive integers");
  }

  BinReader bin(bin_bytes, bin_name);
  std::unordered_map<std::string, int> blob_ids;
  std::vector<bool> consumed;
  for (int layer = 0; layer < layer_count; ++layer) {
    if (!next_line())
      fail(param_name, line_no, fmt::format("ends after {} of {} layers", layer, layer_count));
    std::vector<std::string> t = split_ws(line);
    ParamDict pd(param_name, line_no);
    if (t.size() < 4) pd.bad("expected 'type name input_count output_count ...'");
    const std::string& type = t[0];
    Node node;
    node.name = t[1];
    node.source_line = line_no;
    char* e1 = nullptr;
    char* e2 = nullptr;
    long n_in = std::strtol(t[2].c_str(), &e1, 10);
    long n_out = std::strtol(t[3].c_str(), &e2, 10);
    if (*e1 || *e2 || n_in < 0 || n_out < 0 || n_in > 256 || n_out > 256 ||
        size_t(4 + n_in + n_out) > t.size())
      pd.bad(fmt::format("layer '{}' has bad input/output counts", node.name));
    std::vector<std::string> inputs(t.begin() + 4, t.begin() + 4 + n_in);
    std::vector<std::string> outputs(t.begin() + 4 + n_in, t.begin() + 4 + n_in + n_out);
    for (size_t i = size_t(4 + n_in + n_out); i < t.size(); ++i) pd.parse(t[i]);

    std::vector<int> input_ids;
    for (const std::string& name : inputs) {
      auto it = blob_ids.find(name);
      if (it == blob_ids.end())
        pd.bad(fmt::format("layer '{}' reads blob '{}' that no earlier layer produces", node.name, name));
      input_ids.push_back(it->second);
    }
    auto define = [&](const std::string& name, int id) {
      if (!blob_ids.emplace(name, id).second) pd.bad(fmt::format("blob '{}' is produced twice", name));
    };
    // Input, Split and no-op layers create no node: their outputs name existing blobs.
    if (type == "Input") {
      if (n_in != 0 || n_out != 1) pd.bad("Input must have no inputs and one output");
      if (graph->input_blob >= 0) pd.bad("a second Input layer; upres models take one input");
      graph->input_blob = graph->add_blob(outputs[0]);
      consumed.push_back(false);
      define(outputs[0], graph->input_blob);
      continue;
    }
    if (type == "Split" || type == "Noop" || type == "Dropout") {
      if (n_in != 1 || n_out < 1) pd.bad(fmt::format("{} must have one input", type));
      for (const std::string& name : outputs) define(name, input_ids[0]);
      continue;
    }
    if (n_out != 1) pd.bad(fmt::format("layer '{}' must have exactly one output", node.name));
    for (int id : input_ids) consumed[size_t(id)] = true;
    node.inputs = input_ids;
    read_layer(type, pd, node, bin, inputs.size());
    int id = graph->add_blob(outputs[0]);
    consumed.push_back(false);
    define(outputs[0], id);
    node.outputs = {id};
    graph->nodes.push_back(std::move(node));
  }
  if (bin.remaining() != 0)
    fail(bin_name, 0,
         fmt::format("has {} bytes beyond the weights {} describes; do the two files "
                     "belong together?",
                     bin.remaining(), param_name));
  if (graph->input_blob < 0) fail(param_name, 0, "has no Input layer");
  std::vector<int> outputs;
  for (size_t b = 0; b < consumed.size(); ++b)
    if (!consumed[b] && int(b) != graph->input_blob) outputs.push_back(int(b));
  if (outputs.size() != 1)
    fail(param_name, 0, fmt::format("must have exactly one output blob, has {}", outputs.size()));
  graph->output_blob = outputs[0];
  graph->validate();
  return graph;
}

std::unique_ptr<Graph> load_ncnn(const std::string& param_path, const std::string& bin_path) {
  std::vector<uint8_t> param_bytes = read_file_bytes(param_path, kMaxModelFileBytes);
  std::string text(param_bytes.begin(), param_bytes.end());
  return load_ncnn_from_memory(text, read_file_bytes(bin_path, kMaxModelFileBytes), param_path, bin_path);
}

namespace {

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool starts_with_magic(const std::string& head) {
  const size_t start = head.find_first_not_of(" \t\r\n");
  return start != std::string::npos && head.compare(start, 7, std::to_string(kMagic)) == 0 &&
         (head.size() == start + 7 || std::isspace(static_cast<unsigned char>(head[start + 7])));
}

// A .param file (by its magic line), or a .bin with its .param beside it; the weights last.
std::optional<ModelSource> sniff_ncnn(const std::string& path, const std::string& head) {
  const bool bin = has_suffix(path, ".bin");
  if (!bin && !starts_with_magic(head)) return std::nullopt;
  const size_t dot = path.rfind('.');
  const std::string stem =
      dot == std::string::npos || path.find('/', dot) != std::string::npos ? path : path.substr(0, dot);
  if (bin) {
    require_regular_file(stem + ".param");
    std::ifstream param(stem + ".param", std::ios::binary);
    std::string param_head(16, '\0');
    param.read(param_head.data(), std::streamsize(param_head.size()));
    param_head.resize(size_t(param.gcount()));
    if (!starts_with_magic(param_head)) return std::nullopt;
  }
  // The .param is the file given (whatever its name), or the one beside the .bin given.
  return ModelSource{"ncnn", {bin ? stem + ".param" : path, stem + ".bin"}};
}

}  // namespace

ModelLoader ncnn_model_loader() {
  return {"ncnn", "a .param file with its .bin beside it", sniff_ncnn, [](const ModelSource& source) {
            if (source.files.size() != 2)
              throw Error(ErrorCode::invalid_model, "an ncnn model is two files, the .param and the .bin");
            return load_ncnn(source.files[0], source.files[1]);
          }};
}

}  // namespace upres
