// The cpu backend: convolutions, deconvolutions and channel concats run as oneDNN primitives on
// whatever blocked layout oneDNN prefers, with bias, activation and residual add fused as
// post-ops; every other op runs its reference kernel on plain memory. Primitives, reorders and
// buffers are created once per input shape in compile(); run() only executes them.
//
// With an int8 calibration, the convolutions the int8 plan picks (model/int8_plan.hpp) run on
// oneDNN's int8 kernels (VNNI): a float blob they read is quantised once into an int8 copy
// shared by all its int8 readers, and blobs the plan stores as int8 never exist in float.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <optional>

#include <fmt/format.h>
#include <dnnl.hpp>

#include "backend/backend.hpp"
#include "backend/cpu/interp_kernel.hpp"
#include "backend/cpu/onednn_isa.hpp"
#include "backend/cpu/window_attention_kernel.hpp"
#include "model/int8_plan.hpp"
#include "model/passes.hpp"
#include "ops/op.hpp"

namespace upres {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
constexpr auto f32 = memory::data_type::f32;
constexpr auto s8 = memory::data_type::s8;

memory::desc plain_desc(Shape s) {
  return memory::desc({1, s.c, s.h, s.w}, f32, tag::nchw);
}

// Activation buffers, handed out and taken back while compile() plans the steps. Steps run in
// order, so a buffer released after step k can hold a blob that step k + 1 creates.
class BufferPool {
 public:
  struct Slot {
    float* data;
    size_t bytes;
    bool used;
  };
  int acquire(size_t bytes) {
    int best = -1;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].used && slots_[i].bytes >= bytes &&
          (best < 0 || slots_[i].bytes < slots_[size_t(best)].bytes))
        best = int(i);
    if (best < 0) {
      size_t rounded = (bytes + 63) / 64 * 64;
      auto* p = static_cast<float*>(std::aligned_alloc(64, rounded));
      if (!p)
        throw Error(ErrorCode::limit_exceeded,
                    fmt::format("out of memory allocating {} MiB of activations", rounded >> 20));
      slots_.push_back({p, rounded, false});
      best = int(slots_.size()) - 1;
    }
    slots_[size_t(best)].used = true;
    return best;
  }
  void release(int slot) { slots_[size_t(slot)].used = false; }
  float* data(int slot) const { return slots_[size_t(slot)].data; }
  int64_t total_bytes() const {
    int64_t n = 0;
    for (const Slot& s : slots_) n += int64_t(s.bytes);
    return n;
  }
  ~BufferPool() {
    for (Slot& s : slots_) std::free(s.data);
  }

 private:
  std::vector<Slot> slots_;
};

// Convolution geometry in oneDNN's terms (dilation counts the gaps; deconvolution padding is
// what is cut from the full output).
struct ConvDims {
  memory::dims strides, dilates, pad_l, pad_r;
  explicit ConvDims(const ConvParams& p)
      : strides{p.stride_h, p.stride_w},
        dilates{p.dilation_h - 1, p.dilation_w - 1},
        pad_l{p.pad_top, p.pad_left},
        pad_r{p.pad_bottom - p.output_pad_bottom, p.pad_right - p.output_pad_right} {}
};

class CpuExecutor final : public Executor {
 public:
  CpuExecutor(const Graph& graph, Shape input, int threads, const Int8Calibration* int8,
              const std::vector<int>& observed)
      : graph_(graph), threads_(threads), observed_(observed) {
    if (int8) plan_ = plan_int8(graph, *int8);
    try {
      build(input);
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::backend_failure, fmt::format("oneDNN could not set up {} for input {}: {}",
                                                          graph.source, input.str(), e.what()));
    }
  }

  Ticket submit(const TensorView& input, const TensorView& output) override {
    UPRES_ASSERT(output.shape == output_shape());
    execute(input, output.data);
    return {};
  }

  void run_observed(const TensorView& input, const TensorView& output, const BlobObserver& observe) override {
    observe_ = &observe;
    struct Reset {
      const BlobObserver*& o;
      ~Reset() { o = nullptr; }
    } reset{observe_};
    // The input first, as it is (no step of the plan makes it).
    if (observe && std::find(observed_.begin(), observed_.end(), graph_.input_blob) != observed_.end())
      observe(graph_.input_blob, input);
    run(input, output);
  }

  TensorDesc input_desc() const override { return {shapes_[size_t(graph_.input_blob)]}; }
  TensorDesc output_desc() const override { return {shapes_[size_t(graph_.output_blob)]}; }
  int64_t memory_bytes() const override { return pool_.total_bytes(); }

 private:
  void execute(const TensorView& input, float* output) {
    UPRES_ASSERT(input.shape == shapes_[size_t(graph_.input_blob)]);
    // The OpenMP thread count is per calling thread; a video pipeline runs this on its own thread.
    if (threads_ > 0) omp_set_num_threads(threads_);
    input_mem_.set_data_handle(input.data);
    output_mem_.set_data_handle(output);
    try {
      for (auto& step : steps_) step();
      stream_.wait();
    } catch (const dnnl::error& e) {
      throw Error(ErrorCode::backend_failure,
                  fmt::format("oneDNN failed running {}: {}", graph_.source, e.what()));
    }
  }

  struct Blob {
    memory mem;
    int slot = -1;  // -1: not from the pool (the input)
    // A float blob that int8 convolutions read: its int8 copy, made once for all of them.
    memory quantized;
    int quantized_slot = -1;
  };

  void build(Shape input) {
    shapes_ = graph_.infer_shapes(input);
    last_ = graph_.last_uses();
    const std::vector<int>& last = last_;
    blobs_.resize(shapes_.size());
    input_mem_ = memory(plain_desc(input), engine_, nullptr);
    blobs_[size_t(graph_.input_blob)].mem = input_mem_;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& node = graph_.nodes[i];
      switch (node.type) {
        case OpType::convolution:
        case OpType::deconvolution:
          if (plan_ && plan_->convs[i])
            add_int8_convolution(node, int(i), *plan_->convs[i]);
          else
            add_convolution(node, int(i));
          break;
        case OpType::interp: add_interp(node); break;
        case OpType::binary_op:
          if (!add_binary(node)) add_reference(node);
          break;
        case OpType::window_attention: add_window_attention(node); break;
        case OpType::relu:
        case OpType::sigmoid:
        case OpType::swish:
        case OpType::tanh:
        case OpType::mish:
        case OpType::gelu:
        case OpType::clip: add_eltwise(node); break;
        case OpType::concat:
          if (node.p<ConcatParams>().axis == 0) {
            add_concat(node);
            break;
          }
          [[fallthrough]];
        default: add_reference(node); break;
      }
      for (int b : node.outputs)
        if (std::find(observed_.begin(), observed_.end(), b) != observed_.end()) add_observation(b);
      for (int b : node.inputs) {
        Blob& blob = blobs_[size_t(b)];
        if (last[size_t(b)] != int(i)) continue;
        for (int* slot : {&blob.slot, &blob.quantized_slot})
          if (*slot >= 0) {
            pool_.release(*slot);
            *slot = -1;
          }
      }
    }
    const memory& result = blobs_[size_t(graph_.output_blob)].mem;
    output_mem_ = memory(plain_desc(output_shape()), engine_, nullptr);
    add_reorder(result, output_mem_);
  }

  // The output of a convolution whose fused residual (inputs[1]) the sum post-op adds to the
  // destination: the residual's own buffer when this node is its last reader and the layouts
  // agree (the sum then happens in place), else a new buffer the residual is copied into.
  // int8_step > 0: the residual is float and goes into an int8 output rounded to steps of that
  // size; its int8 copy, made for an int8 reader at the same calibrated step, serves when there
  // is one, so the same float is not quantised twice.
  memory residual_destination(const Node& node, int index, const memory::desc& md, float int8_step = 0) {
    Blob& residual = blobs_[size_t(node.inputs[1])];
    const bool quantized = int8_step > 0 && residual.quantized && residual.quantized.get_desc() == md;
    const memory source = quantized ? residual.quantized : residual.mem;
    int& slot = quantized ? residual.quantized_slot : residual.slot;
    if (last_[size_t(node.inputs[1])] == index && slot >= 0 && source.get_desc() == md &&
        node.inputs[0] != node.inputs[1]) {
      const int taken = slot;
      slot = -1;  // the buffer belongs to the output now
      return place_blob(node.outputs[0], md, taken);
    }
    memory dst = new_blob_memory(node.outputs[0], md);
    dnnl::primitive_attr attr;
    if (int8_step > 0 && !quantized) attr.set_output_scales(0, {1.f / int8_step});
    add_reorder(source, dst, attr);
    return dst;
  }

  memory new_blob_memory(int blob, const memory::desc& md) {
    return place_blob(blob, md, pool_.acquire(md.get_size()));
  }

  memory place_blob(int blob, const memory::desc& md, int slot) {
    Blob& b = blobs_[size_t(blob)];
    b = Blob{};
    b.mem = memory(md, engine_, pool_.data(slot));
    b.slot = slot;
    return b.mem;
  }

  void add_reorder(memory from, memory to, const dnnl::primitive_attr& attr = {}) {
    dnnl::reorder::primitive_desc pd(engine_, from.get_desc(), engine_, to.get_desc(), attr);
    add_primitive(dnnl::reorder(pd), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
  }

  bool stored_int8(int blob) const { return plan_ && plan_->stored_step[size_t(blob)] > 0; }

  // A step that executes `prim`. The C++ API's execute() builds an argument vector on every
  // call; the step keeps a prebuilt one and calls the C API, so a run allocates nothing of ours.
  void add_primitive(dnnl::primitive prim, std::unordered_map<int, memory> args) {
    std::vector<dnnl_exec_arg_t> c_args;
    for (const auto& [arg, mem] : args) c_args.push_back({arg, mem.get()});
    steps_.push_back([this, prim, args = std::move(args), c_args = std::move(c_args)]() {
      dnnl::error::wrap_c_api(
          dnnl_primitive_execute(prim.get(), stream_.get(), int(c_args.size()), c_args.data()),
          "could not execute a primitive");
    });
  }

  // `blob`'s memory in layout `md`: the blob itself, or a scratch copy reordered each run.
  memory as_layout(int blob, const memory::desc& md, std::vector<int>& scratch) {
    const memory& m = blobs_[size_t(blob)].mem;
    // A plain reorder does not scale: int8 blobs go only to int8 readers (the plan sees to it).
    UPRES_ASSERT(m.get_desc().data_type() == md.data_type());
    if (m.get_desc() == md) return m;
    int slot = pool_.acquire(md.get_size());
    scratch.push_back(slot);
    memory converted(md, engine_, pool_.data(slot));
    add_reorder(m, converted);
    return converted;
  }

  static void append_activation(dnnl::post_ops& ops, const ActivationParams& a) {
    using alg = dnnl::algorithm;
    switch (a.type) {
      case Activation::none:
      case Activation::prelu: break;
      case Activation::relu: ops.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f); break;
      case Activation::leaky_relu: ops.append_eltwise(1.f, alg::eltwise_relu, a.alpha, 0.f); break;
      case Activation::clip: ops.append_eltwise(1.f, alg::eltwise_clip, a.alpha, a.beta); break;
      case Activation::sigmoid: ops.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f); break;
      case Activation::swish: ops.append_eltwise(1.f, alg::eltwise_swish, 1.f, 0.f); break;
      case Activation::tanh: ops.append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f); break;
      case Activation::mish: ops.append_eltwise(1.f, alg::eltwise_mish, 0.f, 0.f); break;
      case Activation::gelu: ops.append_eltwise(1.f, alg::eltwise_gelu_erf, 0.f, 0.f); break;
    }
  }

  void add_convolution(const Node& node, int index) {
    const auto& p = node.p<ConvParams>();
    const bool deconv = node.type == OpType::deconvolution;
    const Shape in = shapes_[size_t(node.inputs[0])];
    const Shape out = shapes_[size_t(node.outputs[0])];
    memory::desc src_any({1, in.c, in.h, in.w}, f32, tag::any);
    memory::desc dst_any({1, out.c, out.h, out.w}, f32, tag::any);
    // Grouped convolutions: oneDNN's weights carry the group as a leading dimension.
    const memory::dims weight_dims =
        p.groups == 1
            ? memory::dims{p.out_channels, in.c, p.kernel_h, p.kernel_w}
            : memory::dims{p.groups, p.out_channels / p.groups, in.c / p.groups, p.kernel_h, p.kernel_w};
    memory::desc weights_any(weight_dims, f32, tag::any);
    memory::desc bias_md({p.out_channels}, f32, tag::x);
    const ConvDims d(p);

    dnnl::post_ops ops;
    append_activation(ops, p.activation);
    const bool residual = node.inputs.size() == 2;
    // oneDNN 2.6 has no jit convolution with a PReLU post-op (it falls back to a reference
    // kernel ~50x slower), so PReLU runs as its own in-place primitive right after the
    // convolution. Only PReLU followed by a fused residual keeps the post-op (correct, slow).
    const bool prelu = p.activation.type == Activation::prelu;
    const bool prelu_after = prelu && !residual;
    int prelu_index = -1;
    memory slopes;
    if (prelu) {
      const Tensor& s = node.weights[2];
      const bool shared = s.values.size() == 1;
      slopes = memory(memory::desc({1, shared ? 1 : p.out_channels, 1, 1}, f32, tag::nchw), engine_,
                      const_cast<float*>(s.values.data()));
      if (!prelu_after) {
        prelu_index = ops.len();
        ops.append_prelu(shared ? 0 : 1 << 1);
      }
    }
    if (residual) {
      if (p.residual_scale_self != 1.f)
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, p.residual_scale_self, 0.f);
      ops.append_sum(p.residual_scale_other);
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);

    memory::desc src_md, weights_md, dst_md;
    dnnl::primitive prim;
    auto adopt = [&](const auto& pd, dnnl::primitive primitive) {
      src_md = pd.src_desc();
      weights_md = pd.weights_desc();
      dst_md = pd.dst_desc();
      prim = primitive;
    };
    const memory::desc bias = p.bias ? bias_md : memory::desc();
    const auto inference = dnnl::prop_kind::forward_inference;
    if (deconv) {
      dnnl::deconvolution_forward::primitive_desc pd(
          {inference, dnnl::algorithm::deconvolution_direct, src_any, weights_any, bias, dst_any, d.strides,
           d.dilates, d.pad_l, d.pad_r},
          attr, engine_);
      adopt(pd, dnnl::deconvolution_forward(pd));
    } else {
      dnnl::convolution_forward::primitive_desc pd(
          {inference, dnnl::algorithm::convolution_direct, src_any, weights_any, bias, dst_any, d.strides,
           d.dilates, d.pad_l, d.pad_r},
          attr, engine_);
      adopt(pd, dnnl::convolution_forward(pd));
    }

    // Weights: reordered once, here, from the graph's plain o x i x h x w into oneDNN's layout.
    memory user_weights(memory::desc(weight_dims, f32, p.groups == 1 ? tag::oihw : tag::goihw), engine_,
                        const_cast<float*>(node.weights[0].values.data()));
    memory weights(weights_md, engine_);
    dnnl::reorder(user_weights, weights).execute(stream_, user_weights, weights);
    stream_.wait();

    std::vector<int> scratch;
    memory src = as_layout(node.inputs[0], src_md, scratch);
    memory dst =
        residual ? residual_destination(node, index, dst_md) : new_blob_memory(node.outputs[0], dst_md);

    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
    if (p.bias)
      args[DNNL_ARG_BIAS] = memory(bias_md, engine_, const_cast<float*>(node.weights[1].values.data()));
    if (prelu_index >= 0) args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(prelu_index) | DNNL_ARG_WEIGHTS] = slopes;
    add_primitive(prim, std::move(args));
    if (prelu_after) add_prelu(dst, slopes);
    for (int s : scratch) pool_.release(s);
  }

  // A convolution on oneDNN's int8 kernels, following its Int8ConvPlan.
  void add_int8_convolution(const Node& node, int index, const Int8ConvPlan& q) {
    const auto& p = node.p<ConvParams>();
    const Shape in = shapes_[size_t(node.inputs[0])];
    const Shape out = shapes_[size_t(node.outputs[0])];
    const bool int8_out = q.dst_step > 0;
    const bool residual = node.inputs.size() == 2;
    memory::desc src_any({1, in.c, in.h, in.w}, s8, tag::any);
    memory::desc dst_any({1, out.c, out.h, out.w}, int8_out ? s8 : f32, tag::any);
    memory::desc weights_any({p.out_channels, in.c, p.kernel_h, p.kernel_w}, s8, tag::any);
    memory::desc bias_md({p.out_channels}, f32, tag::x);

    // Output scales take the accumulator to real units, or for activations that commute with
    // scaling straight to the output's int8 steps; the others divide by the step afterwards.
    const bool scaled_activation = activation_is_homogeneous(p.activation.type);
    std::vector<float> scales(size_t(p.out_channels));
    for (size_t o = 0; o < scales.size(); ++o) {
      scales[o] = q.src_step * q.weight_steps[o];
      if (int8_out && scaled_activation) scales[o] = scales[o] / q.dst_step;
    }
    dnnl::post_ops ops;
    append_activation(ops, p.activation);  // PReLU runs on its own, below
    if (int8_out && !scaled_activation)
      ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, 1.f / q.dst_step, 0.f);
    if (residual) {
      if (p.residual_scale_self != 1.f)
        ops.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, p.residual_scale_self, 0.f);
      // An int8 sum adds the residual's steps, in the output's steps; a float residual is
      // rounded to its steps as it is copied in (residual_destination).
      ops.append_sum(p.residual_scale_other * (int8_out ? q.residual_step / q.dst_step : 1.f));
    }
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, scales);
    attr.set_post_ops(ops);
    const ConvDims d(p);
    dnnl::convolution_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_any, weights_any,
         bias_md, dst_any, d.strides, d.dilates, d.pad_l, d.pad_r},
        attr, engine_);

    memory user_weights(memory::desc({p.out_channels, in.c, p.kernel_h, p.kernel_w}, s8, tag::oihw), engine_,
                        const_cast<int8_t*>(q.weights.data()));
    memory weights(pd.weights_desc(), engine_);
    dnnl::reorder(user_weights, weights).execute(stream_, user_weights, weights);
    stream_.wait();

    std::vector<int> scratch;
    memory src = int8_source(node.inputs[0], pd.src_desc(), q.src_step, scratch);
    memory dst = residual
                     ? residual_destination(node, index, pd.dst_desc(),
                                            int8_out && !stored_int8(node.inputs[1]) ? q.residual_step : 0.f)
                     : new_blob_memory(node.outputs[0], pd.dst_desc());
    add_primitive(dnnl::convolution_forward(pd),
                  {{DNNL_ARG_SRC, src},
                   {DNNL_ARG_WEIGHTS, weights},
                   {DNNL_ARG_BIAS, memory(bias_md, engine_, const_cast<float*>(q.bias.data()))},
                   {DNNL_ARG_DST, dst}});
    if (p.activation.type == Activation::prelu) {
      const Tensor& s = node.weights[2];
      add_prelu(dst,
                memory(memory::desc({1, s.values.size() == 1 ? 1 : p.out_channels, 1, 1}, f32, tag::nchw),
                       engine_, const_cast<float*>(s.values.data())));
    }
    for (int slot : scratch) pool_.release(slot);
  }

  // `blob` as an int8 convolution's input in layout `md`: an int8 blob itself (reordered when its
  // producer chose another layout), or the int8 copy of a float blob.
  memory int8_source(int blob, const memory::desc& md, float step, std::vector<int>& scratch) {
    if (stored_int8(blob)) return as_layout(blob, md, scratch);
    Blob& b = blobs_[size_t(blob)];
    if (b.quantized && b.quantized.get_desc() == md) return b.quantized;
    int slot = pool_.acquire(md.get_size());
    memory copy(md, engine_, pool_.data(slot));
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {1.f / step});
    add_reorder(b.mem, copy, attr);
    if (b.quantized) {
      scratch.push_back(slot);  // a reader that wants another layout: its own short-lived copy
    } else {
      b.quantized = copy;
      b.quantized_slot = slot;
    }
    return copy;
  }

  // In-place PReLU on a blob in whatever layout its producer chose.
  void add_prelu(memory data, memory user_slopes) {
    const memory::desc& md = data.get_desc();
    memory::desc slopes_any(user_slopes.get_desc().dims(), f32, tag::any);
    dnnl::prelu_forward::primitive_desc pd(
        dnnl::prelu_forward::desc(dnnl::prop_kind::forward_inference, md, slopes_any), engine_);
    memory slopes = user_slopes;
    if (pd.weights_desc() != user_slopes.get_desc()) {
      slopes = memory(pd.weights_desc(), engine_);
      dnnl::reorder(user_slopes, slopes).execute(stream_, user_slopes, slopes);
      stream_.wait();
    }
    add_primitive(dnnl::prelu_forward(pd),
                  {{DNNL_ARG_SRC, data}, {DNNL_ARG_WEIGHTS, slopes}, {DNNL_ARG_DST, data}});
  }

  void add_concat(const Node& node) {
    std::vector<memory::desc> srcs;
    for (int b : node.inputs) srcs.push_back(blobs_[size_t(b)].mem.get_desc());
    dnnl::concat::primitive_desc pd(1, srcs, engine_);
    memory dst = new_blob_memory(node.outputs[0], pd.dst_desc());
    std::unordered_map<int, memory> args{{DNNL_ARG_DST, dst}};
    for (size_t i = 0; i < node.inputs.size(); ++i)
      args[DNNL_ARG_MULTIPLE_SRC + int(i)] = blobs_[size_t(node.inputs[i])].mem;
    add_primitive(dnnl::concat(pd), std::move(args));
  }

  // Arithmetic of two pictures (the second may broadcast) as oneDNN's binary primitive, on the
  // layout the first one's producer chose: no reorder back to plain memory and, unlike the
  // reference kernel, vectorised. Kinds it lacks (pow, reversed operands, scalars) stay on the
  // reference kernel; so does a first operand that broadcasts, unless the kind commutes.
  bool add_binary(const Node& node) {
    using alg = dnnl::algorithm;
    const auto& p = node.p<BinaryOpParams>();
    if (p.with_scalar || node.inputs.size() != 2) return false;
    alg kind;
    switch (p.kind) {
      case BinaryOpKind::add: kind = alg::binary_add; break;
      case BinaryOpKind::sub: kind = alg::binary_sub; break;
      case BinaryOpKind::mul: kind = alg::binary_mul; break;
      case BinaryOpKind::div: kind = alg::binary_div; break;
      case BinaryOpKind::max: kind = alg::binary_max; break;
      case BinaryOpKind::min: kind = alg::binary_min; break;
      default: return false;
    }
    const Shape out = shapes_[size_t(node.outputs[0])];
    int a = node.inputs[0], b = node.inputs[1];
    if (shapes_[size_t(a)] != out) {
      const bool commutes = kind == alg::binary_add || kind == alg::binary_mul || kind == alg::binary_max ||
                            kind == alg::binary_min;
      if (!commutes || shapes_[size_t(b)] != out) return false;
      std::swap(a, b);
    }
    if (stored_int8(a) || stored_int8(b)) return false;
    std::vector<int> scratch;
    const memory::desc src0 = blobs_[size_t(a)].mem.get_desc();
    const Shape sb = shapes_[size_t(b)];
    // The second operand in the first's layout when it is a whole picture too, else plain.
    const memory::desc src1 = sb == out ? src0 : plain_desc(sb);
    try {
      dnnl::binary::primitive_desc pd(dnnl::binary::desc(kind, src0, src1, src0), engine_);
      memory other = as_layout(b, src1, scratch);
      memory dst = new_blob_memory(node.outputs[0], src0);
      add_primitive(dnnl::binary(pd),
                    {{DNNL_ARG_SRC_0, blobs_[size_t(a)].mem}, {DNNL_ARG_SRC_1, other}, {DNNL_ARG_DST, dst}});
    } catch (const dnnl::error&) {
      for (int s : scratch) pool_.release(s);
      return false;
    }
    for (int s : scratch) pool_.release(s);
    return true;
  }

  // A standalone activation as oneDNN's eltwise primitive, on whatever layout its input has: no
  // reorder to plain memory and back, and vectorised transcendentals (Mish through libm's tanh, log1p
  // and exp cost 15 ns a value on the reference kernel).
  void add_eltwise(const Node& node) {
    using alg = dnnl::algorithm;
    if (stored_int8(node.inputs[0])) return add_reference(node);
    alg kind = alg::eltwise_relu;
    float alpha = 0, beta = 0;
    switch (node.type) {
      case OpType::relu: alpha = node.p<ReluParams>().slope; break;
      case OpType::sigmoid: kind = alg::eltwise_logistic; break;
      case OpType::swish:
        kind = alg::eltwise_swish;
        alpha = 1;
        break;
      case OpType::tanh: kind = alg::eltwise_tanh; break;
      case OpType::mish: kind = alg::eltwise_mish; break;
      case OpType::gelu: kind = alg::eltwise_gelu_erf; break;
      case OpType::clip:
        kind = alg::eltwise_clip;
        alpha = node.p<ClipParams>().min;
        beta = node.p<ClipParams>().max;
        break;
      default: return add_reference(node);
    }
    const memory& src = blobs_[size_t(node.inputs[0])].mem;
    dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, kind, src.get_desc(), alpha, beta),
        engine_);
    memory dst = new_blob_memory(node.outputs[0], src.get_desc());
    add_primitive(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
  }

  // Interp: plain memory, a separable float kernel with tables made here.
  void add_interp(const Node& node) {
    std::vector<int> scratch;
    memory in = as_layout(node.inputs[0], plain_desc(shapes_[size_t(node.inputs[0])]), scratch);
    memory out = new_blob_memory(node.outputs[0], plain_desc(shapes_[size_t(node.outputs[0])]));
    auto kernel = std::make_shared<InterpKernel>(node.p<InterpParams>(), shapes_[size_t(node.inputs[0])],
                                                 shapes_[size_t(node.outputs[0])]);
    steps_.push_back([this, in, out, kernel]() {
      stream_.wait();
      kernel->run(static_cast<const float*>(in.get_data_handle()),
                  static_cast<float*>(out.get_data_handle()));
    });
    for (int s : scratch) pool_.release(s);
  }

  // Window attention: plain inputs and output, WindowAttentionKernel's batched matmuls between.
  void add_window_attention(const Node& node) {
    std::vector<int> scratch;
    std::vector<memory> in;
    for (int b : node.inputs) in.push_back(as_layout(b, plain_desc(shapes_[size_t(b)]), scratch));
    memory out = new_blob_memory(node.outputs[0], plain_desc(shapes_[size_t(node.outputs[0])]));
    auto kernel = std::make_shared<WindowAttentionKernel>(node, shapes_[size_t(node.inputs[0])], engine_);
    steps_.push_back([this, in, out, kernel]() {
      stream_.wait();
      kernel->run(static_cast<const float*>(in[0].get_data_handle()),
                  static_cast<const float*>(in[1].get_data_handle()),
                  static_cast<const float*>(in[2].get_data_handle()),
                  static_cast<float*>(out.get_data_handle()), stream_);
    });
    for (int s : scratch) pool_.release(s);
  }

  // A step that shows `blob` (as plain floats) to run_observed()'s observer.
  void add_observation(int blob) {
    UPRES_ASSERT(!stored_int8(blob));
    std::vector<int> scratch;
    const Shape shape = shapes_[size_t(blob)];
    memory plain = as_layout(blob, plain_desc(shape), scratch);
    steps_.push_back([this, blob, plain, shape]() {
      stream_.wait();
      if (observe_) (*observe_)(blob, {shape, static_cast<float*>(plain.get_data_handle())});
    });
    for (int s : scratch) pool_.release(s);
  }

  // Any other op: plain inputs, the reference kernel, a plain output.
  void add_reference(const Node& node) {
    std::vector<int> scratch;
    std::vector<memory> inputs;
    for (int b : node.inputs) inputs.push_back(as_layout(b, plain_desc(shapes_[size_t(b)]), scratch));
    memory out = new_blob_memory(node.outputs[0], plain_desc(shapes_[size_t(node.outputs[0])]));
    // The views are sized here and refilled each run (the graph input's address changes).
    std::vector<TensorView> in(inputs.size()), o(1);
    steps_.push_back([this, &node, inputs, out, in, o]() mutable {
      stream_.wait();  // reorders feeding this kernel must be finished
      for (size_t i = 0; i < inputs.size(); ++i)
        in[i] = {shapes_[size_t(node.inputs[i])], static_cast<float*>(inputs[i].get_data_handle())};
      o[0] = {shapes_[size_t(node.outputs[0])], static_cast<float*>(out.get_data_handle())};
      op_def(node.type).run_reference(node, in, o);
    });
    for (int s : scratch) pool_.release(s);
  }

  const Graph& graph_;
  int threads_ = 0;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  std::vector<Shape> shapes_;
  std::vector<int> last_;  // per blob, the last node reading it
  std::vector<Blob> blobs_;
  BufferPool pool_;
  std::optional<Int8Plan> plan_;
  std::vector<std::function<void()>> steps_;
  std::vector<int> observed_;
  const BlobObserver* observe_ = nullptr;
  memory input_mem_, output_mem_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(int threads, std::shared_ptr<const Int8Calibration> int8)
      : threads_(threads), int8_(std::move(int8)) {
    configure_onednn_isa();
    if (threads > 0) omp_set_num_threads(threads);
  }
  const char* name() const override { return "cpu"; }
  DeviceInfo device() const override {
    DeviceInfo d = host_device("cpu");
    if (threads_ > 0) d.threads = threads_;
    d.fast_int8 = onednn_has_fast_int8();
    return d;
  }
  std::unique_ptr<Executor> compile(const Graph& graph, Shape input,
                                    const std::vector<int>& observed = {}) override {
    // oneDNN splits the work among threads when it creates a primitive, by the calling thread's
    // OpenMP count: set it here too, or a compile on a pipeline thread uses every core whatever
    // --threads says.
    if (threads_ > 0) omp_set_num_threads(threads_);
    return std::make_unique<CpuExecutor>(graph, input, threads_, int8_.get(), observed);
  }
  std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const override {
    auto g = std::make_unique<Graph>(graph);
    fuse_conv_epilogues(*g, probe);
    return g;
  }

 private:
  int threads_ = 0;
  std::shared_ptr<const Int8Calibration> int8_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int threads, std::shared_ptr<const Int8Calibration> int8) {
  return std::make_unique<CpuBackend>(threads, std::move(int8));
}

BackendEntry cpu_backend_entry() {
  return {"cpu", "oneDNN on this machine's cores",
          [](const BackendConfig& c) { return make_cpu_backend(c.threads, c.int8); },
          [] {
            configure_onednn_isa();
            DeviceInfo d = host_device("cpu");
            d.fast_int8 = onednn_has_fast_int8();
            return std::vector<DeviceInfo>{d};
          }};
}

}  // namespace upres
