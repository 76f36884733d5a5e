// Reads ONNX models into the graph IR, through the protobuf classes of Debian's libonnx (parsed,
// never checked: newer exporters write IR versions that onnx 1.12's checker refuses).
//
// ONNX tensors are N x C x H x W; the IR's blobs are the C x H x W of a batch of one. Each ONNX
// value becomes one of:
//   - a picture: an IR blob (N = 1);
//   - a constant: known at load time (onnx_fold.hpp), possibly depending on the input size;
//   - a view: a picture reshaped and transposed (how exporters write pixel shuffles with
//     Reshape/Transpose/Reshape); when it becomes a picture again, the loader works out which IR op
//     moves the pixels the same way by running the moves on a picture of index numbers.
// Shape arithmetic depends on the input size, so the model is imported at three sample sizes at
// once (one when its input size is fixed): size-dependent values hold one array per sample and are
// resolved into size-independent op parameters (a resize's scale, a crop's distance from the end).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <unordered_map>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include "core/float16.hpp"
#include "model/loader.hpp"
#include "model/onnx_fold.hpp"
#include "model/onnx_loader.hpp"
#include "model/onnx_patterns.hpp"
#include "model/passes.hpp"
#include "ops/op.hpp"
#include "ops/window_attention.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres {
namespace {

using onnx_fold::Array;
using onnx_fold::Const;

// Input sizes a dynamic model is imported at: multiples of 16 (so that shape arithmetic that
// needs an alignment up to 16 is exact) with H and W varying independently.
constexpr int kSampleH[3] = {48, 80, 112};
constexpr int kSampleW[3] = {80, 112, 48};
constexpr int64_t kMaxWeightCount = int64_t(1) << 28;
constexpr int kMaxSide = 16384;                      // a fixed input size larger than this is refused
constexpr int64_t kMaxViewCount = int64_t(1) << 24;  // elements of a view followed at load time
// Index arrays of views alive at once: a hostile file of many large Expands must not take the
// machine's memory (SwinIR's lightweight model peaks at 0.2 GiB by this count, RealPLKSR at 64
// features at 0.35 GiB).
constexpr int64_t kMaxLiveViewBytes = int64_t(4) << 30;

// A tensor made of a picture's values, moved: at each sample size, the tensor's dims and, for each of
// its elements, the index of the picture value it holds (c * H * W + y * W + x). Every shape op on
// it (Reshape, Transpose, Expand, Slice, Concat of views of one picture) is the same op on these
// index arrays, so a chain of them, however it was written, is known exactly.
struct View {
  int blob = -1;
  // Per sample; never changed once made, so copies of a view (every op on one starts from a copy)
  // share them.
  std::shared_ptr<const std::vector<Array>> arrays;
  const Array& at(size_t s) const { return (*arrays)[s]; }
  const std::vector<int64_t>& dims(size_t s) const { return at(s).dims; }
  void set(std::vector<Array> a) { arrays = std::make_shared<const std::vector<Array>>(std::move(a)); }
  // Each sample's array through f(array, sample).
  template <class F>
  void map(F f) {
    std::vector<Array> next;
    next.reserve(arrays->size());
    for (size_t s = 0; s < arrays->size(); ++s) next.push_back(f(at(s), s));
    set(std::move(next));
  }
};

// Attention scores on their way to the op that runs them: Q K^T (Q and K views of pictures, K's last
// two axes swapped back), times `factor`, plus `bias` (per sample, the scores' shape: relative
// position biases and masks added as constants); `softmax` once normalised over the keys.
struct Scores {
  View q, k;
  double factor = 1;
  std::vector<Array> bias;
  bool softmax = false;
};

struct Value {
  // softplus and tanh_softplus: steps of Mish as exporters before opset 18 write it
  // (x * tanh(softplus(x))), held until the multiplication completes it; scores: attention
  // (see Scores), held until the product with V completes it.
  enum Kind { constant, picture, view, softplus, tanh_softplus, attention } kind = constant;
  Const c;
  int blob = -1;
  View v;
  std::shared_ptr<Scores> scores;
};

class OnnxImporter {
 public:
  OnnxImporter(const onnx::ModelProto& model, std::string name) : model_(model), name_(std::move(name)) {}

  std::unique_ptr<Graph> run() {
    graph_ = std::make_unique<Graph>();
    graph_->source = name_;
    const onnx::GraphProto& g = model_.graph();
    for (const onnx::OperatorSetIdProto& set : model_.opset_import())
      if (set.domain().empty() || set.domain() == "ai.onnx") opset_ = int(set.version());
    for (const onnx::TensorProto& t : g.initializer()) {
      Value v;
      v.c = tensor_const(t, fmt::format("initializer '{}'", t.name()));
      values_[t.name()] = std::move(v);
    }
    read_input(g);
    const OnnxRewrites rewrites = find_onnx_patterns(g);
    auto effective = [&](int i) -> const onnx::NodeProto* {
      if (rewrites.skip[size_t(i)]) return nullptr;
      auto fused = rewrites.replacement.find(i);
      return fused == rewrites.replacement.end() ? &g.node(i) : &fused->second;
    };
    // Views hold index arrays for every sample size: each is dropped once its last reader is in.
    std::unordered_map<std::string, int> reads_left;
    for (int i = 0; i < g.node_size(); ++i)
      if (const onnx::NodeProto* n = effective(i))
        for (const std::string& in : n->input()) ++reads_left[in];
    for (const onnx::ValueInfoProto& out : g.output()) ++reads_left[out.name()];
    for (int i = 0; i < g.node_size(); ++i) {
      const onnx::NodeProto* n = effective(i);
      if (!n) {
        ++node_index_;  // still counted, so that later nodes keep their numbers
        continue;
      }
      import_node(*n);
      for (const std::string& out : n->output()) {
        auto it = values_.find(out);
        if (it == values_.end()) continue;
        const bool held = it->second.kind == Value::view || it->second.kind == Value::attention;
        if (held && reads_left[out] == 0)
          values_.erase(it);  // nothing reads it
        else if (held)
          live_bytes_ += held_bytes(it->second);
      }
      if (live_bytes_ > kMaxLiveViewBytes)
        fail(
            fmt::format("needs more than {} GiB to follow the picture through its reshapes at once; upres "
                        "does not import it",
                        kMaxLiveViewBytes >> 30));
      for (const std::string& in : n->input()) {
        auto it = values_.find(in);
        if (--reads_left[in] == 0 && it != values_.end() &&
            (it->second.kind == Value::view || it->second.kind == Value::attention)) {
          live_bytes_ -= held_bytes(it->second);
          values_.erase(it);
        }
      }
    }
    if (g.output_size() != 1)
      fail_model(fmt::format("has {} outputs; upres runs models with one output picture", g.output_size()));
    const std::string& out = g.output(0).name();
    auto it = values_.find(out);
    if (it == values_.end()) fail_model(fmt::format("nothing produces the output '{}'", out));
    const int blob = picture_of(it->second, nullptr);
    if (blob == graph_->input_blob) fail_model("its output is its input");
    graph_->output_blob = blob;
    graph_->input_alignment = alignment_;
    adapt_to_rgb_in_0_to_1();
    fold_written_out_swish(*graph_);
    fold_scales_into_norms(*graph_);
    fold_scales_into_convs(*graph_);
    graph_->validate();
    return std::move(graph_);
  }

 private:
  // ---- what the model takes and gives ----
  // upres feeds RGB in 0..1 and reads RGB in 0..1 back. A model that takes 0..255 says so in its
  // graph: its first op divides by ~255 or subtracts a mean of that scale (EDSR's MeanShift), and one
  // that gives 0..255 ends by multiplying by ~255 or adding such a mean. A model that takes BGR cannot
  // say so in its graph; its metadata can: upres.channel_order = BGR (and upres.input_range /
  // upres.output_range = 255 override the graph's reading). The loader then wraps the graph in the
  // conversions.
  std::string metadata(const char* key) const {
    for (const onnx::StringStringEntryProto& p : model_.metadata_props())
      if (p.key() == key) return p.value();
    return "";
  }
  static bool within(float v, float lo, float hi) { return std::fabs(v) >= lo && std::fabs(v) <= hi; }
  bool scales_to_255(const Node& n, bool at_input) const {
    if (n.type == OpType::binary_op) {
      const auto& p = n.p<BinaryOpParams>();
      if (!p.with_scalar) return false;
      if (at_input)
        return (p.kind == BinaryOpKind::div && within(p.scalar, 100, 300)) ||
               (p.kind == BinaryOpKind::mul && within(p.scalar, 1 / 300.f, 1 / 100.f)) ||
               ((p.kind == BinaryOpKind::sub || p.kind == BinaryOpKind::add) && within(p.scalar, 50, 200));
      return (p.kind == BinaryOpKind::mul && within(p.scalar, 100, 300)) ||
             (p.kind == BinaryOpKind::div && within(p.scalar, 1 / 300.f, 1 / 100.f)) ||
             (p.kind == BinaryOpKind::add && within(p.scalar, 50, 200));
    }
    if (n.type == OpType::convolution) {  // a 1x1 mean shift: diagonal weights, large offsets
      const auto& p = n.p<ConvParams>();
      if (p.kernel_h != 1 || p.kernel_w != 1 || p.out_channels != 3 || !p.bias || p.groups != 1 ||
          n.weights[0].values.size() != 9 || p.activation.type != Activation::none)
        return false;
      for (int o = 0; o < 3; ++o) {
        for (int i = 0; i < 3; ++i)
          if ((o == i) != (n.weights[0].values[size_t(o * 3 + i)] != 0.f)) return false;
        if (!within(n.weights[1].values[size_t(o)], 50, 200)) return false;
      }
      return true;
    }
    if (n.type == OpType::scale && n.weights.size() == 2) {  // one factor and offset per channel
      for (size_t c = 0; c < n.weights[1].values.size(); ++c)
        if (!within(n.weights[1].values[c], 50, 200) || std::fabs(n.weights[0].values[c]) != 1.f)
          return false;
      return true;
    }
    return false;
  }
  void adapt_to_rgb_in_0_to_1() {
    std::vector<const Node*> readers;
    const Node* producer = nullptr;
    for (const Node& n : graph_->nodes) {
      if (std::find(n.inputs.begin(), n.inputs.end(), graph_->input_blob) != n.inputs.end())
        readers.push_back(&n);
      if (n.outputs[0] == graph_->output_blob) producer = &n;
    }
    auto range_of = [&](const char* key, bool from_graph) {
      const std::string v = metadata(key);
      if (v == "255") return 255.f;
      if (v == "1") return 1.f;
      if (!v.empty()) fail_model(fmt::format("metadata {} = '{}': upres reads 1 or 255", key, v));
      return from_graph ? 255.f : 1.f;
    };
    const float in_range =
        range_of("upres.input_range", readers.size() == 1 && scales_to_255(*readers[0], true));
    const float out_range = range_of("upres.output_range", producer && scales_to_255(*producer, false));
    const std::string order = metadata("upres.channel_order");
    if (!order.empty() && order != "RGB" && order != "BGR")
      fail_model(fmt::format("metadata upres.channel_order = '{}': upres reads RGB or BGR", order));
    const bool bgr = order == "BGR";
    auto convert = [&](bool at_input, float factor) {
      Node n;
      n.name = at_input ? "upres_input" : "upres_output";
      if (bgr) {  // a 1x1 convolution that swaps R and B (and scales), exact in float32
        n.type = OpType::convolution;
        ConvParams p;
        p.out_channels = 3;
        n.params = p;
        std::vector<float> w(9, 0.f);
        for (int c = 0; c < 3; ++c) w[size_t(c * 3 + (2 - c))] = factor;
        n.weights.emplace_back(Shape{9, 1, 1}, std::move(w));
      } else {
        n.type = OpType::binary_op;
        n.params = BinaryOpParams{BinaryOpKind::mul, true, factor};
      }
      if (at_input) {
        const int raw = graph_->add_blob("upres_input");
        n.inputs = {raw};
        n.outputs = {graph_->input_blob};
        graph_->input_blob = raw;
        graph_->nodes.insert(graph_->nodes.begin(), std::move(n));
      } else {
        n.inputs = {graph_->output_blob};
        n.outputs = {graph_->add_blob("upres_output")};
        graph_->output_blob = n.outputs[0];
        graph_->nodes.push_back(std::move(n));
      }
    };
    if (in_range != 1 || bgr) convert(true, in_range);
    if (out_range != 1 || bgr) convert(false, 1 / out_range);
  }

  // ---- errors ----
  [[noreturn]] void fail_model(const std::string& problem) const {
    throw Error(ErrorCode::invalid_model, fmt::format("{}: {}", name_, problem));
  }
  [[noreturn]] void fail(const std::string& problem) const {
    if (!node_) fail_model(problem);
    throw Error(ErrorCode::invalid_model,
                fmt::format("{}: node '{}' ({}): {}", name_, node_->name(), node_->op_type(), problem));
  }
  onnx_fold::Fail failer() const {
    return [this](const std::string& problem) { fail(problem); };
  }

  // ---- tensors ----
  Const tensor_const(const onnx::TensorProto& t, const std::string& what) const {
    if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
      fail_model(
          fmt::format("{} keeps its data in a separate file, which upres does not read; save the model "
                      "with its weights inside (onnx.save(model, path, save_as_external_data=False))",
                      what));
    Const c;
    Array& a = c.at.emplace_back();
    int64_t count = 1;
    for (int64_t d : t.dims()) {
      if (d < 0 || d > kMaxWeightCount) fail_model(fmt::format("{} has a dimension of {}", what, d));
      a.dims.push_back(d);
      count *= d;
      if (count > kMaxWeightCount) fail_model(fmt::format("{} is too large", what));
    }
    const std::string& raw = t.raw_data();
    const bool has_raw = t.has_raw_data();
    // The data is checked against the shape before anything is allocated for it.
    auto raw_items = [&](size_t item_bytes) {
      if (raw.size() != size_t(count) * item_bytes)
        fail_model(fmt::format("{} holds {} bytes but its {} values need {}; the file is damaged", what,
                               raw.size(), count, size_t(count) * item_bytes));
      a.v.resize(size_t(count));
    };
    auto check_count = [&](int64_t have) {
      if (have != count)
        fail_model(
            fmt::format("{} holds {} values but its shape needs {}; the file is damaged", what, have, count));
      a.v.resize(size_t(count));
    };
    switch (t.data_type()) {
      case onnx::TensorProto_DataType_FLOAT:
        if (has_raw) {
          raw_items(4);
          for (int64_t i = 0; i < count; ++i) {
            float f;
            std::memcpy(&f, raw.data() + i * 4, 4);
            a.v[size_t(i)] = f;
          }
        } else {
          check_count(t.float_data_size());
          for (int64_t i = 0; i < count; ++i) a.v[size_t(i)] = t.float_data(int(i));
        }
        break;
      case onnx::TensorProto_DataType_FLOAT16:
      case onnx::TensorProto_DataType_BFLOAT16: {
        const bool half = t.data_type() == onnx::TensorProto_DataType_FLOAT16;
        auto convert = [&](uint16_t bits) { return half ? half_to_float(bits) : bfloat16_to_float(bits); };
        if (has_raw) {
          raw_items(2);
          for (int64_t i = 0; i < count; ++i) {
            uint16_t bits;
            std::memcpy(&bits, raw.data() + i * 2, 2);
            a.v[size_t(i)] = convert(bits);
          }
        } else {
          check_count(t.int32_data_size());
          for (int64_t i = 0; i < count; ++i) a.v[size_t(i)] = convert(uint16_t(t.int32_data(int(i))));
        }
        break;
      }
      case onnx::TensorProto_DataType_DOUBLE:
        if (has_raw) {
          raw_items(8);
          for (int64_t i = 0; i < count; ++i) std::memcpy(&a.v[size_t(i)], raw.data() + i * 8, 8);
        } else {
          check_count(t.double_data_size());
          for (int64_t i = 0; i < count; ++i) a.v[size_t(i)] = t.double_data(int(i));
        }
        break;
      case onnx::TensorProto_DataType_INT64:
        c.integer = true;
        if (has_raw) {
          raw_items(8);
          for (int64_t i = 0; i < count; ++i) {
            int64_t v;
            std::memcpy(&v, raw.data() + i * 8, 8);
            a.v[size_t(i)] = double(v);
          }
        } else {
          check_count(t.int64_data_size());
          for (int64_t i = 0; i < count; ++i) a.v[size_t(i)] = double(t.int64_data(int(i)));
        }
        break;
      case onnx::TensorProto_DataType_INT32:
      case onnx::TensorProto_DataType_INT8:
      case onnx::TensorProto_DataType_UINT8:
      case onnx::TensorProto_DataType_BOOL: {
        c.integer = true;
        const size_t bytes = t.data_type() == onnx::TensorProto_DataType_INT32 ? 4 : 1;
        if (has_raw) {
          raw_items(bytes);
          for (int64_t i = 0; i < count; ++i) {
            const char* p = raw.data() + i * int64_t(bytes);
            if (bytes == 4) {
              int32_t v;
              std::memcpy(&v, p, 4);
              a.v[size_t(i)] = v;
            } else {
              a.v[size_t(i)] =
                  t.data_type() == onnx::TensorProto_DataType_INT8 ? double(int8_t(*p)) : double(uint8_t(*p));
            }
          }
        } else {
          check_count(t.int32_data_size());
          for (int64_t i = 0; i < count; ++i) a.v[size_t(i)] = t.int32_data(int(i));
        }
        break;
      }
      default:
        fail_model(
            fmt::format("{} has element type {}, which upres does not read", what, int(t.data_type())));
    }
    if (!c.integer)
      for (double v : a.v)
        if (!std::isfinite(v))
          fail_model(fmt::format("{} holds a value that is not a finite number (damaged file?)", what));
    return c;
  }

  // ---- the input ----
  void read_input(const onnx::GraphProto& g) {
    const onnx::ValueInfoProto* input = nullptr;
    for (const onnx::ValueInfoProto& in : g.input())
      if (!values_.count(in.name())) {
        if (input) fail_model("has more than one input; upres runs models that take one picture");
        input = &in;
      }
    if (!input) fail_model("has no input");
    const onnx::TypeProto& type = input->type();
    if (!type.has_tensor_type()) fail_model(fmt::format("input '{}' is not a tensor", input->name()));
    const int elem = type.tensor_type().elem_type();
    if (elem != onnx::TensorProto_DataType_FLOAT && elem != onnx::TensorProto_DataType_FLOAT16 &&
        elem != onnx::TensorProto_DataType_BFLOAT16 && elem != onnx::TensorProto_DataType_UNDEFINED)
      fail_model(fmt::format("input '{}' has element type {}; upres feeds floating-point pictures",
                             input->name(), elem));
    int64_t dims[4] = {0, 0, 0, 0};  // 0: not fixed
    if (type.tensor_type().has_shape()) {
      const onnx::TensorShapeProto& shape = type.tensor_type().shape();
      if (shape.dim_size() != 4)
        fail_model(fmt::format("input '{}' has {} dimensions; upres feeds N x C x H x W pictures",
                               input->name(), shape.dim_size()));
      for (int k = 0; k < 4; ++k)
        if (shape.dim(k).has_dim_value() && shape.dim(k).dim_value() > 0) dims[k] = shape.dim(k).dim_value();
    }
    if (dims[0] > 1)
      fail_model(fmt::format("input '{}' has a fixed batch of {}; export it with a batch of 1", input->name(),
                             dims[0]));
    if (dims[1] != 0 && dims[1] != 3)
      fail_model(fmt::format("input '{}' takes {} channels; upres runs models that take RGB (3 channels)",
                             input->name(), dims[1]));
    if (dims[2] > kMaxSide || dims[3] > kMaxSide)
      fail_model(fmt::format("input '{}' has a fixed size of {}x{}, over {} a side", input->name(), dims[3],
                             dims[2], kMaxSide));
    if (dims[2] > 0 && dims[3] > 0) {  // a fixed size: imported at that size only
      sample_h_ = {int(dims[2])};
      sample_w_ = {int(dims[3])};
    } else {
      sample_h_.assign(std::begin(kSampleH), std::end(kSampleH));
      sample_w_.assign(std::begin(kSampleW), std::end(kSampleW));
    }
    graph_->input_blob = graph_->add_blob(input->name());
    shapes_.push_back({});
    for (size_t s = 0; s < samples(); ++s) shapes_.back().push_back(Shape{3, sample_h_[s], sample_w_[s]});
    Value v;
    v.kind = Value::picture;
    v.blob = graph_->input_blob;
    values_[input->name()] = std::move(v);
  }

  size_t samples() const { return sample_h_.size(); }

  // ---- attributes ----
  const onnx::AttributeProto* attr(const char* name) const {
    for (const onnx::AttributeProto& a : node_->attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  int64_t attr_i(const char* name, int64_t fallback) const {
    const onnx::AttributeProto* a = attr(name);
    return a ? a->i() : fallback;
  }
  float attr_f(const char* name, float fallback) const {
    const onnx::AttributeProto* a = attr(name);
    return a ? a->f() : fallback;
  }
  std::string attr_s(const char* name, const std::string& fallback) const {
    const onnx::AttributeProto* a = attr(name);
    return a ? a->s() : fallback;
  }
  std::vector<int64_t> attr_ints(const char* name) const {
    const onnx::AttributeProto* a = attr(name);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
  }

  // ---- inputs ----
  const Value* input(int k) const {
    if (k >= node_->input_size() || node_->input(k).empty()) return nullptr;
    auto it = values_.find(node_->input(k));
    if (it == values_.end())
      fail(fmt::format("reads '{}', which nothing before it produces", node_->input(k)));
    return &it->second;
  }
  const Const& const_input(int k, const char* what) const {
    const Value* v = input(k);
    if (!v) fail(fmt::format("has no {} (input {})", what, k + 1));
    if (v->kind != Value::constant)
      fail(fmt::format("its {} (input {}) is computed from the picture; upres needs it fixed in the model",
                       what, k + 1));
    return v->c;
  }
  const Const* optional_const(int k, const char* what) const {
    const Value* v = input(k);
    return v ? &const_input(k, what) : nullptr;
  }
  // A constant that must be one number, fixed.
  float fixed_scalar(const Const& c, const char* what) const {
    const std::vector<float> v = fixed_floats(c, what);
    if (v.size() != 1) fail(fmt::format("its {} holds {} values, not one", what, v.size()));
    return v[0];
  }
  // A constant that must not depend on the input size, as floats.
  std::vector<float> fixed_floats(const Const& c, const char* what) const {
    if (c.varies()) fail(fmt::format("its {} depends on the input size", what));
    return std::vector<float>(c.at[0].v.begin(), c.at[0].v.end());
  }
  int picture_input(int k) {
    const Value* v = input(k);
    if (!v) fail(fmt::format("has no input {}", k + 1));
    const int blob = picture_of(*v, node_);
    if (v->kind == Value::view) {  // resolved once: later readers share the op
      Value resolved;
      resolved.kind = Value::picture;
      resolved.blob = blob;
      values_[node_->input(k)] = std::move(resolved);
    }
    return blob;
  }

  // ---- building the IR ----
  int add_node(Node n) {
    n.name = node_->name().empty() ? node_->op_type() : node_->name();
    n.source_line = node_index_;
    std::vector<Shape> out_shape;
    std::vector<std::vector<Shape>> in_shapes(samples());
    for (size_t s = 0; s < samples(); ++s) {
      for (int b : n.inputs) in_shapes[s].push_back(shapes_[size_t(b)][s]);
      std::vector<Shape> out = op_def(n.type).infer_shapes(n, in_shapes[s]);
      if (out[0].size() <= 0 || out[0].size() > (int64_t(1) << 34))
        fail(fmt::format("produces an impossible shape {}", out[0].str()));
      out_shape.push_back(out[0]);
    }
    const int blob = graph_->add_blob(node_->output_size() ? node_->output(0) : n.name);
    shapes_.push_back(out_shape);
    n.outputs = {blob};
    graph_->nodes.push_back(std::move(n));
    return blob;
  }
  void define_picture(int output, int blob) {
    Value v;
    v.kind = Value::picture;
    v.blob = blob;
    values_[node_->output(output)] = std::move(v);
  }
  Shape shape(int blob, size_t s) const { return shapes_[size_t(blob)][s]; }
  std::vector<int64_t> onnx_dims(int blob, size_t s) const {
    const Shape sh = shape(blob, s);
    return {1, sh.c, sh.h, sh.w};
  }

  // The picture a value holds; a view is resolved into the op that moves its pixels.
  int picture_of(const Value& v, const onnx::NodeProto* reader) {
    if (v.kind == Value::picture) return v.blob;
    if (v.kind == Value::view) return resolve_view(v.v);
    if (v.kind == Value::softplus || v.kind == Value::tanh_softplus)
      fail("uses Softplus other than as part of Mish (x * tanh(softplus(x))), which upres does not run");
    if (v.kind == Value::attention)
      fail("uses attention scores other than as softmax(Q K^T + bias) V, which upres does not run");
    if (reader) fail("reads a constant where upres expects the picture");
    fail_model("its output is a constant");
  }

  // ---- views: Reshape/Transpose chains over a picture ----
  // A view of the picture `v` holds (it must hold one), to reshape or transpose further.
  View start_view(const Value* v) {
    if (!v) fail("has no input");
    if (v->kind != Value::picture && v->kind != Value::view) picture_of(*v, node_);  // says why not
    if (v->kind == Value::view) return v->v;
    return identity_view(v->blob);
  }
  View identity_view(int blob) const {
    View view;
    view.blob = blob;
    std::vector<Array> arrays;
    for (size_t s = 0; s < samples(); ++s) {
      const Shape in = shape(blob, s);
      if (in.size() > kMaxViewCount) fail("rearranges a picture too large to follow at load time");
      Array& a = arrays.emplace_back();
      a.dims = {1, in.c, in.h, in.w};
      a.v.resize(size_t(in.size()));
      std::iota(a.v.begin(), a.v.end(), 0.0);
    }
    view.set(std::move(arrays));
    return view;
  }
  // Checks a view made by a shape op is not too large to follow.
  void check_view(const View& view) const {
    for (const Array& a : *view.arrays)
      if (a.count() > kMaxViewCount) fail("repeats a picture too large to follow at load time");
  }

  // The view's picture index numbers at one sample size.
  const Array& trace(const View& view, size_t s) const { return view.at(s); }

  int resolve_view(const View& view) {
    for (size_t s = 0; s < samples(); ++s) {
      const std::vector<int64_t>& d = view.dims(s);
      if (d.size() == 4 && d[0] == 1 &&
          (d[1] > (int64_t(1) << 24) || d[2] > kMaxSide * 16 || d[3] > kMaxSide * 16))
        fail(fmt::format("makes an impossible picture [{}]", fmt::join(d, ", ")));
      if (d.size() != 4 || d[0] != 1)
        fail(
            fmt::format("makes a [{}] tensor of the picture; upres follows reshapes and transposes only "
                        "when they come back to a 1 x C x H x W picture",
                        fmt::join(d, ", ")));
    }
    const Shape in = shape(view.blob, 0);
    const std::vector<int64_t>& d = view.dims(0);
    const Shape out{int(d[1]), int(d[2]), int(d[3])};
    // Candidates: nothing moved, or a pixel (un)shuffle by the ratio of the sides, in either order.
    std::vector<Node> candidates;
    if (out == in) candidates.emplace_back();
    for (bool dcr : {false, true}) {
      Node n;
      n.params = PixelShuffleParams{0, dcr};
      if (out.h > in.h && out.h % in.h == 0) {
        n.type = OpType::pixel_shuffle;
        n.p<PixelShuffleParams>().factor = out.h / in.h;
        candidates.push_back(n);
      } else if (out.h < in.h && in.h % out.h == 0) {
        n.type = OpType::pixel_unshuffle;
        n.p<PixelShuffleParams>().factor = in.h / out.h;
        candidates.push_back(n);
      }
    }
    for (Node& candidate : candidates) {
      bool same = true;
      for (size_t s = 0; s < std::min<size_t>(samples(), 2) && same; ++s) {
        const Array& moved = trace(view, s);
        const Shape sh = shape(view.blob, s);
        Tensor index(sh);
        std::iota(index.values.begin(), index.values.end(), 0.f);
        if (candidate.type == OpType::count) {
          same = moved.v == std::vector<double>(index.values.begin(), index.values.end());
          continue;
        }
        std::vector<Shape> o;
        try {
          o = op_def(candidate.type).infer_shapes(candidate, {sh});
        } catch (const Error&) {
          same = false;
          continue;
        }
        if (std::vector<int64_t>{1, o[0].c, o[0].h, o[0].w} != moved.dims) {
          same = false;
          continue;
        }
        Tensor result(o[0]);
        op_def(candidate.type).run_reference(candidate, {index.view()}, {result.view()});
        same = moved.v == std::vector<double>(result.values.begin(), result.values.end());
      }
      if (!same) continue;
      if (candidate.type == OpType::count) return view.blob;
      candidate.inputs = {view.blob};
      return add_node(candidate);
    }
    if (std::optional<std::vector<int>> picked = channels_picked(view)) {
      std::vector<std::pair<int, int>> sources;
      for (int c : *picked) sources.emplace_back(view.blob, c);
      return gather_channels(sources);
    }
    fail(
        "rearranges the picture's pixels in a way upres does not run (it runs pixel shuffles and unshuffles, "
        "in either channel order, and channels repeated or reordered)");
  }

  // When every channel of the view is a whole channel of its picture (repeat_interleave, channel
  // reorders written as Unsqueeze/Expand/Reshape), the picture's channel each one is, else nothing.
  std::optional<std::vector<int>> channels_picked(const View& view) const {
    std::vector<int> picked;
    for (size_t s = 0; s < std::min<size_t>(samples(), 2); ++s) {
      const Shape in = shape(view.blob, s);
      const std::vector<int64_t>& d = view.dims(s);
      if (d[2] != in.h || d[3] != in.w) return std::nullopt;
      const Array& moved = trace(view, s);
      const int64_t plane = int64_t(in.h) * in.w;
      for (int64_t c = 0; c < d[1]; ++c) {
        const double first = moved.v[size_t(c * plane)];
        const int64_t source = int64_t(first) / plane;
        if (first != double(source * plane)) return std::nullopt;
        for (int64_t i = 0; i < plane; ++i)
          if (moved.v[size_t(c * plane + i)] != double(source * plane + i)) return std::nullopt;
        if (s == 0)
          picked.push_back(int(source));
        else if (picked[size_t(c)] != int(source))
          return std::nullopt;
      }
    }
    return picked;
  }

  // A picture made of whole channels of others, in order: a channel crop per run of consecutive
  // channels of one picture, and a concat of the runs (one op when a run is the whole output).
  int gather_channels(const std::vector<std::pair<int, int>>& sources) {
    std::vector<int> runs;
    for (size_t k = 0; k < sources.size();) {
      size_t end = k + 1;
      while (end < sources.size() && sources[end].first == sources[k].first &&
             sources[end].second == sources[end - 1].second + 1)
        ++end;
      const int blob = sources[k].first, first = sources[k].second, count = int(end - k);
      if (first == 0 && count == shape(blob, 0).c) {
        runs.push_back(blob);
      } else {
        Node crop;
        crop.type = OpType::crop;
        crop.inputs = {blob};
        CropParams p;
        p.begin[0] = first;
        p.end[0] = first + count;
        p.end_from_end[0] = false;
        crop.params = p;
        runs.push_back(add_node(std::move(crop)));
      }
      k = end;
    }
    if (runs.size() == 1) return runs[0];
    Node cat;
    cat.type = OpType::concat;
    cat.inputs = runs;
    cat.params = ConcatParams{0};
    return add_node(std::move(cat));
  }

  // ---- pointwise ops on views ----
  // A pointwise op on a view runs on the view's whole picture; its result is the same view of the
  // op's output picture (tokens x channels stay tokens x channels).
  std::optional<View> pointwise_view_;
  int pointwise_input(int k) {
    pointwise_view_.reset();
    const Value* v = input(k);
    if (v && v->kind == Value::view) {
      pointwise_view_ = v->v;
      return v->v.blob;
    }
    return picture_input(k);
  }
  void define_pointwise(int blob) {
    if (!pointwise_view_) return define_picture(0, blob);
    View view = std::move(*pointwise_view_);
    pointwise_view_.reset();
    view.blob = blob;
    define_view(std::move(view));
  }

  // The picture's channel count when the view's last axis runs over all of its picture's channels in
  // order (tokens x channels, as transformers hold a picture), else 0.
  int channels_last(const View& view) const {
    int channels = 0;
    for (size_t s = 0; s < samples(); ++s) {
      const Shape sh = shape(view.blob, s);
      const int64_t plane = int64_t(sh.h) * sh.w;
      const Array& a = view.at(s);
      if (a.dims.empty() || a.dims.back() != sh.c) return 0;
      for (size_t row = 0; row < a.v.size(); row += size_t(sh.c)) {
        const double base = a.v[row];
        if (base >= double(plane)) return 0;
        for (int c = 1; c < sh.c; ++c)
          if (a.v[row + size_t(c)] != base + double(c) * double(plane)) return 0;
      }
      channels = sh.c;
    }
    return channels;
  }
  // The same tokens of a picture of `channels` channels (the output of a per-token op such as a
  // linear layer): each row of the last axis starts at the same pixel.
  View with_channels(const View& view, int blob, int channels) const {
    View out;
    out.blob = blob;
    std::vector<Array> arrays;
    for (size_t s = 0; s < samples(); ++s) {
      const Shape sh = shape(view.blob, s);
      const Array& a = view.at(s);
      Array& b = arrays.emplace_back();
      b.dims = a.dims;
      b.dims.back() = channels;
      const int64_t plane = int64_t(sh.h) * sh.w;
      b.v.reserve(size_t(a.count() / sh.c * channels));
      for (size_t row = 0; row < a.v.size(); row += size_t(sh.c))
        for (int c = 0; c < channels; ++c) b.v.push_back(a.v[row] + double(c) * double(plane));
    }
    out.set(std::move(arrays));
    return out;
  }

  // What a view or attention value holds in index arrays (shared arrays counted for each holder:
  // an upper bound).
  static int64_t held_bytes(const Value& v) {
    auto bytes = [](const View& view) {
      int64_t n = 0;
      if (view.arrays)
        for (const Array& a : *view.arrays) n += int64_t(a.v.size()) * int64_t(sizeof(double));
      return n;
    };
    if (v.kind == Value::view) return bytes(v.v);
    if (v.kind != Value::attention || !v.scores) return 0;
    int64_t n = bytes(v.scores->q) + bytes(v.scores->k);
    for (const Array& a : v.scores->bias) n += int64_t(a.v.size()) * int64_t(sizeof(double));
    return n;
  }

  void define_view(View view) {
    Value v;
    v.kind = Value::view;
    v.v = std::move(view);
    values_[node_->output(0)] = std::move(v);
  }

  // Reshape-like ops on a picture or a view: the new dims per sample.
  void view_reshape(
      const std::function<std::vector<int64_t>(const std::vector<int64_t>& dims, size_t s)>& new_dims) {
    View view = start_view(input(0));
    view.map([&](const Array& a, size_t s) {
      return onnx_fold::reshape(a, resolve_reshape(a.dims, new_dims(a.dims, s)), true, failer());
    });
    define_view(std::move(view));
  }

  std::vector<int64_t> resolve_reshape(const std::vector<int64_t>& from,
                                       const std::vector<int64_t>& target) const {
    std::vector<int64_t> dims = target;
    int64_t n = 1, known = 1;
    for (int64_t x : from) n *= x;
    int infer = -1;
    for (size_t k = 0; k < dims.size(); ++k) {
      if (dims[k] == 0 && attr_i("allowzero", 0) == 0) {
        if (k >= from.size()) fail("copies a dimension the input lacks");
        dims[k] = from[k];
      }
      if (dims[k] == -1) {
        if (infer >= 0) fail("has two -1 dimensions");
        infer = int(k);
      } else if (dims[k] <= 0) {
        fail(fmt::format("reshapes to [{}]", fmt::join(target, ", ")));
      } else {
        known *= dims[k];
      }
    }
    if (infer >= 0 && known > 0 && n % known == 0) dims[size_t(infer)] = n / known;
    int64_t m = 1;
    for (int64_t x : dims) {
      if (x < 1 || x > n)
        fail(fmt::format("cannot reshape [{}] to [{}]", fmt::join(from, ", "), fmt::join(target, ", ")));
      m *= x;
    }
    if (m != n)
      fail(fmt::format("cannot reshape [{}] to [{}]{}", fmt::join(from, ", "), fmt::join(target, ", "),
                       samples() == 1 ? "" : " (at a sample input size: does the model take any size?)"));
    return dims;
  }

  // ---- nodes ----
  void import_node(const onnx::NodeProto& node) {
    node_ = &node;
    ++node_index_;
    const std::string& op = node.op_type();
    if (node.output_size() == 0) fail("has no output");
    for (const std::string& name : node.output()) {
      if (name.empty()) fail("has an output with no name");
      if (values_.count(name)) fail(fmt::format("writes '{}', which is already defined", name));
    }
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      fail(fmt::format("is from operator domain '{}', which upres does not run", node.domain()));
    if (op == "Constant") return import_constant();
    // The shape of a picture (or view) is known at every sample size.
    if (op == "Shape" && input(0) && input(0)->kind != Value::constant)
      return picture_shape(start_view(input(0)));
    bool all_constant = node.input_size() > 0;
    std::vector<const Const*> consts;
    for (int k = 0; k < node.input_size(); ++k) {
      const Value* v = input(k);
      if (v && v->kind != Value::constant) all_constant = false;
      consts.push_back(v && v->kind == Value::constant ? &v->c : nullptr);
    }
    if (all_constant && fold_into_outputs(consts)) return;
    import_picture_op(op);
  }

  void picture_shape(const View& view) {
    Const c;
    c.integer = true;
    const int64_t rank = int64_t(view.dims(0).size());
    int64_t start = attr_i("start", 0), end = attr_i("end", rank);
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, start, rank);
    for (size_t s = 0; s < samples(); ++s) {
      const std::vector<int64_t>& d = view.dims(s);
      c.at.push_back(Array::vector({d.begin() + start, d.begin() + end}));
    }
    set_constant(0, std::move(c));
  }

  bool fold_into_outputs(const std::vector<const Const*>& in) {
    onnx_fold::Attributes attrs;
    attrs.i = [this](const char* name, int64_t fallback) { return attr_i(name, fallback); };
    attrs.ints = [this](const char* name) { return attr_ints(name); };
    std::optional<Const> value_attr;
    attrs.tensor = [&](const char* name) -> const Const* {
      const onnx::AttributeProto* a = attr(name);
      if (!a || !a->has_t()) return nullptr;
      value_attr = tensor_const(a->t(), fmt::format("node '{}' attribute '{}'", node_->name(), name));
      return &*value_attr;
    };
    onnx_fold::FoldContext cx;
    cx.samples = samples();
    cx.outputs = size_t(node_->output_size());
    cx.fail = failer();
    cx.divides = [this](const Const& x, double divisor) { require_exact_division(x, divisor); };
    std::vector<Const> out;
    divided_ = false;
    if (!onnx_fold::fold(node_->op_type(), in, attrs, cx, out)) return false;
    bool from_alignment = divided_;
    for (const Const* c : in) from_alignment = from_alignment || (c && c->from_alignment);
    for (size_t k = 0; k < out.size() && int(k) < node_->output_size(); ++k) {
      out[k].from_alignment = from_alignment;
      set_constant(int(k), std::move(out[k]));
    }
    return true;
  }

  void require_exact_division(const Const& x, double divisor) {
    // Element by element: a list of sizes divided at once (Shape / 2) needs each to divide.
    for (size_t s = 1; s < x.at.size(); ++s)
      if (x.at[s].count() != x.at[0].count()) fail("divides a list whose length depends on the input size");
    for (size_t k = 0; k < size_t(x.at[0].count()); ++k) {
      std::vector<double> at;
      for (const Array& sample : x.at) at.push_back(sample.v[k]);
      if (std::all_of(at.begin(), at.end(), [&](double v) { return v == at[0]; })) continue;
      const int a = onnx_fold::alignment_for_division(at, sample_h_, sample_w_, divisor, alignment_);
      if (a == 0)
        fail(fmt::format(
            "divides a size by {} in a way that depends on the input size beyond what upres folds "
            "(input sides that are multiples of up to 16)",
            divisor));
      alignment_ = a;
      divided_ = true;
    }
  }

  void set_constant(int output, Const c) {
    // A value that came out the same at every sample is one array.
    if (c.varies()) {
      bool same = true;
      for (size_t s = 1; s < c.at.size(); ++s)
        same = same && c.at[s].dims == c.at[0].dims && c.at[s].v == c.at[0].v;
      if (same) c.at.resize(1);
    }
    Value v;
    v.c = std::move(c);
    values_[node_->output(output)] = std::move(v);
  }

  void import_constant() {
    Const c;
    if (const onnx::AttributeProto* a = attr("value")) {
      c = tensor_const(a->t(), fmt::format("node '{}' value", node_->name()));
    } else if (const onnx::AttributeProto* a = attr("value_float")) {
      c.at.push_back(Array::scalar(a->f()));
    } else if (const onnx::AttributeProto* a = attr("value_int")) {
      c.integer = true;
      c.at.push_back(Array::scalar(double(a->i())));
    } else if (const onnx::AttributeProto* a = attr("value_ints")) {
      c.integer = true;
      c.at.push_back(Array::vector({a->ints().begin(), a->ints().end()}));
    } else if (const onnx::AttributeProto* a = attr("value_floats")) {
      c.at.push_back(Array::vector({a->floats().begin(), a->floats().end()}));
    } else {
      fail("has no value upres reads");
    }
    set_constant(0, std::move(c));
  }

  void import_picture_op(const std::string& op) {
    using Handler = void (OnnxImporter::*)();
    static const std::map<std::string, Handler> handlers = {
        {"Conv", &OnnxImporter::conv},
        {"ConvTranspose", &OnnxImporter::conv_transpose},
        {"Relu", &OnnxImporter::relu},
        {"LeakyRelu", &OnnxImporter::relu},
        {"PRelu", &OnnxImporter::prelu},
        {"Sigmoid", &OnnxImporter::unary},
        {"Tanh", &OnnxImporter::unary},
        {"Mish", &OnnxImporter::unary},
        {"Softplus", &OnnxImporter::softplus},
        {"Clip", &OnnxImporter::clip},
        {"Add", &OnnxImporter::binary},
        {"Sub", &OnnxImporter::binary},
        {"Mul", &OnnxImporter::binary},
        {"Div", &OnnxImporter::binary},
        {"Max", &OnnxImporter::binary},
        {"Min", &OnnxImporter::binary},
        {"Concat", &OnnxImporter::concat},
        {"DepthToSpace", &OnnxImporter::depth_to_space},
        {"SpaceToDepth", &OnnxImporter::space_to_depth},
        {"Resize", &OnnxImporter::resize},
        {"Upsample", &OnnxImporter::resize},
        {"Pad", &OnnxImporter::pad},
        {"Slice", &OnnxImporter::slice},
        {"Split", &OnnxImporter::split},
        {"Identity", &OnnxImporter::identity},
        {"Dropout", &OnnxImporter::identity},
        {"Cast", &OnnxImporter::cast},
        {"Reshape", &OnnxImporter::reshape},
        {"Transpose", &OnnxImporter::transpose},
        {"Squeeze", &OnnxImporter::squeeze},
        {"Unsqueeze", &OnnxImporter::squeeze},
        {"BatchNormalization", &OnnxImporter::batch_norm},
        {"GlobalAveragePool", &OnnxImporter::global_pool},
        {"GlobalMaxPool", &OnnxImporter::global_pool},
        {"ReduceMean", &OnnxImporter::reduce_mean},
        {"AveragePool", &OnnxImporter::pool},
        {"MaxPool", &OnnxImporter::pool},
        {"Gelu", &OnnxImporter::gelu},
        {"ChannelLayerNorm", &OnnxImporter::channel_layer_norm},
        {"InstanceNormalization", &OnnxImporter::instance_norm},
        {"GroupNormalization", &OnnxImporter::group_norm},
        {"Expand", &OnnxImporter::expand},
        {"ScatterND", &OnnxImporter::scatter_nd},
        {"MatMul", &OnnxImporter::matmul},
        {"LayerNormalization", &OnnxImporter::layer_norm},
        {"Softmax", &OnnxImporter::softmax},
        {"Gather", &OnnxImporter::gather},
    };
    auto it = handlers.find(op);
    if (it == handlers.end()) unsupported();
    (this->*(it->second))();
  }

  [[noreturn]] void unsupported() {
    const std::string& op = node_->op_type();
    if (op == "Erf") fail("upres runs Erf only as part of GELU (x * 0.5 * (1 + erf(x / sqrt(2))))");
    if (op == "Gemm" || op == "Einsum")
      fail(fmt::format(
          "upres does not run the op {} yet: of transformers it runs window attention written with MatMul "
          "and Softmax (SwinIR)",
          op));
    fail(fmt::format(
        "upres does not run the op {} on pictures; it runs Conv, ConvTranspose, Relu, LeakyRelu, "
        "PRelu, Sigmoid, Tanh, Mish, Clip, Add, Sub, Mul, Div, Max, Min, Concat, DepthToSpace, "
        "SpaceToDepth, Resize, Pad, Slice, Split, Reshape/Transpose (as pixel shuffles), pooling, "
        "normalisations, GELU, window attention (MatMul, Softmax) and the shape arithmetic "
        "around them",
        node_->op_type()));
  }

  // Conv pads and auto_pad for a stride-1 (or explicitly padded) layer: top, left, bottom, right.
  std::array<int, 4> conv_pads(int kh, int kw, int dh, int dw, int sh, int sw) const {
    const std::string auto_pad = attr_s("auto_pad", "NOTSET");
    std::array<int, 4> pads{0, 0, 0, 0};
    if (auto_pad == "NOTSET") {
      std::vector<int64_t> p = attr_ints("pads");
      if (!p.empty() && p.size() != 4) fail("pads must list four values for a 2-D layer");
      for (size_t k = 0; k < p.size(); ++k) {
        if (p[k] < 0 || p[k] > 4096) fail(fmt::format("pad {} is out of range", p[k]));
        pads[k] = int(p[k]);
      }
    } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      if (sh != 1 || sw != 1)
        fail("automatic SAME padding with a stride is not supported; export with explicit pads");
      const int th = dh * (kh - 1), tw = dw * (kw - 1);
      const bool upper = auto_pad == "SAME_UPPER";
      pads = {upper ? th / 2 : th - th / 2, upper ? tw / 2 : tw - tw / 2, upper ? th - th / 2 : th / 2,
              upper ? tw - tw / 2 : tw / 2};
    } else if (auto_pad != "VALID") {
      fail(fmt::format("auto_pad '{}' is not supported", auto_pad));
    }
    return pads;
  }

  ConvParams conv_params(const std::vector<int64_t>& wdims, int out_channels) const {
    if (wdims.size() != 4) fail("has a weight that is not 4-D; upres runs 2-D convolutions");
    ConvParams p;
    p.out_channels = out_channels;
    p.kernel_h = int(wdims[2]);
    p.kernel_w = int(wdims[3]);
    std::vector<int64_t> k = attr_ints("kernel_shape");
    if (!k.empty() && (k.size() != 2 || k[0] != wdims[2] || k[1] != wdims[3]))
      fail("kernel_shape does not match the weight");
    auto pair = [&](const char* name, int fallback) {
      std::vector<int64_t> v = attr_ints(name);
      if (v.empty()) return std::array<int, 2>{fallback, fallback};
      if (v.size() != 2 || v[0] < 1 || v[1] < 1 || v[0] > 64 || v[1] > 64)
        fail(fmt::format("{} must be two values from 1 to 64", name));
      return std::array<int, 2>{int(v[0]), int(v[1])};
    };
    const auto strides = pair("strides", 1), dilations = pair("dilations", 1);
    p.stride_h = strides[0];
    p.stride_w = strides[1];
    p.dilation_h = dilations[0];
    p.dilation_w = dilations[1];
    const int64_t group = attr_i("group", 1);
    if (group < 1 || group > 65536) fail(fmt::format("group {} is out of range", group));
    p.groups = int(group);
    return p;
  }

  void conv() {
    Node n;
    n.type = OpType::convolution;
    n.inputs = {picture_input(0)};
    const Const& w = const_input(1, "weight");
    if (w.varies()) fail("its weight depends on the input size");
    const std::vector<int64_t>& wd = w.at[0].dims;
    if (wd.size() != 4) fail("has a weight that is not 4-D; upres runs 2-D convolutions");
    ConvParams p = conv_params(wd, int(wd[0]));
    const std::array<int, 4> pads =
        conv_pads(p.kernel_h, p.kernel_w, p.dilation_h, p.dilation_w, p.stride_h, p.stride_w);
    p.pad_top = pads[0];
    p.pad_left = pads[1];
    p.pad_bottom = pads[2];
    p.pad_right = pads[3];
    const Shape in = shape(n.inputs[0], 0);
    if (wd[1] * p.groups != in.c)
      fail(fmt::format("weight takes {} x {} groups input channels, the picture has {}", wd[1], p.groups,
                       in.c));
    if (wd[0] % p.groups) fail(fmt::format("{} outputs do not split into {} groups", wd[0], p.groups));
    n.weights.emplace_back(Shape{int(w.at[0].count()), 1, 1}, fixed_floats(w, "weight"));
    if (const Const* b = optional_const(2, "bias")) {
      if (b->at[0].count() != wd[0]) fail("bias does not have one value per output channel");
      p.bias = true;
      n.weights.emplace_back(Shape{int(wd[0]), 1, 1}, fixed_floats(*b, "bias"));
    }
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  void conv_transpose() {
    Node n;
    n.type = OpType::deconvolution;
    n.inputs = {picture_input(0)};
    const Const& w = const_input(1, "weight");
    if (w.varies()) fail("its weight depends on the input size");
    const std::vector<int64_t>& wd = w.at[0].dims;  // in x out/group x kh x kw
    if (wd.size() != 4) fail("has a weight that is not 4-D; upres runs 2-D convolutions");
    ConvParams p = conv_params(wd, int(wd[1]));
    if (p.groups != 1) fail("grouped transposed convolutions are not supported");
    if (!attr_ints("output_shape").empty()) fail("output_shape is not supported; export with pads instead");
    const std::string auto_pad = attr_s("auto_pad", "NOTSET");
    if (auto_pad != "NOTSET" && auto_pad != "VALID")
      fail(fmt::format("auto_pad '{}' is not supported", auto_pad));
    std::vector<int64_t> pads = attr_ints("pads"), out_pad = attr_ints("output_padding");
    if (!pads.empty()) {
      if (pads.size() != 4) fail("pads must list four values");
      for (int64_t v : pads)
        if (v < 0 || v > 4096) fail("pads are out of range");
      p.pad_top = int(pads[0]);
      p.pad_left = int(pads[1]);
      p.pad_bottom = int(pads[2]);
      p.pad_right = int(pads[3]);
    }
    if (!out_pad.empty()) {
      if (out_pad.size() != 2 || out_pad[0] < 0 || out_pad[1] < 0 || out_pad[0] > 64 || out_pad[1] > 64)
        fail("output_padding must be two small values");
      p.output_pad_bottom = int(out_pad[0]);
      p.output_pad_right = int(out_pad[1]);
    }
    const Shape in = shape(n.inputs[0], 0);
    if (wd[0] != in.c) fail(fmt::format("weight takes {} input channels, the picture has {}", wd[0], in.c));
    // ONNX keeps in x out x kh x kw; the IR out x in x kh x kw.
    const std::vector<double>& v = w.at[0].v;
    const int64_t ic = wd[0], oc = wd[1], taps = wd[2] * wd[3];
    std::vector<float> weights(v.size());
    for (int64_t i = 0; i < ic; ++i)
      for (int64_t o = 0; o < oc; ++o)
        for (int64_t t = 0; t < taps; ++t)
          weights[size_t((o * ic + i) * taps + t)] = float(v[size_t((i * oc + o) * taps + t)]);
    n.weights.emplace_back(Shape{int(weights.size()), 1, 1}, std::move(weights));
    if (const Const* b = optional_const(2, "bias")) {
      if (b->at[0].count() != oc) fail("bias does not have one value per output channel");
      p.bias = true;
      n.weights.emplace_back(Shape{int(oc), 1, 1}, fixed_floats(*b, "bias"));
    }
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  void relu() {
    Node n;
    n.type = OpType::relu;
    n.inputs = {pointwise_input(0)};
    n.params = ReluParams{node_->op_type() == "LeakyRelu" ? attr_f("alpha", 0.01f) : 0.f};
    define_pointwise(add_node(std::move(n)));
  }

  void prelu() {
    Node n;
    n.type = OpType::prelu;
    n.inputs = {picture_input(0)};
    const Const& slope = const_input(1, "slope");
    const int channels = shape(n.inputs[0], 0).c;
    const int64_t count = slope.at[0].count();
    const std::vector<int64_t>& d = slope.at[0].dims;
    // One per channel broadcasts as [C, 1, 1] (or [1, C, 1, 1]); a plain [C] would run along W.
    const bool per_channel = count == channels && (d.size() == 3 || (d.size() == 4 && d[0] == 1)) &&
                             d[d.size() - 1] == 1 && d[d.size() - 2] == 1;
    if (count != 1 && !per_channel)
      fail(fmt::format("has slopes of shape [{}]; upres runs one slope or one per channel ([{}, 1, 1])",
                       fmt::join(d, ", "), channels));
    n.weights.emplace_back(Shape{int(count), 1, 1}, fixed_floats(slope, "slope"));
    define_picture(0, add_node(std::move(n)));
  }

  void softplus() {
    Value v;
    v.kind = Value::softplus;
    v.blob = picture_input(0);
    values_[node_->output(0)] = std::move(v);
  }

  void unary() {
    if (node_->op_type() == "Tanh" && input(0) && input(0)->kind == Value::softplus) {
      Value v = *input(0);
      v.kind = Value::tanh_softplus;
      values_[node_->output(0)] = std::move(v);
      return;
    }
    Node n;
    const std::string& op = node_->op_type();
    n.type = op == "Sigmoid" ? OpType::sigmoid : op == "Tanh" ? OpType::tanh : OpType::mish;
    n.inputs = {pointwise_input(0)};
    define_pointwise(add_node(std::move(n)));
  }

  void clip() {
    Node n;
    n.type = OpType::clip;
    n.inputs = {pointwise_input(0)};
    ClipParams p{-INFINITY, INFINITY};
    if (opset_ < 11) {
      p.min = attr_f("min", -INFINITY);
      p.max = attr_f("max", INFINITY);
    } else {
      if (const Const* lo = optional_const(1, "minimum")) p.min = fixed_scalar(*lo, "minimum");
      if (const Const* hi = optional_const(2, "maximum")) p.max = fixed_scalar(*hi, "maximum");
    }
    if (p.min > p.max) fail("its minimum is above its maximum");
    n.params = p;
    define_pointwise(add_node(std::move(n)));
  }

  // Add/Sub/Mul/Div/Max/Min: picture with picture (broadcasting), with a scalar, or with one value
  // per channel.
  void binary() {
    const std::string& op = node_->op_type();
    if (node_->input_size() != 2) fail("takes two inputs here");
    const Value* a = input(0);
    const Value* b = input(1);
    if (!a || !b) fail("has a missing input");
    static const std::map<std::string, BinaryOpKind> kinds = {
        {"Add", BinaryOpKind::add}, {"Sub", BinaryOpKind::sub}, {"Mul", BinaryOpKind::mul},
        {"Div", BinaryOpKind::div}, {"Max", BinaryOpKind::max}, {"Min", BinaryOpKind::min}};
    BinaryOpKind kind = kinds.at(op);
    Node n;
    // x * tanh(softplus(x)) in either order: Mish.
    for (int k = 0; k < 2; ++k) {
      const Value* other = k == 0 ? b : a;
      const Value* self = k == 0 ? a : b;
      if (op == "Mul" && other->kind == Value::tanh_softplus && self->kind == Value::picture &&
          self->blob == other->blob) {
        n.type = OpType::mish;
        n.inputs = {self->blob};
        define_picture(0, add_node(std::move(n)));
        return;
      }
    }
    if (a->kind == Value::attention || b->kind == Value::attention) return scores_arithmetic(kind, a, b);
    const bool views = a->kind == Value::view || b->kind == Value::view;
    if (a->kind != Value::constant && b->kind != Value::constant) {
      n.type = OpType::binary_op;
      n.params = BinaryOpParams{kind, false, 0.f};
      if (views) {  // two tensors of tokens holding their pictures' values in the same places
        View va = start_view(a), vb = start_view(b);
        bool same = true;
        for (size_t s = 0; s < samples() && same; ++s)
          same = (va.arrays == vb.arrays || (va.at(s).dims == vb.at(s).dims && va.at(s).v == vb.at(s).v)) &&
                 shape(va.blob, s) == shape(vb.blob, s);
        if (same) {
          n.inputs = {va.blob, vb.blob};
          va.blob = add_node(std::move(n));
          return define_view(std::move(va));
        }
      }  // else both must be pictures, or views that are pictures again (a channel repeat)
      n.inputs = {picture_input(0), picture_input(1)};
      define_picture(0, add_node(std::move(n)));
      return;
    }
    const bool constant_first = a->kind == Value::constant;
    const Const& c = constant_first ? a->c : b->c;
    std::vector<float> values = fixed_floats(c, "constant operand");
    const std::vector<int64_t>& dims = c.at[0].dims;
    // A constant shaped like one value per channel of a picture ([C, 1, 1]) takes a view back to
    // its picture first (a GroupNorm's affine step after its Reshape back); a scalar or a vector
    // along the last axis works on a view as it is.
    const bool picture_shaped = dims.size() >= 3 && dims[dims.size() - 1] == 1 && dims[dims.size() - 2] == 1;
    const int picture =
        picture_shaped ? picture_input(constant_first ? 1 : 0) : pointwise_input(constant_first ? 1 : 0);
    if (picture_shaped) pointwise_view_.reset();
    const int channels = shape(picture, 0).c;
    n.inputs = {picture};
    if (values.size() == 1) {
      if (constant_first && kind == BinaryOpKind::sub) kind = BinaryOpKind::rsub;
      if (constant_first && kind == BinaryOpKind::div) kind = BinaryOpKind::rdiv;
      n.type = OpType::binary_op;
      n.params = BinaryOpParams{kind, true, values[0]};
      define_pointwise(add_node(std::move(n)));
      return;
    }
    // One value per channel: [C, 1, 1] or [1, C, 1, 1] on a picture; [C] (or [1, ..., C]) along the
    // last axis of tokens x channels.
    bool per_channel = int64_t(values.size()) == channels;
    if (pointwise_view_) {
      per_channel = per_channel && channels_last(*pointwise_view_) == channels && !dims.empty() &&
                    std::all_of(dims.begin(), dims.end() - 1, [](int64_t d) { return d == 1; });
    } else {
      per_channel = per_channel && (dims.size() == 3 || (dims.size() == 4 && dims[0] == 1)) &&
                    dims[dims.size() - 1] == 1 && dims[dims.size() - 2] == 1;
    }
    if (!per_channel)
      fail(fmt::format(
          "combines the picture with a constant of shape [{}]; upres runs scalars and one value per "
          "channel",
          fmt::join(dims, ", ")));
    std::vector<float> factor(values.size(), 1.f), bias(values.size(), 0.f);
    for (size_t k = 0; k < values.size(); ++k) switch (kind) {
        case BinaryOpKind::add: bias[k] = values[k]; break;
        case BinaryOpKind::sub:
          factor[k] = constant_first ? -1.f : 1.f;
          bias[k] = constant_first ? values[k] : -values[k];
          break;
        case BinaryOpKind::mul: factor[k] = values[k]; break;
        case BinaryOpKind::div:
          if (constant_first) fail("divides a constant per channel by the picture, which upres does not run");
          factor[k] = 1.f / values[k];
          break;
        default: fail("takes the per-channel maximum or minimum with a constant, which upres does not run");
      }
    n.type = OpType::scale;
    n.params = ScaleParams{false, true};
    n.weights.emplace_back(Shape{channels, 1, 1}, std::move(factor));
    n.weights.emplace_back(Shape{channels, 1, 1}, std::move(bias));
    define_pointwise(add_node(std::move(n)));
  }

  int picture_axis(int64_t axis) const {
    if (axis < -4 || axis > 3) fail(fmt::format("axis {} is out of range", axis));
    if (axis < 0) axis += 4;
    if (axis == 0) fail("works along the batch axis, which upres does not run");
    return int(axis) - 1;
  }

  void concat() {
    // Views of one picture concatenate as views (torch.roll); anything else as pictures.
    int view_blob = -1;
    bool one_picture = true;
    for (int k = 0; k < node_->input_size(); ++k) {
      const Value* v = input(k);
      if (!v || v->kind == Value::constant) continue;
      const int blob = v->kind == Value::view ? v->v.blob : v->blob;
      if (view_blob >= 0 && blob != view_blob) one_picture = false;
      view_blob = blob;
    }
    for (int k = 0; k < node_->input_size(); ++k)
      if (one_picture && input(k) && input(k)->kind == Value::view) return view_concat();
    Node n;
    n.type = OpType::concat;
    for (int k = 0; k < node_->input_size(); ++k) {
      const Value* v = input(k);
      if (!v || v->kind == Value::constant)
        fail("concatenates the picture with a constant, which upres does not run");
      n.inputs.push_back(picture_input(k));
    }
    n.params = ConcatParams{picture_axis(attr_i("axis", 1))};
    define_picture(0, add_node(std::move(n)));
  }

  void depth_to_space() {
    Node n;
    n.type = OpType::pixel_shuffle;
    n.inputs = {picture_input(0)};
    const int64_t b = attr_i("blocksize", 0);
    if (b < 1 || b > 16) fail(fmt::format("blocksize {} is out of range", b));
    n.params = PixelShuffleParams{int(b), attr_s("mode", "DCR") == "DCR"};
    define_picture(0, add_node(std::move(n)));
  }

  void space_to_depth() {
    Node n;
    n.type = OpType::pixel_unshuffle;
    n.inputs = {picture_input(0)};
    const int64_t b = attr_i("blocksize", 0);
    if (b < 1 || b > 16) fail(fmt::format("blocksize {} is out of range", b));
    n.params = PixelShuffleParams{int(b), true};  // ONNX's SpaceToDepth is depth-column-row
    define_picture(0, add_node(std::move(n)));
  }

  void resize() {
    Node n;
    n.type = OpType::interp;
    n.inputs = {picture_input(0)};
    InterpParams p;
    const std::string mode = attr_s("mode", "nearest");
    const std::string coordinates =
        attr_s("coordinate_transformation_mode",
               opset_ < 11 || node_->op_type() == "Upsample" ? "asymmetric" : "half_pixel");
    if (mode == "nearest") {
      p.mode = InterpMode::nearest;
      const std::string rounding = attr_s("nearest_mode", opset_ < 11 ? "floor" : "round_prefer_floor");
      // upres's nearest picks floor(out * in / out_size): ONNX's asymmetric coordinates with floor.
      if (coordinates != "asymmetric" || rounding != "floor")
        fail(
            fmt::format("nearest resizing with {} coordinates and {} rounding is not supported (upres runs "
                        "asymmetric with floor, what PyTorch exports)",
                        coordinates, rounding));
    } else if (mode == "linear" || mode == "bilinear" || mode == "cubic" || mode == "bicubic") {
      p.mode = mode == "linear" || mode == "bilinear" ? InterpMode::bilinear : InterpMode::bicubic;
      if (coordinates == "align_corners") {
        p.align_corners = true;
      } else if (coordinates != "half_pixel" && coordinates != "pytorch_half_pixel") {
        fail(
            fmt::format("{} resizing with {} coordinates is not supported (upres runs half_pixel, "
                        "pytorch_half_pixel and align_corners)",
                        mode, coordinates));
      }
      if (p.mode == InterpMode::bicubic && std::fabs(attr_f("cubic_coeff_a", -0.75f) + 0.75f) > 1e-6f)
        fail("cubic resizing with a coefficient other than -0.75 is not supported");
      if (attr_i("exclude_outside", 0)) fail("exclude_outside is not supported");
    } else {
      fail(fmt::format("resize mode '{}' is not supported", mode));
    }
    if (attr_i("antialias", 0)) fail("antialiased resizing is not supported");
    // Scales (opset 9-10: input 1; 11+: input 2) or sizes (11+: input 3), per sample.
    const bool new_form = node_->op_type() == "Resize" && opset_ >= 11;
    const Const* scales = nullptr;
    const Const* sizes = nullptr;
    if (node_->op_type() == "Upsample" && opset_ < 9) {
      fail("Upsample before opset 9 is not supported; export at opset 11 or later");
    } else if (new_form) {
      scales = optional_const(2, "scales");
      sizes = optional_const(3, "sizes");
      if (scales && scales->at[0].count() == 0) scales = nullptr;
    } else {
      scales = &const_input(1, "scales");
    }
    if (!scales && !sizes) fail("has neither scales nor sizes");
    double ratio[2] = {0, 0};
    for (size_t s = 0; s < samples(); ++s) {
      const Shape in = shape(n.inputs[0], s);
      const Array& a = (sizes ? sizes : scales)->sample(s);
      if (a.count() != 4) fail("scales or sizes must list four values");
      if (sizes ? (a.v[0] != 1 || a.v[1] != in.c) : (a.v[0] != 1 || a.v[1] != 1))
        fail("resizes the batch or channel axis");
      for (int k = 0; k < 2; ++k) {
        const double r = sizes ? a.v[size_t(2 + k)] / (k == 0 ? in.h : in.w) : a.v[size_t(2 + k)];
        if (!(r > 0 && r <= 16)) fail(fmt::format("resize factor {} is out of range (0, 16]", r));
        if (s > 0 && std::fabs(r - ratio[k]) > 1e-9)
          fail("resizes by a factor that depends on the input size; upres runs a fixed factor");
        ratio[k] = r;
      }
    }
    p.scale_h = float(ratio[0]);
    p.scale_w = float(ratio[1]);
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  void pad() {
    Node n;
    n.type = OpType::pad;
    n.inputs = {picture_input(0)};
    PadParams p;
    const std::string mode = attr_s("mode", "constant");
    if (mode == "constant")
      p.mode = PadMode::constant;
    else if (mode == "reflect")
      p.mode = PadMode::reflect;
    else if (mode == "edge")
      p.mode = PadMode::edge;
    else
      fail(fmt::format("pad mode '{}' is not supported (upres runs constant, reflect and edge)", mode));
    std::vector<int64_t> pads;
    if (opset_ < 11) {
      pads = attr_ints("pads");
      p.value = attr_f("value", 0.f);
    } else {
      const Const& c = const_input(1, "pads");
      if (c.varies()) fail("pads by amounts that depend on the input size (beyond a multiple of up to 16)");
      if (c.from_alignment) return pad_input_to_alignment(p, n.inputs[0], c);
      for (double v : c.at[0].v) pads.push_back(int64_t(v));
      if (const Const* value = optional_const(2, "constant value"))
        p.value = fixed_scalar(*value, "constant value");
      if (node_->input_size() > 3 && !node_->input(3).empty())
        fail("pads chosen axes, which upres does not run");
    }
    if (pads.size() != 8) fail("pads must list eight values for a 4-D picture");
    if (pads[0] || pads[1] || pads[4] || pads[5])
      fail("pads the batch or channel axis, which upres does not run");
    for (int64_t v : pads)
      if (v < 0 || v > 4096) fail(fmt::format("pad {} is out of range (negative pads crop: use Slice)", v));
    p.top = int(pads[2]);
    p.left = int(pads[3]);
    p.bottom = int(pads[6]);
    p.right = int(pads[7]);
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  // A Pad whose amounts come from the input's size modulo an alignment: the model pads its input
  // up to a multiple (SwinIR's check_image_size, SPAN exports). The runtime pads every picture to
  // the alignment (bottom and right) before the model, so the node goes, and the runtime takes
  // its mode: reflect padding done by the runtime instead of edge replication is what makes the
  // last rows and columns come out as the model's own run gives them.
  void pad_input_to_alignment(const PadParams& p, int from, const Const& pads) {
    // At the sample sizes (multiples of 16) a pad up to a multiple is none at all; a model that pads
    // a whole block when already aligned, or by more than the remainder, is not that.
    const std::vector<double>& v = pads.at[0].v;
    if (v.size() != 8 || std::any_of(v.begin(), v.end(), [](double x) { return x != 0; }))
      fail("pads by amounts that depend on the input size in a way other than up to a multiple");
    if (!pointwise_from_input(from, p.mode != PadMode::constant))
      fail("pads a feature map up to a multiple of the input's size; upres pads only the input");
    if (p.mode == PadMode::constant && p.value != 0.f)
      fail("pads the input to a multiple with a constant other than 0");
    if (graph_->input_pad_mode && *graph_->input_pad_mode != p.mode)
      fail("pads the input to a multiple in two different modes");
    graph_->input_pad_mode = p.mode;
    define_picture(0, from);
  }
  // Whether `blob` is the input, or made from it by per-pixel ops only (a mean subtracted, a
  // range scaled), through which reflect and edge padding pass unchanged. Constant padding does
  // not commute with them, so `through_pointwise` false asks for the input itself.
  bool pointwise_from_input(int blob, bool through_pointwise) const {
    for (int steps = 0; steps < 16; ++steps) {
      if (blob == graph_->input_blob) return true;
      if (!through_pointwise) return false;
      const Node* producer = nullptr;
      for (auto it = graph_->nodes.rbegin(); it != graph_->nodes.rend() && !producer; ++it)
        if (it->outputs[0] == blob) producer = &*it;
      if (!producer || producer->inputs.size() != 1) return false;
      switch (producer->type) {
        case OpType::binary_op:
        case OpType::scale:
        case OpType::relu:
        case OpType::clip:
        case OpType::sigmoid:
        case OpType::tanh: blob = producer->inputs[0]; break;
        default: return false;
      }
    }
    return false;
  }

  // One axis of a crop from per-sample begin and end offsets.
  void crop_axis(CropParams& p, int axis, const std::vector<int64_t>& dim, const std::vector<int64_t>& begin,
                 const std::vector<int64_t>& end) const {
    auto constant = [](const std::vector<int64_t>& v) {
      return std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v[0]; });
    };
    std::vector<int64_t> from_end_b, from_end_e;
    for (size_t s = 0; s < dim.size(); ++s) {
      from_end_b.push_back(begin[s] - dim[s]);
      from_end_e.push_back(end[s] - dim[s]);
    }
    const bool one = dim.size() == 1;
    if (constant(begin) && (!one || begin[0] <= dim[0] / 2))
      p.begin[axis] = int(begin[0]);
    else if (constant(from_end_b))
      p.begin[axis] = int(from_end_b[0]);
    else
      fail("starts at an offset that depends on the input size in a way upres does not follow");
    if (constant(from_end_e) && (!one || end[0] > dim[0] / 2)) {
      p.end_from_end[axis] = true;
      p.end[axis] = int(from_end_e[0]);
    } else if (constant(end)) {
      p.end_from_end[axis] = false;
      p.end[axis] = int(end[0]);
    } else {
      fail("ends at an offset that depends on the input size in a way upres does not follow");
    }
  }

  void slice() {
    const Value* x = input(0);
    if (!x) fail("has no input");
    if (x->kind == Value::view) return view_slice();
    const int blob = picture_input(0);
    std::vector<std::vector<int64_t>> starts(samples()), ends(samples()), axes(samples()), steps(samples());
    for (size_t s = 0; s < samples(); ++s) {
      auto ints = [&](int k, const char* what) { return slice_ints(k, what, s); };
      if (opset_ < 10) {
        starts[s] = attr_ints("starts");
        ends[s] = attr_ints("ends");
        axes[s] = attr_ints("axes");
      } else {
        starts[s] = ints(1, "starts");
        ends[s] = ints(2, "ends");
        axes[s] = ints(3, "axes");
        steps[s] = ints(4, "steps");
      }
      if (axes[s].empty())
        for (size_t k = 0; k < starts[s].size(); ++k) axes[s].push_back(int64_t(k));
      if (ends[s].size() != starts[s].size() || axes[s].size() != starts[s].size())
        fail("starts, ends and axes differ in length");
      for (int64_t step : steps[s])
        if (step != 1) fail("slices with a step other than 1, which upres does not run on pictures");
      if (starts[s].size() != starts[0].size() || axes[s] != axes[0])
        fail("slices axes that depend on the input size, which upres does not follow");
    }
    CropParams p;
    for (size_t k = 0; k < starts[0].size(); ++k) {
      const int axis = picture_axis(axes[0][k]);
      std::vector<int64_t> dim, begin, end;
      for (size_t s = 0; s < samples(); ++s) {
        const Shape sh = shape(blob, s);
        const int64_t d = axis == 0 ? sh.c : axis == 1 ? sh.h : sh.w;
        int64_t b = starts[s][k], e = ends[s][k];
        if (b < 0) b = std::max<int64_t>(0, b + d);
        if (e < 0) e = std::max<int64_t>(0, e + d);
        b = std::min(b, d);
        e = std::clamp<int64_t>(e, b, d);
        if (e == b) fail("slices away the whole picture");
        dim.push_back(d);
        begin.push_back(b);
        end.push_back(e);
      }
      crop_axis(p, axis, dim, begin, end);
    }
    Node n;
    n.type = OpType::crop;
    n.inputs = {blob};
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  void split() {
    const int blob = picture_input(0);
    const int axis = picture_axis(attr_i("axis", 0));
    const int outputs = node_->output_size();
    std::vector<std::vector<int64_t>> sizes(samples());
    for (size_t s = 0; s < samples(); ++s) {
      const Shape sh = shape(blob, s);
      const int64_t d = axis == 0 ? sh.c : axis == 1 ? sh.h : sh.w;
      if (opset_ >= 13 && node_->input_size() > 1 && !node_->input(1).empty()) {
        for (double v : const_input(1, "split").sample(s).v) sizes[s].push_back(int64_t(v));
      } else if (!attr_ints("split").empty()) {
        sizes[s] = attr_ints("split");
      } else {
        if (d % outputs) fail(fmt::format("splits {} into {} equal parts", d, outputs));
        sizes[s].assign(size_t(outputs), d / outputs);
      }
      if (int(sizes[s].size()) != outputs) fail("lists a different number of parts than it has outputs");
      int64_t total = 0;
      for (int64_t v : sizes[s]) {
        if (v <= 0) fail("has an empty part");
        total += v;
      }
      if (total != d) fail(fmt::format("parts add up to {}, not {}", total, d));
    }
    for (int k = 0; k < outputs; ++k) {
      std::vector<int64_t> dim, begin, end;
      for (size_t s = 0; s < samples(); ++s) {
        const Shape sh = shape(blob, s);
        dim.push_back(axis == 0 ? sh.c : axis == 1 ? sh.h : sh.w);
        int64_t b = 0;
        for (int j = 0; j < k; ++j) b += sizes[s][size_t(j)];
        begin.push_back(b);
        end.push_back(b + sizes[s][size_t(k)]);
      }
      CropParams p;
      crop_axis(p, axis, dim, begin, end);
      Node n;
      n.type = OpType::crop;
      n.inputs = {blob};
      n.params = p;
      n.name = node_->name();
      const int out = add_node(std::move(n));
      graph_->blob_names[size_t(out)] = node_->output(k);
      define_picture(k, out);
    }
  }

  // Identity, Dropout, Cast: the value passes through as it is (a view stays a view).
  void identity() {
    const Value* x = input(0);
    if (!x) fail("has no input");
    if (x->kind == Value::picture || x->kind == Value::constant) return define_picture(0, picture_input(0));
    Value copy = *x;
    values_[node_->output(0)] = std::move(copy);
  }

  void cast() {
    const int64_t to = attr_i("to", 1);
    if (to != onnx::TensorProto_DataType_FLOAT && to != onnx::TensorProto_DataType_FLOAT16 &&
        to != onnx::TensorProto_DataType_DOUBLE && to != onnx::TensorProto_DataType_BFLOAT16)
      fail("casts the picture to integers, which upres does not run");
    identity();  // the IR computes in float32 whatever the model's storage type
  }

  void reshape() {
    const Const& target = const_input(1, "shape");
    if (input(0) && input(0)->kind == Value::attention) {
      Value v = *input(0);
      auto sc = std::make_shared<Scores>(*v.scores);
      for (size_t s = 0; s < samples(); ++s) {
        std::vector<int64_t> t;
        for (double d : target.sample(s).v) t.push_back(int64_t(d));
        const std::vector<int64_t> from = sc->bias[s].dims;
        const std::vector<int64_t> to = resolve_reshape(from, t);
        if (to.size() < 2 || to[to.size() - 1] != from.back() || to[to.size() - 2] != from[from.size() - 2])
          fail("reshapes attention scores other than in their leading (window and head) axes");
        sc->bias[s] = onnx_fold::reshape(sc->bias[s], to, true, failer());
      }
      v.scores = std::move(sc);
      values_[node_->output(0)] = std::move(v);
      return;
    }
    view_reshape([&](const std::vector<int64_t>&, size_t s) {
      std::vector<int64_t> t;
      for (double v : target.sample(s).v) t.push_back(int64_t(v));
      return t;
    });
  }

  void squeeze() {
    const bool un = node_->op_type() == "Unsqueeze";
    view_reshape([&](const std::vector<int64_t>& dims, size_t s) {
      std::vector<int64_t> axes;
      if (node_->input_size() > 1 && !node_->input(1).empty())
        for (double v : const_input(1, "axes").sample(s).v) axes.push_back(int64_t(v));
      else
        axes = attr_ints("axes");
      std::vector<int64_t> out = dims;
      const int64_t rank = int64_t(dims.size()) + (un ? int64_t(axes.size()) : 0);
      for (int64_t& a : axes) {
        if (a < -rank || a >= rank) fail(fmt::format("axis {} is out of range", a));
        if (a < 0) a += rank;
      }
      std::sort(axes.begin(), axes.end());
      if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) fail("lists an axis twice");
      if (un) {
        for (int64_t a : axes) out.insert(out.begin() + a, 1);
      } else {
        out.clear();
        for (size_t k = 0; k < dims.size(); ++k) {
          const bool listed = std::find(axes.begin(), axes.end(), int64_t(k)) != axes.end();
          if (listed && dims[k] != 1) fail(fmt::format("squeezes axis {} of size {}", k, dims[k]));
          if (!(listed || (axes.empty() && dims[k] == 1))) out.push_back(dims[k]);
        }
      }
      return out;
    });
  }

  void transpose() {
    View view = start_view(input(0));
    std::vector<int64_t> perm = attr_ints("perm");
    const size_t rank = view.dims(0).size();
    if (perm.empty())
      for (size_t k = 0; k < rank; ++k) perm.push_back(int64_t(rank - 1 - k));
    if (perm.size() != rank) fail("perm does not list every axis");
    view.map([&](const Array& a, size_t) { return onnx_fold::transpose(a, perm, failer()); });
    define_view(std::move(view));
  }

  // Inference batch normalisation: one factor and offset per channel.
  void batch_norm() {
    Node n;
    n.type = OpType::scale;
    n.inputs = {picture_input(0)};
    const int channels = shape(n.inputs[0], 0).c;
    const std::vector<float> scale = fixed_floats(const_input(1, "scale"), "scale"),
                             bias = fixed_floats(const_input(2, "bias"), "bias"),
                             mean = fixed_floats(const_input(3, "mean"), "mean"),
                             var = fixed_floats(const_input(4, "variance"), "variance");
    for (const std::vector<float>* v : {&scale, &bias, &mean, &var})
      if (int(v->size()) != channels) fail(fmt::format("does not have one value per channel ({})", channels));
    if (attr_i("training_mode", 0)) fail("is in training mode; export the model in eval mode");
    const double epsilon = attr_f("epsilon", 1e-5f);
    std::vector<float> factor(static_cast<size_t>(channels)), offset(static_cast<size_t>(channels));
    for (size_t c = 0; c < size_t(channels); ++c) {
      if (!(var[c] + epsilon > 0)) fail("has a negative variance");
      const double f = scale[c] / std::sqrt(double(var[c]) + epsilon);
      factor[c] = float(f);
      offset[c] = float(bias[c] - mean[c] * f);
    }
    n.params = ScaleParams{false, true};
    n.weights.emplace_back(Shape{channels, 1, 1}, std::move(factor));
    n.weights.emplace_back(Shape{channels, 1, 1}, std::move(offset));
    define_picture(0, add_node(std::move(n)));
  }

  void global_pool() {
    Node n;
    n.type = OpType::pooling;
    n.inputs = {picture_input(0)};
    PoolingParams p;
    p.global = true;
    p.kind = node_->op_type() == "GlobalMaxPool" ? PoolKind::max : PoolKind::average;
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  void reduce_mean() {
    std::vector<int64_t> axes = attr_ints("axes");
    if (axes.empty() && node_->input_size() > 1) {
      for (double v : const_input(1, "axes").at[0].v) axes.push_back(int64_t(v));
    }
    if (input(0) && input(0)->kind == Value::view && axes.size() == 1) return view_mean(axes[0]);
    for (int64_t& a : axes)
      if (a < 0) a += 4;
    std::sort(axes.begin(), axes.end());
    if (axes != std::vector<int64_t>{2, 3} || attr_i("keepdims", 1) != 1)
      fail("averages over axes other than height and width (with keepdims), which upres does not run");
    global_pool();
  }

  // The mean over one axis of a view whose averaged values are channels of one pixel (MoSR's
  // geo-ensemble upsampler averages eight groups of channels): a 1x1 convolution with weights 1/K
  // from each set of K channels to one output channel.
  void view_mean(int64_t axis_in) {
    const View view = start_view(input(0));
    const bool keep = attr_i("keepdims", 1) != 0;
    std::vector<std::vector<int>> sets;  // per output channel, the channels it averages
    std::vector<Array> out_arrays;
    const int in_channels = shape(view.blob, 0).c;
    for (size_t s = 0; s < samples(); ++s) {
      const Array& a = view.at(s);
      const int64_t rank = int64_t(a.dims.size());
      const int64_t axis = axis_in < 0 ? axis_in + rank : axis_in;
      if (axis < 0 || axis >= rank)
        fail(fmt::format("averages over axis {} of a rank-{} tensor", axis_in, rank));
      const Shape sh = shape(view.blob, s);
      const int64_t plane = int64_t(sh.h) * sh.w;
      const int64_t k = a.dims[size_t(axis)];
      const int64_t inner =
          std::accumulate(a.dims.begin() + axis + 1, a.dims.end(), int64_t(1), std::multiplies<>());
      const int64_t outer = a.count() / (k * inner);
      Array& o = out_arrays.emplace_back();
      o.dims = a.dims;
      if (keep)
        o.dims[size_t(axis)] = 1;
      else
        o.dims.erase(o.dims.begin() + axis);
      std::map<std::vector<int>, int> id;
      std::vector<std::vector<int>> found;
      for (int64_t u = 0; u < outer; ++u)
        for (int64_t i = 0; i < inner; ++i) {
          std::vector<int> channels;
          int64_t pixel = -1;
          for (int64_t j = 0; j < k; ++j) {
            const int64_t idx = int64_t(a.v[size_t((u * k + j) * inner + i)]);
            if (pixel >= 0 && idx % plane != pixel)
              fail("averages values of different pixels, which upres does not run");
            pixel = idx % plane;
            channels.push_back(int(idx / plane));
          }
          auto [it, added] = id.emplace(channels, int(found.size()));
          if (added) found.push_back(channels);
          o.v.push_back(double(int64_t(it->second) * plane + pixel));
        }
      if (s == 0)
        sets = found;
      else if (found != sets)
        fail("averages channels that depend on the input size");
    }
    Node n;
    n.type = OpType::convolution;
    ConvParams p;
    p.out_channels = int(sets.size());
    n.params = p;
    std::vector<float> w(sets.size() * size_t(in_channels), 0.f);
    for (size_t o = 0; o < sets.size(); ++o)
      for (int c : sets[o]) w[o * size_t(in_channels) + size_t(c)] += 1.f / float(sets[o].size());
    n.weights.emplace_back(Shape{int(w.size()), 1, 1}, std::move(w));
    n.inputs = {view.blob};
    View out;
    out.blob = add_node(std::move(n));
    out.set(std::move(out_arrays));
    define_view(std::move(out));
  }

  void gelu() {
    if (attr_s("approximate", "none") != "none")
      fail("is GELU's tanh approximation, which upres does not run (it runs the exact, erf form)");
    Node n;
    n.type = OpType::gelu;
    n.inputs = {pointwise_input(0)};
    define_pointwise(add_node(std::move(n)));
  }

  // LayerNorm over each pixel's channels (the pattern onnx_patterns.hpp folds).
  void channel_layer_norm() {
    Node n;
    n.type = OpType::channel_norm;
    n.params = ChannelNormParams{attr_f("epsilon", 1e-5f), false};
    if (attr_i("axis", 1) == -1) {  // over the last axis: tokens x channels
      const Value* x = input(0);
      if (!x || x->kind == Value::constant) fail("has no picture input");
      View view = start_view(x);
      if (channels_last(view) == 0)
        fail("normalises over an axis that is not the channels of each pixel, which upres does not run");
      n.inputs = {view.blob};
      view.blob = add_node(std::move(n));
      return define_view(std::move(view));
    }
    n.inputs = {picture_input(0)};
    define_picture(0, add_node(std::move(n)));
  }

  // GroupNorm of `blob` with per-channel scale and shift (empty: none): the frame's channel means
  // and means of squares from global average poolings, then the normalisation.
  int add_group_norm(int blob, int groups, float eps, std::vector<float> scale, std::vector<float> shift) {
    Node square;
    square.type = OpType::binary_op;
    square.params = BinaryOpParams{BinaryOpKind::mul, false, 0};
    square.inputs = {blob, blob};
    const int squared = add_node(std::move(square));
    PoolingParams mean;
    mean.global = true;
    mean.kind = PoolKind::average;
    Node m, q;
    m.type = q.type = OpType::pooling;
    m.params = q.params = mean;
    m.inputs = {blob};
    q.inputs = {squared};
    const int means = add_node(std::move(m)), squares = add_node(std::move(q));
    Node n;
    n.type = OpType::group_norm;
    n.inputs = {blob, means, squares};
    const int channels = shape(blob, 0).c;
    bool identity = true;
    for (size_t c = 0; c < scale.size(); ++c) identity = identity && scale[c] == 1.f && shift[c] == 0.f;
    n.params = GroupNormParams{groups, eps, !identity};
    if (!identity) {
      n.weights.emplace_back(Shape{channels, 1, 1}, std::move(scale));
      n.weights.emplace_back(Shape{channels, 1, 1}, std::move(shift));
    }
    return add_node(std::move(n));
  }

  // Per-group values (scale or shift) spread to the channels of each group.
  static std::vector<float> per_channel(const std::vector<float>& per_group, int channels) {
    std::vector<float> v(static_cast<size_t>(channels));
    const int run = channels / int(per_group.size());
    for (int c = 0; c < channels; ++c) v[size_t(c)] = per_group[size_t(c / run)];
    return v;
  }

  // InstanceNormalization: of a picture (GroupNorm with a group per channel), or of a picture
  // reshaped to 1 x G x (C/G * H * W), which is how PyTorch exports nn.GroupNorm.
  void instance_norm() {
    const Value* x = input(0);
    if (!x) fail("has no input");
    const float eps = attr_f("epsilon", 1e-5f);
    const std::vector<float> scale = fixed_floats(const_input(1, "scale"), "scale"),
                             bias = fixed_floats(const_input(2, "bias"), "bias");
    if (x->kind == Value::picture) {
      const int blob = picture_input(0);
      const int channels = shape(blob, 0).c;
      if (int(scale.size()) != channels || int(bias.size()) != channels)
        fail(fmt::format("does not have a scale and a bias per channel ({})", channels));
      return define_picture(0, add_group_norm(blob, channels, eps, scale, bias));
    }
    const View view = start_view(x);
    // The view must be the picture's values in order, grouped: 1 x G x rest.
    const int64_t groups = view.dims(0).size() >= 2 ? view.dims(0)[1] : 0;
    for (size_t s = 0; s < samples(); ++s) {
      const Shape sh = shape(view.blob, s);
      const std::vector<int64_t>& d = view.dims(s);
      const int64_t rest = std::accumulate(d.begin() + 2, d.end(), int64_t(1), std::multiplies<>());
      if (d.size() < 3 || d[0] != 1 || d[1] != groups || groups < 1 || sh.c % groups != 0 ||
          rest != sh.size() / groups)
        fail(
            fmt::format("normalises a [{}] tensor of the picture; upres runs it on the picture's channels "
                        "in groups (GroupNorm)",
                        fmt::join(d, ", ")));
      const Array& order = trace(view, s);
      for (size_t i = 0; i < order.v.size(); ++i)
        if (order.v[i] != double(i))
          fail("normalises the picture's values in another order than GroupNorm's");
    }
    if (int64_t(scale.size()) != groups || int64_t(bias.size()) != groups)
      fail(fmt::format("does not have a scale and a bias per group ({})", groups));
    const int channels = shape(view.blob, 0).c;
    View out = view;  // the same positions of the normalised picture
    out.blob = add_group_norm(view.blob, int(groups), eps, per_channel(scale, channels),
                              per_channel(bias, channels));
    define_view(std::move(out));
  }

  // GroupNormalization (opset 18: a scale and bias per group; opset 21: per channel).
  void group_norm() {
    const int blob = picture_input(0);
    const int channels = shape(blob, 0).c;
    const int64_t groups = attr_i("num_groups", 0);
    if (groups < 1 || channels % groups != 0)
      fail(fmt::format("splits {} channels into {} groups", channels, groups));
    std::vector<float> scale = fixed_floats(const_input(1, "scale"), "scale"),
                       bias = fixed_floats(const_input(2, "bias"), "bias");
    if (scale.size() != bias.size() || (int64_t(scale.size()) != groups && int(scale.size()) != channels))
      fail(fmt::format("has {} scales and {} biases for {} groups of {} channels", scale.size(), bias.size(),
                       groups, channels));
    if (int(scale.size()) != channels) {
      scale = per_channel(scale, channels);
      bias = per_channel(bias, channels);
    }
    define_picture(0, add_group_norm(blob, int(groups), attr_f("epsilon", 1e-5f), scale, bias));
  }

  // Expand of a picture or a view: a step of the view, resolved when it becomes a picture again
  // (repeat_interleave: Unsqueeze, Expand, Reshape).
  void expand() {
    View view = start_view(input(0));
    const Const& target = const_input(1, "shape");
    view.map([&](const Array& a, size_t s) {
      std::vector<int64_t> t;
      for (double v : target.sample(s).v) t.push_back(int64_t(v));
      if (onnx_fold::Array{onnx_fold::broadcast_dims(a.dims, t, failer()), {}}.count() > kMaxViewCount)
        fail("repeats a picture too large to follow at load time");
      return onnx_fold::expand(a, t, failer());
    });
    define_view(std::move(view));
  }

  // ScatterND writing whole channels of a picture (PyTorch's x[:, a:b] = y in place): the output
  // takes each channel from the data or from the updates.
  void scatter_nd() {
    if (attr_s("reduction", "none") != "none") fail("scatters with a reduction, which upres does not run");
    const int data = picture_input(0);
    const Const& indices = const_input(1, "indices");
    const int updates = picture_input(2);
    std::vector<std::pair<int, int>> sources;
    for (size_t s = 0; s < samples(); ++s) {
      const Shape d = shape(data, s), u = shape(updates, s);
      const Array& idx = indices.sample(s);
      if (idx.dims.size() != 3 || idx.dims[0] != 1 || idx.dims[2] != 2 || idx.dims[1] != u.c || u.h != d.h ||
          u.w != d.w)
        fail(fmt::format("scatters with indices [{}] into {} from {}; upres runs scatters of whole channels",
                         fmt::join(idx.dims, ", "), d.str(), u.str()));
      std::vector<std::pair<int, int>> at(size_t(d.c));
      for (int c = 0; c < d.c; ++c) at[size_t(c)] = {data, c};
      for (int k = 0; k < u.c; ++k) {
        const double n = idx.v[size_t(2 * k)], c = idx.v[size_t(2 * k + 1)];
        if (n != 0 || c < -d.c || c >= d.c || c != std::floor(c))
          fail(fmt::format("scatters to index ({}, {}) of {}", n, c, d.str()));
        at[size_t(c < 0 ? c + d.c : c)] = {updates, k};
      }
      if (s == 0)
        sources = at;
      else if (at != sources)
        fail("scatters to channels that depend on the input size");
    }
    define_picture(0, gather_channels(sources));
  }

  // Slice's starts, ends, axes or steps (input k) at sample s, clamped into int64 (exporters write
  // INT64_MAX as "to the end", which a double rounds past).
  std::vector<int64_t> slice_ints(int k, const char* what, size_t s) const {
    std::vector<int64_t> v;
    if (const Const* c = optional_const(k, what))
      for (double d : c->sample(s).v)
        v.push_back(d >= 9.2e18 ? INT64_MAX : d <= -9.2e18 ? INT64_MIN : int64_t(d));
    return v;
  }

  // ---- tensors of tokens ----
  void view_slice() {
    View view = start_view(input(0));
    view.map([&](const Array& whole, size_t s) {
      auto ints = [&](int k, const char* what) { return slice_ints(k, what, s); };
      const bool attributes = opset_ < 10;
      Array part = onnx_fold::slice(whole, attributes ? attr_ints("starts") : ints(1, "starts"),
                                    attributes ? attr_ints("ends") : ints(2, "ends"),
                                    attributes ? attr_ints("axes") : ints(3, "axes"),
                                    attributes ? std::vector<int64_t>{} : ints(4, "steps"), failer());
      if (part.count() == 0) fail("slices away the whole tensor");
      return part;
    });
    define_view(std::move(view));
  }

  // Concat of views of one picture (torch.roll writes two slices and a concat).
  void view_concat() {
    std::vector<View> parts;
    for (int k = 0; k < node_->input_size(); ++k) {
      const Value* v = input(k);
      if (!v || v->kind == Value::constant)
        fail("concatenates tokens with a constant, which upres does not run");
      parts.push_back(start_view(v));
      if (parts.back().blob != parts[0].blob)
        fail("concatenates tokens of different pictures, which upres does not run");
    }
    View out = parts[0];
    out.map([&](const Array&, size_t s) {
      std::vector<const Array*> arrays;
      for (const View& p : parts) arrays.push_back(&p.at(s));
      return onnx_fold::concat(arrays, attr_i("axis", 0), failer());
    });
    check_view(out);
    define_view(std::move(out));
  }

  // Gather with fixed indices on a view (qkv[0], qkv[1], qkv[2]).
  void gather() {
    View view = start_view(input(0));
    const Const& indices = const_input(1, "indices");
    view.map([&](const Array& a, size_t s) {
      return onnx_fold::gather(a, indices.sample(s), attr_i("axis", 0), failer());
    });
    check_view(view);
    define_view(std::move(view));
  }

  // LayerNormalization over the last axis of tokens x channels: LayerNorm over each pixel's channels.
  void layer_norm() {
    const Value* x = input(0);
    if (!x || x->kind == Value::constant) fail("has no picture input");
    View view = start_view(x);
    const int64_t rank = int64_t(view.dims(0).size());
    int64_t axis = attr_i("axis", -1);
    if (axis < 0) axis += rank;
    const int channels = channels_last(view);
    if (axis != rank - 1 || channels == 0)
      fail(
          "normalises over axes other than the channels of each pixel (tokens x channels), which upres "
          "does not run");
    Node n;
    n.type = OpType::channel_norm;
    n.inputs = {view.blob};
    std::vector<float> scale = fixed_floats(const_input(1, "scale"), "scale");
    std::vector<float> bias(scale.size(), 0.f);
    if (const Const* b = optional_const(2, "bias")) bias = fixed_floats(*b, "bias");
    if (int(scale.size()) != channels || int(bias.size()) != channels)
      fail(fmt::format("does not have a scale and a bias per channel ({})", channels));
    n.params = ChannelNormParams{attr_f("epsilon", 1e-5f), true};
    n.weights.emplace_back(Shape{channels, 1, 1}, std::move(scale));
    n.weights.emplace_back(Shape{channels, 1, 1}, std::move(bias));
    view.blob = add_node(std::move(n));
    define_view(std::move(view));
  }

  // MatMul: tokens x channels times a fixed matrix (a linear layer: a 1x1 convolution on the
  // picture), Q times K^T (attention scores), or softmax(scores) times V (the attention op).
  void matmul() {
    const Value* a = input(0);
    const Value* b = input(1);
    if (!a || !b) fail("has a missing input");
    if (a->kind == Value::attention) return attention_output(*a->scores, start_view(b));
    if (a->kind == Value::constant)
      fail("multiplies a constant matrix by the picture, which upres does not run");
    View x = start_view(a);
    if (b->kind != Value::constant) return attention_scores(std::move(x), start_view(b));
    const Const& w = b->c;
    const std::vector<float> weights = fixed_floats(w, "weights");
    const std::vector<int64_t>& wd = w.at[0].dims;
    const int channels = channels_last(x);
    if (wd.size() != 2 || channels == 0 || wd[0] != channels)
      fail(
          fmt::format("multiplies [{}] by a [{}] matrix; upres runs a matrix on the channels of each "
                      "pixel (tokens x channels)",
                      fmt::join(x.dims(0), ", "), fmt::join(wd, ", ")));
    const int outputs = int(wd[1]);
    if (outputs < 1 || outputs > (1 << 16)) fail("has an impossible number of outputs");
    Node n;
    n.type = OpType::convolution;
    ConvParams p;
    p.out_channels = outputs;
    n.params = p;
    std::vector<float> oi(weights.size());
    for (int o = 0; o < outputs; ++o)
      for (int i = 0; i < channels; ++i)
        oi[size_t(o) * size_t(channels) + size_t(i)] = weights[size_t(i) * size_t(outputs) + size_t(o)];
    n.weights.emplace_back(Shape{outputs * channels, 1, 1}, std::move(oi));
    n.inputs = {x.blob};
    const int out = add_node(std::move(n));
    define_view(with_channels(x, out, outputs));
  }

  void attention_scores(View q, View kt) {
    auto sc = std::make_shared<Scores>();
    std::vector<Array> keys;  // K, its last two axes swapped back
    for (size_t s = 0; s < samples(); ++s) {
      const std::vector<int64_t>& qd = q.dims(s);
      const std::vector<int64_t>& kd = kt.dims(s);
      const size_t r = qd.size();
      if (r < 2 || kd.size() != r || qd[r - 1] != kd[r - 2] ||
          !std::equal(qd.begin(), qd.end() - 2, kd.begin()))
        fail(fmt::format("multiplies [{}] by [{}]; upres runs Q K^T of attention with matching leading axes",
                         fmt::join(qd, ", "), fmt::join(kd, ", ")));
      std::vector<int64_t> perm(r);
      std::iota(perm.begin(), perm.end(), 0);
      std::swap(perm[r - 1], perm[r - 2]);
      keys.push_back(onnx_fold::transpose(kt.at(s), perm, failer()));
      Array& bias = sc->bias.emplace_back();
      bias.dims = qd;
      bias.dims.back() = qd[r - 2];
      bias.v.assign(size_t(bias.count()), 0.0);
    }
    sc->q = std::move(q);
    kt.set(std::move(keys));
    sc->k = std::move(kt);
    Value v;
    v.kind = Value::attention;
    v.scores = std::move(sc);
    values_[node_->output(0)] = std::move(v);
  }

  // Scores plus a constant (relative position bias, mask), or times / over a number.
  void scores_arithmetic(BinaryOpKind kind, const Value* a, const Value* b) {
    const bool first = a->kind == Value::attention;
    const Value* other = first ? b : a;
    if (other->kind != Value::constant || !(first ? b : a))
      fail("combines attention scores with the picture, which upres does not run");
    auto sc = std::make_shared<Scores>(*(first ? a : b)->scores);
    if (sc->softmax) fail("changes attention weights after the softmax, which upres does not run");
    if (kind == BinaryOpKind::add) {
      for (size_t s = 0; s < samples(); ++s) {
        Array sum = onnx_fold::expand(other->c.sample(s), sc->bias[s].dims, failer());
        if (sum.dims != sc->bias[s].dims) fail("adds a constant larger than the attention scores");
        for (size_t i = 0; i < sum.v.size(); ++i) sc->bias[s].v[i] += sum.v[i];
      }
    } else if ((kind == BinaryOpKind::mul || (kind == BinaryOpKind::div && first))) {
      const double f = fixed_scalar(other->c, "factor");
      const double m = kind == BinaryOpKind::mul ? f : 1.0 / f;
      sc->factor *= m;
      for (Array& bias : sc->bias)
        for (double& v : bias.v) v *= m;
    } else {
      fail("combines attention scores with a constant other than by adding, multiplying or dividing");
    }
    Value v;
    v.kind = Value::attention;
    v.scores = std::move(sc);
    values_[node_->output(0)] = std::move(v);
  }

  void softmax() {
    const Value* x = input(0);
    if (!x || x->kind != Value::attention)
      fail("normalises something other than attention scores, which upres does not run");
    const int64_t rank = int64_t(x->scores->bias[0].dims.size());
    int64_t axis = attr_i("axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (axis != rank - 1) fail("normalises attention scores over an axis other than the keys");
    Value v = *x;
    v.scores = std::make_shared<Scores>(*x->scores);
    v.scores->softmax = true;
    values_[node_->output(0)] = std::move(v);
  }

  // How a view of Q, K or V sits in its picture: per (window, head) row, the first channel of the head
  // and the pixel of each token. Fails unless every head reads consecutive channels of every token.
  struct TokenLayout {
    std::vector<int64_t> channel;  // per row: the head's first channel
    std::vector<int64_t> pixel;    // per row, per token
  };
  TokenLayout token_layout(const View& v, size_t s, int64_t rows, int64_t tokens, int64_t dim) const {
    const Shape sh = shape(v.blob, s);
    const int64_t plane = int64_t(sh.h) * sh.w;
    const Array& a = v.at(s);
    if (a.count() != rows * tokens * dim) fail("holds attention inputs of different sizes");
    TokenLayout t;
    t.channel.resize(size_t(rows));
    t.pixel.resize(size_t(rows * tokens));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < tokens; ++n)
        for (int64_t j = 0; j < dim; ++j) {
          const int64_t idx = int64_t(a.v[size_t((r * tokens + n) * dim + j)]);
          const int64_t c = idx / plane, p = idx % plane;
          if (n == 0 && j == 0) t.channel[size_t(r)] = c;
          if (j == 0) t.pixel[size_t(r * tokens + n)] = p;
          if (c != t.channel[size_t(r)] + j || p != t.pixel[size_t(r * tokens + n)])
            fail("runs attention on tokens whose heads are not consecutive channels of one pixel");
        }
    return t;
  }

  // softmax(Q K^T * factor + bias) V: one window_attention op, once the windows, heads and masks are
  // recognised at every sample size (see WindowAttentionParams).
  void attention_output(const Scores& sc, const View& v) {
    if (!sc.softmax) fail("multiplies attention scores by V before their softmax");
    WindowAttentionParams p;
    std::vector<float> relative;
    std::optional<double> mask_value;
    std::vector<Array> out_arrays;  // per sample: where the output's values are in its picture
    const int qb = sc.q.blob, kb = sc.k.blob, vb = v.blob;
    for (size_t s = 0; s < samples(); ++s) {
      const std::vector<int64_t>& qd = sc.q.dims(s);
      const size_t r = qd.size();
      if (r < 3 || v.dims(s).size() != r || v.dims(s)[r - 2] != qd[r - 2])
        fail("multiplies attention weights by V of another shape");
      const int64_t tokens = qd[r - 2], dim = qd[r - 1], vdim = v.dims(s)[r - 1];
      const int64_t heads = qd[r - 3];
      const int64_t rows = std::accumulate(qd.begin(), qd.end() - 2, int64_t(1), std::multiplies<>());
      if (dim != vdim) fail("has values of another width than its queries");
      if (sc.bias[s].count() != rows * tokens * tokens)
        fail("has attention scores of another shape than Q K^T");
      const TokenLayout tq = token_layout(sc.q, s, rows, tokens, dim),
                        tk = token_layout(sc.k, s, rows, tokens, dim),
                        tv = token_layout(v, s, rows, tokens, dim);
      if (tq.pixel != tk.pixel || tq.pixel != tv.pixel)
        fail("runs attention between tokens of different pixels for queries, keys and values");
      const Shape sh = shape(qb, s);
      const int64_t windows = rows / heads;
      // Heads: the same channels in every window, one after the other.
      for (int64_t w = 0; w < windows; ++w)
        for (int64_t h = 0; h < heads; ++h)
          for (const TokenLayout* t : {&tq, &tk, &tv})
            if (t->channel[size_t(w * heads + h)] != t->channel[size_t(h)] ||
                t->channel[size_t(h)] != t->channel[0] + h * dim)
              fail("runs attention heads that are not consecutive channel runs");
      // Windows: window_h x window_w pixels, row-major, starting at the shift, wrapping around.
      const int64_t first = tq.pixel[0];
      int64_t ww = 1;
      while (ww < tokens && tq.pixel[size_t(ww)] / sh.w == first / sh.w) ++ww;
      const int64_t wh = tokens / ww;
      if (wh * ww != tokens || sh.h % wh || sh.w % ww || windows != (sh.h / wh) * (sh.w / ww))
        fail(fmt::format(
            "runs attention over groups of {} tokens that are not windows tiling the {}x{} picture", tokens,
            sh.w, sh.h));
      WindowAttentionParams here;
      here.heads = int(heads);
      here.head_dim = int(dim);
      here.window_h = int(wh);
      here.window_w = int(ww);
      here.shift_y = int(first / sh.w);
      here.shift_x = int(first % sh.w);
      auto token = [&](int64_t w, int64_t n) { return window_token(here, sh.h, sh.w, int(w), int(n)); };
      for (int64_t w = 0; w < windows; ++w)
        for (int64_t n = 0; n < tokens; ++n)
          for (int64_t h = 0; h < heads; ++h)
            if (tq.pixel[size_t((w * heads + h) * tokens + n)] != token(w, n).pixel)
              fail("runs attention over tokens that are not windows of the picture (shifted or not)");
      here.q_channel = int(tq.channel[0]);
      here.k_channel = int(tk.channel[0]);
      here.v_channel = int(tv.channel[0]);
      here.scale = float(sc.factor);
      // The bias: a relative term per head, the same in every window (window 0 never wraps), plus
      // a mask that sets apart tokens which wrapped around the picture's edges differently.
      const std::vector<double>& bias = sc.bias[s].v;
      const size_t nn = size_t(tokens * tokens);
      std::vector<float> rel(size_t(heads) * nn);
      for (int64_t h = 0; h < heads; ++h)
        for (size_t e = 0; e < nn; ++e) rel[size_t(h) * nn + e] = float(bias[size_t(h) * nn + e]);
      bool masked = false;
      for (int64_t w = 0; w < windows; ++w)
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t i = 0; i < tokens; ++i)
            for (int64_t j = 0; j < tokens; ++j) {
              const double m = bias[size_t((w * heads + h) * tokens + i) * size_t(tokens) + size_t(j)] -
                               rel[size_t(h) * nn + size_t(i * tokens + j)];
              const bool apart = token(w, i).wrap != token(w, j).wrap;
              if (!apart && std::fabs(m) > 1e-4)
                fail("adds an attention bias that differs from window to window");
              if (apart) {
                if (!mask_value) mask_value = m;
                if (std::fabs(m - *mask_value) > 1e-4 * std::max(1.0, std::fabs(*mask_value)))
                  fail("masks attention between wrapped tokens with more than one value");
                masked = true;
              }
            }
      here.masked = masked;
      here.mask_value = masked ? float(*mask_value) : 0.f;
      if (s == 0) {
        p = here;
        relative = rel;
      } else if (here.heads != p.heads || here.head_dim != p.head_dim || here.window_h != p.window_h ||
                 here.window_w != p.window_w || here.shift_y != p.shift_y || here.shift_x != p.shift_x ||
                 here.q_channel != p.q_channel || here.k_channel != p.k_channel ||
                 here.v_channel != p.v_channel || here.masked != p.masked) {
        fail("runs attention whose windows or heads depend on the input size");
      }
      // The output: heads x dim channels of a new picture at the same pixels, in V's layout.
      Array& a = out_arrays.emplace_back();
      a.dims = v.dims(s);
      const int64_t plane = int64_t(sh.h) * sh.w;
      a.v.resize(size_t(a.count()));
      for (int64_t row = 0; row < rows; ++row)
        for (int64_t n = 0; n < tokens; ++n)
          for (int64_t j = 0; j < dim; ++j)
            a.v[size_t((row * tokens + n) * dim + j)] =
                double(((row % heads) * dim + j) * plane + tq.pixel[size_t(row * tokens + n)]);
    }
    Node n;
    n.type = OpType::window_attention;
    n.inputs = {qb, kb, vb};
    n.params = p;
    n.weights.emplace_back(Shape{int(relative.size()), 1, 1}, std::move(relative));
    View out;
    out.blob = add_node(std::move(n));
    out.set(std::move(out_arrays));
    define_view(std::move(out));
  }

  void pool() {
    Node n;
    n.type = OpType::pooling;
    n.inputs = {picture_input(0)};
    PoolingParams p;
    p.kind = node_->op_type() == "MaxPool" ? PoolKind::max : PoolKind::average;
    std::vector<int64_t> k = attr_ints("kernel_shape"), st = attr_ints("strides"), pads = attr_ints("pads");
    if (k.size() != 2 || k[0] < 1 || k[1] < 1 || k[0] > 64 || k[1] > 64)
      fail("kernel_shape must be two small values");
    if (attr_i("ceil_mode", 0)) fail("ceil_mode is not supported");
    if (!attr_ints("dilations").empty() && attr_ints("dilations") != std::vector<int64_t>{1, 1})
      fail("dilated pooling is not supported");
    if (attr_s("auto_pad", "NOTSET") != "NOTSET") fail("automatic pooling pads are not supported");
    p.kernel_h = int(k[0]);
    p.kernel_w = int(k[1]);
    p.stride_h = st.size() == 2 ? int(st[0]) : 1;
    p.stride_w = st.size() == 2 ? int(st[1]) : 1;
    if (p.stride_h < 1 || p.stride_w < 1 || p.stride_h > 64 || p.stride_w > 64)
      fail("strides are out of range");
    if (!pads.empty()) {
      if (pads.size() != 4) fail("pads must list four values");
      for (int64_t v : pads)
        if (v < 0 || v > 64) fail("pads are out of range");
      p.pad_top = int(pads[0]);
      p.pad_left = int(pads[1]);
      p.pad_bottom = int(pads[2]);
      p.pad_right = int(pads[3]);
    }
    p.count_include_pad = attr_i("count_include_pad", 0) != 0;
    n.params = p;
    define_picture(0, add_node(std::move(n)));
  }

  const onnx::ModelProto& model_;
  std::string name_;
  std::unique_ptr<Graph> graph_;
  std::map<std::string, Value> values_;
  std::vector<std::vector<Shape>> shapes_;  // per blob, per sample
  std::vector<int> sample_h_, sample_w_;
  int alignment_ = 1;
  bool divided_ = false;  // the node being folded divides a size that varies with the input
  int opset_ = 13;
  const onnx::NodeProto* node_ = nullptr;
  int node_index_ = 0;
  int64_t live_bytes_ = 0;  // held_bytes() of the views and attention values alive
};

bool has_onnx_suffix(const std::string& path) {
  if (path.size() < 5) return false;
  std::string tail = path.substr(path.size() - 5);
  std::transform(tail.begin(), tail.end(), tail.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return tail == ".onnx";
}

// A protobuf ModelProto starts with ir_version (field 1, a varint: tag 0x08) and a small version,
// then another field; exporters write it first.
bool looks_like_onnx(const std::string& head) {
  return head.size() >= 3 && head[0] == 0x08 && head[1] >= 1 && head[1] <= 32 &&
         (head[2] == 0x12 || head[2] == 0x1a || head[2] == 0x22 || head[2] == 0x2a || head[2] == 0x3a ||
          head[2] == 0x42);
}

}  // namespace

std::unique_ptr<Graph> load_onnx_from_memory(const std::string& bytes, const std::string& name) {
  onnx::ModelProto model;
  if (bytes.size() > size_t(INT32_MAX) || !model.ParseFromString(bytes))
    throw Error(ErrorCode::invalid_model,
                fmt::format("{}: is not a readable ONNX model (damaged or truncated file?)", name));
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw Error(ErrorCode::invalid_model, fmt::format("{}: is an ONNX file with no graph", name));
  return OnnxImporter(model, name).run();
}

std::unique_ptr<Graph> load_onnx(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, kMaxModelFileBytes);
  return load_onnx_from_memory(std::string(bytes.begin(), bytes.end()), path);
}

ModelLoader onnx_model_loader() {
  return {"onnx", "an .onnx file",
          [](const std::string& path, const std::string& head) -> std::optional<ModelSource> {
            if (!has_onnx_suffix(path) && !looks_like_onnx(head)) return std::nullopt;
            return ModelSource{"onnx", {path}};
          },
          [](const ModelSource& source) { return load_onnx(source.weights_file()); }};
}

}  // namespace upres
