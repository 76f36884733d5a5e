// The Vulkan backend: a graph compiled for one input shape becomes one command buffer, recorded
// once: the input converted (a tile from the host's float32, or a whole video frame from its 8- to
// 16-bit planes), one compute dispatch (or a few) per node with a barrier between them, the
// output converted back the same way. Every blob lives in a device
// buffer from a pool planned at compile time (a blob takes the buffer of one whose last reader
// has run), so a run allocates nothing and never returns to the host between layers.
//
// Shapes and per-run numbers are push constants; kernel geometry and the fused activation are
// specialisation constants, so a pipeline is built once per distinct layer kind and shared by
// every tile size (a frame's edge tiles differ in shape; rebuilding per shape would stall them).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backend/backend.hpp"
#include "backend/vulkan/vulkan_context.hpp"
#include "model/passes.hpp"
#include "ops/crop.hpp"
#include "ops/interp.hpp"
#include "ops/op.hpp"

namespace upres {
namespace {

using vulkan::Buffer;
using vulkan::Context;

// Push constants, in the order a shader's push block declares them.
struct Push {
  std::vector<uint32_t> words;
  Push& i(int64_t v) {
    words.push_back(uint32_t(int32_t(v)));
    return *this;
  }
  Push& f(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    words.push_back(u);
    return *this;
  }
};

// One compute dispatch: a pipeline, its buffers in binding order, push constants, group counts.
struct Dispatch {
  const vulkan::Pipeline* pipeline;
  std::vector<const Buffer*> buffers;
  Push push;
  uint32_t groups[3];
};

constexpr uint32_t kGroupSize = 64;     // GROUP_SIZE in shaders/common.glsl
constexpr uint32_t kMaxGroups = 65535;  // per dimension, the minimum every device allows

// Groups for `count` invocations along x, spilling into y (shaders/common.glsl's linear_id()).
void linear_groups(int64_t count, uint32_t* groups) {
  const int64_t g = std::max<int64_t>(1, (count + kGroupSize - 1) / kGroupSize);
  groups[0] = uint32_t(std::min<int64_t>(g, kMaxGroups));
  groups[1] = uint32_t((g + groups[0] - 1) / groups[0]);
  groups[2] = 1;
}

constexpr int kOrigin[3] = {0, 0, 0};

// Weights one after the other (a norm's scales, then its shifts), for one constant buffer.
std::vector<float> concatenated(const std::vector<Tensor>& weights) {
  std::vector<float> all;
  for (const Tensor& t : weights) all.insert(all.end(), t.values.begin(), t.values.end());
  return all;
}

int activation_code(Activation a) {
  return int(a);  // shaders/common.glsl's ACT_* follow the enum's order
}

// The convolution kernels, each a shader with the same bindings, push constants and weight
// packing: `direct` (convolution.comp) runs every convolution and is the fastest on lavapipe;
// `tiled` (convolution_tiled.comp) shares its loads through workgroup memory, for GPUs;
// `coopmat` (convolution_coopmat.comp) multiplies on NVIDIA's tensor cores, for f16 storage;
// `coopmat_emulated` is that kernel with its products written out, only ever asked for by name:
// it tests the coopmat kernel's indexing on devices without tensor cores.
enum class ConvKernel { direct, tiled, coopmat, coopmat_emulated };
constexpr const char* kConvShaders[] = {"convolution", "convolution_tiled", "convolution_coopmat",
                                        "convolution_coopmat_emulated"};
constexpr const char* kConvKernelNames[] = {"direct", "tiled", "coopmat", "coopmat_emulated"};

// How layers get their kernel: UPRES_VULKAN_CONV=auto (the default: measure on a hardware GPU,
// direct on a software one), measure, or a kernel's name, which every layer it can run takes.
struct ConvPolicy {
  bool measure = false;
  ConvKernel forced = ConvKernel::direct;
};

ConvPolicy conv_policy(const vulkan::PhysicalDevice& device) {
  const char* v = std::getenv("UPRES_VULKAN_CONV");
  const std::string want = v && *v ? v : "auto";
  if (want == "auto") return {!device.software, ConvKernel::direct};
  if (want == "measure") return {true, ConvKernel::direct};
  for (int k = 0; k < 4; ++k)
    if (want == kConvKernelNames[k]) return {false, ConvKernel(k)};
  throw Error(ErrorCode::invalid_argument, fmt::format("UPRES_VULKAN_CONV={} is not a choice: use auto, "
                                                       "measure, direct, tiled, coopmat or coopmat_emulated",
                                                       want));
}

// frame.glsl's Format (std430: every member four bytes, in this order).
struct GpuFormat {
  int32_t width, height, wide, rgb, log2_cw, log2_ch, cw, ch;
  int32_t offset[3], stride[3];
  float luma_offset, luma_scale, chroma_offset, chroma_scale, max_code;
  float chroma_x, chroma_y;
  float kr, kb;
  float rv, gu, gv, bu;
  float to_cb, to_cr;
};
static_assert(sizeof(GpuFormat) == 29 * 4);

// Where a frame's planes sit in a buffer of codes: each plane starts on a word and its rows are a
// whole number of words apart (planes_out.comp writes a word per invocation).
struct PlaneLayout {
  int64_t offset[3] = {}, stride[3] = {};  // in codes, by plane
  int64_t codes = 0;

  explicit PlaneLayout(const PlaneFormat& f) {
    for (int k = 0; k < 3; ++k) {
      offset[k] = codes;
      stride[k] = (f.plane_width(k) + 3) / 4 * 4;
      codes += stride[k] * f.plane_height(k);
    }
  }
  int64_t bytes(const PlaneFormat& f) const { return codes * f.code_bytes(); }
};

GpuFormat gpu_format(const PlaneFormat& f) {
  const PlaneLayout layout(f);
  GpuFormat g{};
  g.width = f.width;
  g.height = f.height;
  g.wide = f.depth > 8;
  g.rgb = f.rgb;
  g.log2_cw = f.log2_chroma_w;
  g.log2_ch = f.log2_chroma_h;
  g.cw = f.plane_width(1);
  g.ch = f.plane_height(1);
  for (int c = 0; c < 3; ++c) {
    g.offset[c] = int32_t(layout.offset[f.plane[c]]);
    g.stride[c] = int32_t(layout.stride[f.plane[c]]);
  }
  g.luma_offset = f.luma_offset;
  g.luma_scale = f.luma_scale;
  g.chroma_offset = f.chroma_offset;
  g.chroma_scale = f.chroma_scale;
  g.max_code = f.max_code;
  g.chroma_x = f.chroma_x;
  g.chroma_y = f.chroma_y;
  g.kr = f.kr;
  g.kb = f.kb;
  // The derived coefficients as color.cpp computes them.
  const double kr = f.kr, kb = f.kb, kg = 1 - kr - kb;
  g.rv = float(2 * (1 - kr));
  g.bu = float(2 * (1 - kb));
  g.gu = float(2 * kb * (1 - kb)) / float(kg);
  g.gv = float(2 * kr * (1 - kr)) / float(kg);
  g.to_cb = 1 / float(2 * (1 - kb));
  g.to_cr = 1 / float(2 * (1 - kr));
  return g;
}

// A graph compiled for one input shape. Its boundary is either float32 tensors in host memory
// (Executor) or, with a FrameSpec, whole frames as planes of codes (FrameExecutor) converted by
// shaders around the graph. Each of its slots (one for tensors, two for frames) has its own
// staging buffers, command buffer and fence, so two frames can be in flight: the device runs
// them in submission order (each command buffer begins with a barrier) while the host fills the
// next slot's input and empties the previous slot's output.
class VulkanExecutor final : public Executor, public FrameExecutor {
 public:
  VulkanExecutor(std::shared_ptr<Context> ctx, bool f16, ConvPolicy policy, const Graph& graph, Shape input,
                 const std::vector<int>& observed, const FrameSpec* frames = nullptr)
      : ctx_(std::move(ctx)), f16_(f16), policy_(policy), graph_(graph), shapes_(graph.infer_shapes(input)) {
    try {
      if (frames) frames_ = *frames;
      plan_buffers();
      dummy_ = ctx_->make_buffer(16, Context::Memory::device);
      auto is_observed = [&](int b) {
        return std::find(observed.begin(), observed.end(), b) != observed.end();
      };
      if (is_observed(graph_.input_blob)) observe_blob(graph_.input_blob);  // before its buffer is reused
      for (const Node& node : graph_.nodes) {
        record_node(node);
        for (int b : node.outputs)
          if (is_observed(b)) observe_blob(b);
      }
      const std::vector<Dispatch> body = std::exchange(dispatches_, {});
      slots_.resize(frames ? 2 : 1);
      for (Slot& slot : slots_) slot.owner = this;
      std::vector<std::vector<Dispatch>> programs;
      for (Slot& slot : slots_) {
        // The boundary's dispatches: the conversion in first, then those out.
        if (frames)
          record_frame_boundary(slot);
        else
          record_tensor_boundary(slot, input);
        std::vector<Dispatch> program = std::exchange(dispatches_, {});
        program.insert(program.begin() + 1, body.begin(), body.end());
        programs.push_back(std::move(program));
      }
      build_command_buffers(programs);
    } catch (...) {
      release();
      throw;
    }
  }

  ~VulkanExecutor() override { release(); }

  Ticket submit(const TensorView& input, const TensorView& output) override {
    UPRES_ASSERT(!takes_frames() && input.shape == input_desc().shape && output.shape == output_desc().shape);
    Slot& slot = slots_[0];
    finish(slot);  // one run in flight per slot: its buffers are reused
    std::memcpy(slot.in.mapped, input.data, size_t(input.shape.size()) * 4);
    for (const auto& [node, buffer] : given_) {
      const std::vector<float>* values = node->p<GivenParams>().values;
      UPRES_ASSERT(values && int64_t(values->size()) == node->p<GivenParams>().channels);
      std::memcpy(buffer->mapped, values->data(), values->size() * 4);
    }
    slot.output = output;
    return start(slot);
  }

  Ticket submit(const Planes& in, const Planes& out) override {
    UPRES_ASSERT(takes_frames() && given_.empty());
    Slot& slot = slots_[size_t(runs_ % 2)];
    finish(slot);
    copy_planes(frames_.in, in, slot.in, true);
    slot.planes = out;
    return start(slot);
  }

  void run_observed(const TensorView& input, const TensorView& output, const BlobObserver& observe) override {
    run(input, output);
    if (!observe) return;
    for (const auto& [b, buffer] : observed_)
      observe(b, {shapes_[size_t(b)], static_cast<float*>(buffer->mapped)});
  }

  TensorDesc input_desc() const override { return {shapes_[size_t(graph_.input_blob)]}; }
  TensorDesc output_desc() const override { return {shapes_[size_t(graph_.output_blob)]}; }
  int64_t memory_bytes() const override {
    int64_t bytes = 0;
    for (const Slot& slot : slots_) bytes += int64_t(slot.in.bytes + slot.out.bytes);
    for (const Buffer& b : pool_) bytes += int64_t(b.bytes);
    for (const auto& b : owned_) bytes += int64_t(b->bytes);
    for (const auto& b : shared_) bytes += int64_t(b->bytes);
    return bytes;
  }

 private:
  // One set of staging buffers and the command buffer that reads and writes them.
  struct Slot {
    VulkanExecutor* owner = nullptr;
    Buffer in, out;
    VkCommandBuffer commands = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    bool pending = false;
    int64_t run = 0;    // the submission it holds
    TensorView output;  // where its output goes: a tensor
    Planes planes;      // or a frame's planes
  };

  bool takes_frames() const { return frames_.in.width > 0; }

  void record_tensor_boundary(Slot& slot, Shape input) {
    // The host's float32 copies are bound whole too, so they must fit one binding as well.
    for (Shape s : {input, output_desc().shape}) check_binding(s, s.size() * 4);
    slot.in = ctx_->make_buffer(uint64_t(input.size()) * 4, Context::Memory::upload);
    slot.out = ctx_->make_buffer(uint64_t(output_desc().shape.size()) * 4, Context::Memory::readback);
    convert("convert_in", slot.in, blob(graph_.input_blob), input.size());
    convert("convert_out", blob(graph_.output_blob), slot.out, output_desc().shape.size());
  }

  // planes_in.comp before the graph; planes_out.comp (luma or RGB, then chroma) after it.
  void record_frame_boundary(Slot& slot) {
    const FrameSpec& f = frames_;
    const PlaneLayout in(f.in), out(f.out);
    check_binding({3, f.in.height, f.in.width}, in.bytes(f.in));
    check_binding({3, f.out.height, f.out.width}, out.bytes(f.out));
    slot.in = ctx_->make_buffer(uint64_t(in.bytes(f.in)), Context::Memory::upload);
    slot.out = ctx_->make_buffer(uint64_t(out.bytes(f.out)), Context::Memory::readback);
    if (!formats_) {
      const GpuFormat both[2] = {gpu_format(f.in), gpu_format(f.out)};
      formats_ = &own(ctx_->make_buffer(sizeof both, Context::Memory::upload));
      std::memcpy(formats_->mapped, both, sizeof both);
    }
    const Shape input = input_desc().shape, net = output_desc().shape;
    UPRES_ASSERT(input.h == f.padded_height && input.w == f.padded_width && net.h >= f.out.height &&
                 net.w >= f.out.width && f.out.width == f.in.width * f.scale &&
                 f.out.height == f.in.height * f.scale);
    add_linear("planes_in", {}, {&slot.in, formats_, &blob(graph_.input_blob)},
               Push()
                   .i(input.h)
                   .i(input.w)
                   .i(f.border)
                   .i(f.border_mode == BorderMode::zero && f.border == 0)
                   .i(f.border_mode == BorderMode::reflect),
               int64_t(input.h) * input.w);
    const int per_word = f.out.depth > 8 ? 2 : 4;
    for (int chroma = 0; chroma < (f.out.rgb ? 1 : 2); ++chroma) {
      const int first = chroma, planes = f.out.rgb ? 3 : (chroma ? 2 : 1);
      const int64_t words =
          out.stride[f.out.plane[first]] / per_word * f.out.plane_height(f.out.plane[first]) * planes;
      add_linear("planes_out", {chroma}, {&slot.in, formats_, &blob(graph_.output_blob), &slot.out},
                 Push().i(net.h).i(net.w).i(f.scale).i(f.add_input).i(words), words);
    }
  }

  // Copies a frame's planes between host memory and a buffer of codes (PlaneLayout), row by row.
  static void copy_planes(const PlaneFormat& f, const Planes& planes, const Buffer& buffer, bool to_buffer) {
    const PlaneLayout layout(f);
    const int bytes = f.code_bytes();
    for (int k = 0; k < 3; ++k) {
      auto* base = static_cast<uint8_t*>(buffer.mapped) + layout.offset[k] * bytes;
      const size_t row = size_t(f.plane_width(k)) * size_t(bytes);
      for (int y = 0; y < f.plane_height(k); ++y) {
        uint8_t* staged = base + y * layout.stride[k] * bytes;
        uint8_t* frame = planes.data[k] + ptrdiff_t(y) * planes.linesize[k];
        if (to_buffer)
          std::memcpy(staged, frame, row);
        else
          std::memcpy(frame, staged, row);
      }
    }
  }

  Ticket start(Slot& slot) {
    check(vkResetFences(ctx_->device(), 1, &slot.fence), "resetting a fence");
    ctx_->submit(slot.commands, slot.fence);
    slot.pending = true;
    slot.run = ++runs_;
    // Two words fit std::function's own storage: no allocation per run. A ticket of an earlier
    // run is already done (a later submit on its slot finished it).
    Slot* s = &slot;
    const int64_t run = slot.run;
    return Ticket([s, run] {
      if (s->run == run) s->owner->finish(*s);
    });
  }

  void release() {
    VkDevice device = ctx_->device();
    for (Slot& slot : slots_) {
      if (slot.pending) vkWaitForFences(device, 1, &slot.fence, VK_TRUE, UINT64_MAX);
      slot.pending = false;
      if (slot.fence) vkDestroyFence(device, slot.fence, nullptr);
      slot.fence = VK_NULL_HANDLE;
    }
    if (command_pool_) vkDestroyCommandPool(device, command_pool_, nullptr);  // frees the command buffers
    if (descriptor_pool_) vkDestroyDescriptorPool(device, descriptor_pool_, nullptr);
    command_pool_ = VK_NULL_HANDLE;
    descriptor_pool_ = VK_NULL_HANDLE;
  }

  // Throws Error(limit_exceeded) when `bytes` of a `shape` tensor exceed one binding's range.
  void check_binding(Shape shape, int64_t bytes) const {
    if (bytes > ctx_->info().max_storage_range)
      throw Error(
          ErrorCode::limit_exceeded,
          fmt::format("a {} tensor needs {} MiB, more than the {} MiB one Vulkan buffer may cover on "
                      "{}; use a smaller --tile or --max-memory",
                      shape.str(), bytes >> 20, ctx_->info().max_storage_range >> 20, ctx_->info().name));
  }

  // Waits for the slot's run and copies its output out.
  void finish(Slot& slot) {
    if (!slot.pending) return;
    slot.pending = false;
    check(vkWaitForFences(ctx_->device(), 1, &slot.fence, VK_TRUE, UINT64_MAX), "running the model");
    if (takes_frames())
      copy_planes(frames_.out, slot.planes, slot.out, false);
    else
      std::memcpy(slot.output.data, slot.out.mapped, size_t(slot.output.shape.size()) * 4);
  }

  static void check(VkResult r, const char* what) { vulkan::check(r, what); }

  int64_t blob_bytes(int b) const { return shapes_[size_t(b)].size() * (f16_ ? 2 : 4); }

  // Gives each blob a pool buffer: the smallest free one that holds it, else a new one. A blob
  // is freed after its last reader; a node's outputs never share a buffer with its inputs.
  void plan_buffers() {
    const std::vector<int> last = graph_.last_uses();
    slot_.assign(shapes_.size(), -1);
    std::vector<int64_t> sizes;
    std::vector<bool> free;
    auto take = [&](int b) {
      const int64_t bytes = blob_bytes(b);
      check_binding(shapes_[size_t(b)], bytes);
      int best = -1;
      for (size_t s = 0; s < sizes.size(); ++s)
        if (free[s] && sizes[s] >= bytes && (best < 0 || sizes[s] < sizes[size_t(best)])) best = int(s);
      if (best < 0) {
        // Grow the largest free buffer rather than add one beside it.
        for (size_t s = 0; s < sizes.size(); ++s)
          if (free[s] && (best < 0 || sizes[s] > sizes[size_t(best)])) best = int(s);
        if (best < 0) {
          best = int(sizes.size());
          sizes.push_back(0);
          free.push_back(true);
        }
        sizes[size_t(best)] = bytes;
      }
      free[size_t(best)] = false;
      slot_[size_t(b)] = best;
    };
    take(graph_.input_blob);
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& node = graph_.nodes[i];
      for (int b : node.outputs) take(b);
      for (int b : node.inputs)
        if (last[size_t(b)] <= int(i) && b != graph_.output_blob && slot_[size_t(b)] >= 0)
          free[size_t(slot_[size_t(b)])] = true;
      for (int b : node.outputs)  // made but never read: free once the node has run
        if (last[size_t(b)] < 0 && b != graph_.output_blob) free[size_t(slot_[size_t(b)])] = true;
    }
    for (int64_t bytes : sizes) pool_.push_back(ctx_->make_buffer(uint64_t(bytes), Context::Memory::device));
  }

  const Buffer& blob(int b) const { return pool_[size_t(slot_[size_t(b)])]; }

  const Buffer& own(Buffer b) {
    owned_.push_back(std::make_unique<Buffer>(std::move(b)));
    return *owned_.back();
  }
  // Weights and tables: shared with every executor on the device that holds the same values
  // (the same graph at another tile shape, the gathering parts of a tiled squeeze-excitation
  // run, pooled upscalers of one model), so they are uploaded and held once.
  const Buffer& constant(const std::vector<float>& values) {
    shared_.push_back(ctx_->constant_buffer(values));
    return *shared_.back();
  }

  Dispatch make_dispatch(const char* shader, std::vector<int32_t> constants,
                         std::vector<const Buffer*> buffers, Push push, const uint32_t* groups) {
    const vulkan::Pipeline& p =
        ctx_->pipeline(shader, f16_, constants, uint32_t(buffers.size()), uint32_t(push.words.size() * 4));
    return {&p, std::move(buffers), std::move(push), {groups[0], groups[1], groups[2]}};
  }
  Dispatch make_linear(const char* shader, std::vector<int32_t> constants, std::vector<const Buffer*> buffers,
                       Push push, int64_t count) {
    uint32_t g[3];
    linear_groups(count, g);
    return make_dispatch(shader, std::move(constants), std::move(buffers), std::move(push), g);
  }
  void add(const char* shader, std::vector<int32_t> constants, std::vector<const Buffer*> buffers, Push push,
           const uint32_t* groups) {
    dispatches_.push_back(
        make_dispatch(shader, std::move(constants), std::move(buffers), std::move(push), groups));
  }
  void add_linear(const char* shader, std::vector<int32_t> constants, std::vector<const Buffer*> buffers,
                  Push push, int64_t count) {
    dispatches_.push_back(
        make_linear(shader, std::move(constants), std::move(buffers), std::move(push), count));
  }

  void convert(const char* shader, const Buffer& from, const Buffer& to, int64_t count) {
    dispatches_.push_back(make_convert(shader, from, to, count));
  }
  Dispatch make_convert(const char* shader, const Buffer& from, const Buffer& to, int64_t count) {
    return make_linear(shader, {}, {&from, &to}, Push().i(count), count);
  }

  void observe_blob(int b) {
    // Held by pointer: dispatches keep the buffer's address while more are added.
    observed_.emplace_back(b, std::make_unique<Buffer>(ctx_->make_buffer(
                                  uint64_t(shapes_[size_t(b)].size()) * 4, Context::Memory::readback)));
    convert("convert_out", blob(b), *observed_.back().second, shapes_[size_t(b)].size());
  }

  void record_node(const Node& node) {
    std::vector<Shape> in;
    for (int b : node.inputs) in.push_back(shapes_[size_t(b)]);
    const Shape out = shapes_[size_t(node.outputs[0])];
    const Buffer& y = blob(node.outputs[0]);
    auto x = [&](size_t k) -> const Buffer& { return blob(node.inputs[k]); };
    switch (node.type) {
      case OpType::convolution:
      case OpType::deconvolution: return record_conv(node, in, out);
      case OpType::prelu:
        return record_activation(node, {Activation::prelu}, &node.weights[0].values, in[0], y);
      case OpType::relu: {
        const float slope = node.p<ReluParams>().slope;
        return record_activation(node, {slope == 0 ? Activation::relu : Activation::leaky_relu, slope},
                                 nullptr, in[0], y);
      }
      case OpType::sigmoid: return record_activation(node, {Activation::sigmoid}, nullptr, in[0], y);
      case OpType::swish: return record_activation(node, {Activation::swish}, nullptr, in[0], y);
      case OpType::tanh: return record_activation(node, {Activation::tanh}, nullptr, in[0], y);
      case OpType::mish: return record_activation(node, {Activation::mish}, nullptr, in[0], y);
      case OpType::gelu: return record_activation(node, {Activation::gelu}, nullptr, in[0], y);
      case OpType::channel_norm: {
        const auto& p = node.p<ChannelNormParams>();
        const Buffer& params = p.affine ? constant(concatenated(node.weights)) : dummy_;
        const int64_t plane = int64_t(out.h) * out.w;
        return add_linear("channel_norm", {}, {&x(0), &params, &y},
                          Push().i(plane).i(out.c).i(p.affine).f(p.eps), plane);
      }
      case OpType::group_norm: {
        const auto& p = node.p<GroupNormParams>();
        const Buffer& params = p.affine ? constant(concatenated(node.weights)) : dummy_;
        return add_linear(
            "group_norm", {}, {&x(0), &x(1), &x(2), &params, &y},
            Push().i(out.size()).i(int64_t(out.h) * out.w).i(out.c).i(out.c / p.groups).i(p.affine).f(p.eps),
            out.size());
      }
      case OpType::pixel_unshuffle: {
        const auto& p = node.p<PixelShuffleParams>();
        return add_linear("pixel_unshuffle", {}, {&x(0), &y},
                          Push().i(in[0].c).i(out.h).i(out.w).i(p.factor).i(p.depth_column_row), out.size());
      }
      case OpType::pad: {
        const auto& p = node.p<PadParams>();
        return add_linear(
            "pad", {int(p.mode)}, {&x(0), &y},
            Push().i(out.c).i(in[0].h).i(in[0].w).i(out.h).i(out.w).i(p.top).i(p.left).f(p.value),
            out.size());
      }
      case OpType::clip: {
        const auto& p = node.p<ClipParams>();
        return record_activation(node, {Activation::clip, p.min, p.max}, nullptr, in[0], y);
      }
      case OpType::pixel_shuffle: {
        const auto& p = node.p<PixelShuffleParams>();
        return add_linear("pixel_shuffle", {}, {&x(0), &y},
                          Push().i(out.c).i(in[0].h).i(in[0].w).i(p.factor).i(p.depth_column_row),
                          out.size());
      }
      case OpType::interp: return record_interp(node, in[0], out);
      case OpType::binary_op: {
        const auto& p = node.p<BinaryOpParams>();
        const Shape b = p.with_scalar ? in[0] : in[1];
        return add_linear(
            "binary_op", {int(p.kind), p.with_scalar}, {&x(0), p.with_scalar ? &x(0) : &x(1), &y},
            Push().i(out.c).i(out.h).i(out.w).i(in[0].c).i(in[0].h).i(in[0].w).i(b.c).i(b.h).i(b.w).f(
                p.scalar),
            out.size());
      }
      case OpType::eltwise: {
        const auto& p = node.p<EltwiseParams>();
        auto coeff = [&](size_t k) { return p.coeffs.empty() ? 1.f : p.coeffs[k]; };
        for (size_t k = 1; k < node.inputs.size(); ++k)
          add_linear("eltwise", {int(p.kind)}, {k == 1 ? &x(0) : &y, &x(k), &y},
                     Push().i(out.size()).f(k == 1 ? coeff(0) : 1.f).f(coeff(k)), out.size());
        return;
      }
      case OpType::concat: {
        const int axis = node.p<ConcatParams>().axis;
        int offset = 0;
        for (size_t k = 0; k < in.size(); ++k) {
          int at[3] = {0, 0, 0};
          at[axis] = offset;
          copy_region(x(k), in[k], kOrigin, in[k], y, out, at);
          offset += axis == 0 ? in[k].c : (axis == 1 ? in[k].h : in[k].w);
        }
        return;
      }
      case OpType::crop: {
        const CropWindow w = resolve_crop(node, in);
        return copy_region(x(0), in[0], w.begin, w.shape, y, out, kOrigin);
      }
      case OpType::pooling: {
        const auto& p = node.p<PoolingParams>();
        if (p.global) {
          if (in[0].c > int(kMaxGroups)) op_error(node, "has more channels than one Vulkan dispatch covers");
          const uint32_t g[3] = {uint32_t(in[0].c), 1, 1};
          return add("global_pooling", {p.kind == PoolKind::max}, {&x(0), &y},
                     Push().i(int64_t(in[0].h) * in[0].w), g);
        }
        return add_linear("pooling", {p.kind == PoolKind::max, p.count_include_pad}, {&x(0), &y},
                          Push()
                              .i(out.c)
                              .i(in[0].h)
                              .i(in[0].w)
                              .i(out.h)
                              .i(out.w)
                              .i(p.kernel_h)
                              .i(p.kernel_w)
                              .i(p.stride_h)
                              .i(p.stride_w)
                              .i(p.pad_top)
                              .i(p.pad_left),
                          out.size());
      }
      case OpType::inner_product: {
        const auto& p = node.p<InnerProductParams>();
        const Buffer& w = constant(node.weights[0].values);
        const Buffer& bias = p.bias ? constant(node.weights[1].values) : dummy_;
        return add_linear(
            "inner_product", {activation_code(p.activation.type)}, {&x(0), &w, &bias, &y},
            Push().i(in[0].size()).i(p.out_features).i(p.bias).f(p.activation.alpha).f(p.activation.beta),
            p.out_features);
      }
      case OpType::scale: {
        const auto& p = node.p<ScaleParams>();
        std::vector<float> params;
        if (!p.from_input) params = node.weights[0].values;
        if (p.bias) {
          const std::vector<float>& b = node.weights[p.from_input ? 0 : 1].values;
          params.insert(params.end(), b.begin(), b.end());
        }
        const Buffer& pb = params.empty() ? dummy_ : constant(params);
        return add_linear("scale", {p.from_input}, {&x(0), p.from_input ? &x(1) : &dummy_, &pb, &y},
                          Push().i(out.size()).i(int64_t(out.h) * out.w).i(out.c).i(p.bias), out.size());
      }
      case OpType::window_attention: {
        const auto& p = node.p<WindowAttentionParams>();
        if (p.head_dim > 64) op_error(node, "has heads wider than the Vulkan kernel's 64 channels");
        const int64_t count =
            int64_t(out.h / p.window_h) * (out.w / p.window_w) * p.heads * p.window_h * p.window_w;
        return add_linear("window_attention", {},
                          {&x(0), &x(1), &x(2), &constant(node.weights[0].values), &y},
                          Push()
                              .i(count)
                              .i(out.h)
                              .i(out.w)
                              .i(p.heads)
                              .i(p.head_dim)
                              .i(p.window_h)
                              .i(p.window_w)
                              .i(p.shift_y)
                              .i(p.shift_x)
                              .i(p.q_channel)
                              .i(p.k_channel)
                              .i(p.v_channel)
                              .i(p.masked)
                              .f(p.scale)
                              .f(p.mask_value),
                          count);
      }
      case OpType::given: {
        const Buffer& values =
            own(ctx_->make_buffer(uint64_t(node.p<GivenParams>().channels) * 4, Context::Memory::upload));
        given_.emplace_back(&node, &values);
        return convert("convert_in", values, y, out.size());
      }
      case OpType::count: break;
    }
    op_error(node, "the Vulkan backend has no kernel for this layer");
  }

  void copy_region(const Buffer& from, Shape src, const int* src_begin, Shape box, const Buffer& to,
                   Shape dst, const int* dst_begin) {
    add_linear("copy_region", {}, {&from, &to},
               Push()
                   .i(box.c)
                   .i(box.h)
                   .i(box.w)
                   .i(src.h)
                   .i(src.w)
                   .i(src_begin[0])
                   .i(src_begin[1])
                   .i(src_begin[2])
                   .i(dst.h)
                   .i(dst.w)
                   .i(dst_begin[0])
                   .i(dst_begin[1])
                   .i(dst_begin[2]),
               box.size());
  }

  void record_activation(const Node& node, ActivationParams a, const std::vector<float>* slopes, Shape shape,
                         const Buffer& y) {
    const Buffer& s = slopes ? constant(*slopes) : dummy_;
    add_linear("activation", {activation_code(a.type)}, {&blob(node.inputs[0]), &s, &y},
               Push()
                   .i(shape.size())
                   .i(int64_t(shape.h) * shape.w)
                   .i(slopes ? int64_t(slopes->size()) : 1)
                   .f(a.alpha)
                   .f(a.beta),
               shape.size());
  }

  // A convolution's weights and epilogue in the layout every convolution kernel reads, and what
  // its dispatch needs besides the kernel's own geometry.
  struct ConvLayer {
    const Node* node;
    const Buffer* weights;
    const Buffer* params;
    int blocks;  // groups of four output channels, padded to a multiple of direct's OCB
    bool residual;
    std::vector<int32_t> constants;  // the specialisation constants all kernels share
    uint64_t values_hash;            // of the packed weights and epilogue parameters
    float largest_weight;            // |w|: float16 kernels need it finite in 16 bits
  };

  ConvLayer conv_layer(const Node& node, int ic) {
    const auto& p = node.p<ConvParams>();
    const int oc = p.out_channels, taps = p.kernel_h * p.kernel_w;
    const int ocb = node.type == OpType::deconvolution || oc <= 4 ? 1 : 2;  // direct's OCB
    const int blocks = ((oc + 3) / 4 + ocb - 1) / ocb * ocb;
    // Weights as [block][ic][kh][kw] of four output channels (zero beyond the last). A grouped
    // convolution becomes a dense one whose weights are zero outside each output's group: correct
    // on every shape, at the cost of the dense one's arithmetic.
    const std::vector<float>& w = node.weights[0].values;
    const int group_ic = ic / p.groups, group_oc = oc / p.groups;
    std::vector<float> packed(size_t(blocks) * ic * taps * 4, 0.f);
    for (int o = 0; o < oc; ++o)
      for (int gc = 0; gc < group_ic; ++gc) {
        const int c = o / group_oc * group_ic + gc;
        for (int t = 0; t < taps; ++t)
          packed[((size_t(o / 4) * ic + c) * taps + t) * 4 + size_t(o % 4)] =
              w[(size_t(o) * group_ic + gc) * taps + t];
      }
    std::vector<float> params(size_t(blocks) * 8, 0.f);  // bias, then PReLU slopes
    for (int o = 0; o < oc; ++o) {
      if (p.bias) params[size_t(o)] = node.weights[1].values[size_t(o)];
      if (p.activation.type == Activation::prelu)
        params[size_t(blocks * 4 + o)] = prelu_slope(node.weights[2], o);
    }
    float largest = 0;
    for (float v : packed) largest = std::max(largest, std::abs(v));
    return {&node,
            &constant(packed),
            &constant(params),
            blocks,
            node.inputs.size() == 2,
            {p.kernel_h, p.kernel_w, p.stride_h, p.stride_w, p.dilation_h, p.dilation_w,
             activation_code(p.activation.type), node.inputs.size() == 2},
            vulkan::hash_values(params, vulkan::hash_values(packed)),
            largest};
  }

  // The kernels that can run this layer on this device, direct first.
  std::vector<ConvKernel> usable_conv_kernels(const Node& node, const ConvLayer& layer, Shape out) const {
    const auto& p = node.p<ConvParams>();
    std::vector<ConvKernel> kernels{ConvKernel::direct};
    if (node.type == OpType::deconvolution) return kernels;
    const bool window = p.stride_h == 1 && p.stride_w == 1 && p.dilation_h == 1 && p.dilation_w == 1 &&
                        p.kernel_h <= 3 && p.kernel_w <= 3;
    if (window && (out.w + 7) / 8 <= int(kMaxGroups) && (out.h + 7) / 8 <= int(kMaxGroups))
      kernels.push_back(ConvKernel::tiled);
    // Weights rounded to float16 must stay finite (65504 at most).
    const bool coopmat_fits = window && f16_ && layer.largest_weight < 6e4f &&
                              (out.w + 15) / 16 <= int(kMaxGroups) && (out.h + 3) / 4 <= int(kMaxGroups);
    if (coopmat_fits && ctx_->info().coopmat_f16) kernels.push_back(ConvKernel::coopmat);
    // 21.4 KiB of shared memory, float16 in it.
    if (coopmat_fits && policy_.forced == ConvKernel::coopmat_emulated && ctx_->info().arithmetic_f16 &&
        ctx_->info().max_shared_bytes >= 22 * 1024)
      kernels.push_back(ConvKernel::coopmat_emulated);
    return kernels;
  }

  Dispatch conv_dispatch(const ConvLayer& layer, ConvKernel kernel, Shape in, Shape out, const Buffer& x,
                         const Buffer* residual, const Buffer& y) {
    const auto& p = layer.node->p<ConvParams>();
    const bool deconv = layer.node->type == OpType::deconvolution;
    std::vector<int32_t> constants = layer.constants;
    uint32_t g[3];
    if (deconv) {
      linear_groups(int64_t(out.h) * out.w, g);
      g[2] = uint32_t(layer.blocks);
    } else if (kernel == ConvKernel::direct) {
      // Register blocking of convolution.comp: PX pixels of a row times OCB groups of four output
      // channels per invocation (fewer where the layer is that narrow). 8 x 2 measured fastest on
      // lavapipe among 4..32 x 1..4 (docs/BENCHMARKS.md).
      const int px = std::min(8, out.w), ocb = p.out_channels <= 4 ? 1 : 2;
      linear_groups(int64_t(out.h) * ((out.w + px - 1) / px), g);
      g[2] = uint32_t(layer.blocks / ocb);
      constants.insert(constants.end(), {px, ocb});
    } else if (kernel == ConvKernel::tiled) {
      const int oct = std::min(16, layer.blocks);  // groups of four channels per workgroup
      g[0] = uint32_t((out.w + 7) / 8);
      g[1] = uint32_t((out.h + 7) / 8);
      g[2] = uint32_t((layer.blocks + oct - 1) / oct);
      constants.insert(constants.end(), {8, 1, oct});
    } else {  // coopmat (and emulated): 4 rows of 16 pixels by 64 output channels per workgroup
      g[0] = uint32_t((out.w + 15) / 16);
      g[1] = uint32_t((out.h + 3) / 4);
      g[2] = uint32_t((layer.blocks + 15) / 16);
    }
    return make_dispatch(deconv ? "deconvolution" : kConvShaders[int(kernel)], std::move(constants),
                         {&x, layer.weights, layer.params, residual ? residual : &dummy_, &y},
                         Push()
                             .i(in.c)
                             .i(in.h)
                             .i(in.w)
                             .i(p.out_channels)
                             .i(out.h)
                             .i(out.w)
                             .i(p.pad_top)
                             .i(p.pad_left)
                             .f(p.activation.alpha)
                             .f(p.activation.beta)
                             .f(p.residual_scale_self)
                             .f(p.residual_scale_other)
                             .i(layer.blocks),
                         g);
  }

  void record_conv(const Node& node, const std::vector<Shape>& in, Shape out) {
    const ConvLayer layer = conv_layer(node, in[0].c);
    const std::vector<ConvKernel> usable = usable_conv_kernels(node, layer, out);
    ConvKernel kernel = ConvKernel::direct;
    if (policy_.measure && usable.size() > 1)
      kernel = measured_conv_kernel(layer, usable, in[0], out);
    else if (std::find(usable.begin(), usable.end(), policy_.forced) != usable.end())
      kernel = policy_.forced;
    dispatches_.push_back(conv_dispatch(layer, kernel, in[0], out, blob(node.inputs[0]),
                                        layer.residual ? &blob(node.inputs[1]) : nullptr,
                                        blob(node.outputs[0])));
  }

  // The fastest of `usable` on this layer kind at this shape, timed on the device once per
  // process (Context remembers it), among the kernels that agree with direct on this very
  // layer's weights (also remembered, by their hash). A kernel that fails to build or run is
  // left out with a message: the layer then runs on the others.
  ConvKernel measured_conv_kernel(const ConvLayer& layer, const std::vector<ConvKernel>& usable, Shape in,
                                  Shape out) {
    const std::string key =
        fmt::format("conv {} {} {} {}", fmt::join(layer.constants, ","), in.str(), out.str(), f16_);
    int best = ctx_->remembered(key);
    if (best < 0) {
      double best_seconds = 0;
      const Buffer* residual = layer.residual ? &blob(layer.node->inputs[1]) : nullptr;
      for (ConvKernel k : usable) {
        if (k != ConvKernel::direct && !conv_kernel_verified(layer, k, in.c)) continue;
        const double seconds = guarded(k, [&] {
          return time_program({conv_dispatch(layer, k, in, out, blob(layer.node->inputs[0]), residual,
                                             blob(layer.node->outputs[0]))});
        });
        if (k == ConvKernel::direct || (seconds >= 0 && seconds < best_seconds)) {
          best = int(k);
          best_seconds = seconds;
        }
      }
      ctx_->remember(key, best);
    }
    // Measured on another layer of this kind: this one's weights may rule the kernel out, or
    // disagree with it.
    const ConvKernel chosen = ConvKernel(best);
    if (chosen == ConvKernel::direct || std::find(usable.begin(), usable.end(), chosen) == usable.end() ||
        !conv_kernel_verified(layer, chosen, in.c))
      return ConvKernel::direct;
    return chosen;
  }

  // Runs `step` for a kernel other than direct; a failure (a driver that cannot build or run
  // it) is reported and gives -1, so that the layer runs on another kernel.
  template <typename Step>
  double guarded(ConvKernel kernel, Step step) {
    if (kernel == ConvKernel::direct) return step();
    try {
      return step();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "upres: Vulkan: the %s convolution kernel failed on %s (%s); not using it.\n",
                   kConvKernelNames[int(kernel)], ctx_->info().name.c_str(), e.what());
      return -1;
    }
  }

  // conv_kernel_agrees, once per kernel and layer (its weights' hash) for the process.
  bool conv_kernel_verified(const ConvLayer& layer, ConvKernel kernel, int ic) {
    const std::string key = fmt::format("agrees {} {} {} {:x} {}", int(kernel),
                                        fmt::join(layer.constants, ","), ic, layer.values_hash, f16_);
    int known = ctx_->remembered(key);
    if (known < 0) {
      known = guarded(kernel, [&] { return conv_kernel_agrees(layer, kernel, ic) ? 1.0 : 0.0; }) > 0 ? 1 : 0;
      ctx_->remember(key, known);
    }
    return known == 1;
  }

  // Runs the layer through `kernel` and through direct on a random 19 x 21 input (two and a bit
  // tiles each way, so edges and partial tiles are covered) and compares: within 1e-3 of the
  // largest output in f32 (summation order), 2e-2 in f16 (coopmat also rounds the weights).
  bool conv_kernel_agrees(const ConvLayer& layer, ConvKernel kernel, int ic) {
    const Shape in{ic, 19, 21};
    const Shape out = op_def(layer.node->type).infer_shapes(*layer.node, {in})[0];
    const int64_t in_count = in.size(), out_count = out.size();
    std::mt19937 random(7);
    std::uniform_real_distribution<float> value(-1.f, 1.f);
    auto host = [&](int64_t count, bool fill) {
      Buffer b =
          ctx_->make_buffer(uint64_t(count) * 4, fill ? Context::Memory::upload : Context::Memory::readback);
      if (fill)
        for (int64_t i = 0; i < count; ++i) static_cast<float*>(b.mapped)[i] = value(random);
      return b;
    };
    auto device = [&](int64_t count) {
      return ctx_->make_buffer(uint64_t(count) * (f16_ ? 2 : 4), Context::Memory::device);
    };
    const Buffer x_host = host(in_count, true), r_host = host(out_count, true);
    const Buffer x = device(in_count), r = device(out_count), y_direct = device(out_count),
                 y = device(out_count);
    const Buffer out_direct = host(out_count, false), out_kernel = host(out_count, false);
    const Buffer* residual = layer.residual ? &r : nullptr;
    time_program(
        {make_convert("convert_in", x_host, x, in_count), make_convert("convert_in", r_host, r, out_count),
         conv_dispatch(layer, ConvKernel::direct, in, out, x, residual, y_direct),
         conv_dispatch(layer, kernel, in, out, x, residual, y),
         make_convert("convert_out", y_direct, out_direct, out_count),
         make_convert("convert_out", y, out_kernel, out_count)},
        1);
    const auto* want = static_cast<const float*>(out_direct.mapped);
    const auto* got = static_cast<const float*>(out_kernel.mapped);
    double scale = 1, error = 0;
    for (int64_t i = 0; i < out_count; ++i) scale = std::max(scale, double(std::abs(want[i])));
    for (int64_t i = 0; i < out_count; ++i) {
      const double e = std::abs(double(got[i]) - want[i]);
      error = std::isnan(e) ? INFINITY : std::max(error, e);
    }
    if (error <= (f16_ ? 2e-2 : 1e-3) * scale) return true;
    std::fprintf(stderr,
                 "upres: Vulkan: the %s convolution kernel differs from the direct one by %g on %s (layer "
                 "'%s'); not using it. Please report this with `upres devices`.\n",
                 kConvKernelNames[int(kernel)], error / scale, ctx_->info().name.c_str(),
                 layer.node->name.c_str());
    return false;
  }

  // Records `program` into a command buffer of its own, runs it `runs` times one after another
  // and returns the shortest run in seconds, after one run to warm up when runs > 1. The device's
  // timestamps time it where the queue writes them: the work of other executors on the queue and
  // the submission's own latency are then not counted. Elsewhere, submission to fence.
  double time_program(const std::vector<Dispatch>& program, int runs = 3) {
    const std::vector<std::vector<Dispatch>> programs{program};
    VkDevice device = ctx_->device();
    VkDescriptorPool descriptors = make_descriptor_pool(programs);
    VkCommandPool pool = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    VkQueryPool timestamps = VK_NULL_HANDLE;
    auto release = [&] {
      if (timestamps) vkDestroyQueryPool(device, timestamps, nullptr);
      if (fence) vkDestroyFence(device, fence, nullptr);
      if (pool) vkDestroyCommandPool(device, pool, nullptr);
      vkDestroyDescriptorPool(device, descriptors, nullptr);
    };
    try {
      const uint32_t bits = ctx_->timestamp_bits();
      if (bits > 0) {
        VkQueryPoolCreateInfo info{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        info.queryType = VK_QUERY_TYPE_TIMESTAMP;
        info.queryCount = 2;
        check(vkCreateQueryPool(device, &info, nullptr, &timestamps), "creating a timestamp query pool");
      }
      VkCommandBuffer commands = make_command_buffer(pool, fence);
      record(commands, program, descriptors, timestamps);
      double best = INFINITY;
      for (int run = 0; run < (runs > 1 ? runs + 1 : 1); ++run) {
        check(vkResetFences(device, 1, &fence), "resetting a fence");
        const auto start = std::chrono::steady_clock::now();
        ctx_->submit(commands, fence);
        check(vkWaitForFences(device, 1, &fence, VK_TRUE, UINT64_MAX), "timing a kernel");
        double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        uint64_t ticks[2];
        if (timestamps && vkGetQueryPoolResults(device, timestamps, 0, 2, sizeof ticks, ticks,
                                                sizeof ticks[0], VK_QUERY_RESULT_64_BIT) == VK_SUCCESS) {
          const uint64_t mask = bits >= 64 ? ~uint64_t(0) : (uint64_t(1) << bits) - 1;
          seconds = double((ticks[1] - ticks[0]) & mask) * ctx_->info().timestamp_period * 1e-9;
        }
        if (run > 0 || runs == 1) best = std::min(best, seconds);
      }
      release();
      return best;
    } catch (...) {
      release();
      throw;
    }
  }

  void record_interp(const Node& node, Shape in, Shape out) {
    const auto& p = node.p<InterpParams>();
    // Rows' taps, then columns': {index[4], weight[4]} each, unused taps weighing zero.
    std::vector<float> table;
    for (bool vertical : {true, false})
      for (const InterpTaps& t :
           interp_axis_taps(p, vertical ? in.h : in.w, vertical ? out.h : out.w, vertical)) {
        float words[8] = {};
        for (int k = 0; k < t.count; ++k) {
          int32_t index = t.index[k];
          std::memcpy(&words[k], &index, 4);
          words[4 + k] = float(t.weight[k]);
        }
        table.insert(table.end(), words, words + 8);
      }
    add_linear("interp", {}, {&blob(node.inputs[0]), &constant(table), &blob(node.outputs[0])},
               Push().i(out.c).i(in.h).i(in.w).i(out.h).i(out.w), out.size());
  }

  // A descriptor pool with room for every dispatch of `programs`.
  VkDescriptorPool make_descriptor_pool(const std::vector<std::vector<Dispatch>>& programs) {
    uint32_t descriptors = 0, sets = 0;
    for (const auto& program : programs)
      for (const Dispatch& d : program) {
        descriptors += uint32_t(d.buffers.size());
        ++sets;
      }
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max(descriptors, 1u)};
    VkDescriptorPoolCreateInfo info{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    info.maxSets = std::max(sets, 1u);
    info.poolSizeCount = 1;
    info.pPoolSizes = &size;
    VkDescriptorPool pool;
    check(vkCreateDescriptorPool(ctx_->device(), &info, nullptr, &pool), "creating a descriptor pool");
    return pool;
  }

  // A command buffer from `pool` (made first when null) and an unsignalled fence for it.
  VkCommandBuffer make_command_buffer(VkCommandPool& pool, VkFence& fence) {
    if (!pool) {
      // Each executor has its own: command pools may be used by one thread at a time, and
      // executors on one device are compiled and destroyed on different threads (a service's jobs).
      VkCommandPoolCreateInfo info{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
      info.queueFamilyIndex = ctx_->queue_family();
      check(vkCreateCommandPool(ctx_->device(), &info, nullptr, &pool), "creating a command pool");
    }
    VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    alloc.commandPool = pool;
    alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    alloc.commandBufferCount = 1;
    VkCommandBuffer commands;
    check(vkAllocateCommandBuffers(ctx_->device(), &alloc, &commands), "allocating a command buffer");
    VkFenceCreateInfo fence_info{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    check(vkCreateFence(ctx_->device(), &fence_info, nullptr, &fence), "creating a fence");
    return commands;
  }

  // Descriptor sets for every dispatch, then each slot's command buffer that runs its program.
  void build_command_buffers(const std::vector<std::vector<Dispatch>>& programs) {
    descriptor_pool_ = make_descriptor_pool(programs);
    for (size_t k = 0; k < slots_.size(); ++k) {
      Slot& slot = slots_[k];
      slot.commands = make_command_buffer(command_pool_, slot.fence);
      record(slot.commands, programs[k], descriptor_pool_);
    }
  }

  // `timestamps` (two queries), when given, are written after the work submitted before and after
  // the program's last dispatch.
  void record(VkCommandBuffer commands, const std::vector<Dispatch>& program, VkDescriptorPool descriptors,
              VkQueryPool timestamps = VK_NULL_HANDLE) {
    VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    check(vkBeginCommandBuffer(commands, &begin), "recording commands");
    if (timestamps) vkCmdResetQueryPool(commands, timestamps, 0, 2);
    VkMemoryBarrier between{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    between.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT;
    between.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
    // First, wait for the work submitted before (the other slot's run uses the same activations).
    vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         0, 1, &between, 0, nullptr, 0, nullptr);
    if (timestamps) vkCmdWriteTimestamp(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, timestamps, 0);
    for (const Dispatch& d : program) {
      VkDescriptorSetAllocateInfo set_info{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
      set_info.descriptorPool = descriptors;
      set_info.descriptorSetCount = 1;
      set_info.pSetLayouts = &d.pipeline->set_layout;
      VkDescriptorSet set;
      check(vkAllocateDescriptorSets(ctx_->device(), &set_info, &set), "allocating a descriptor set");
      std::vector<VkDescriptorBufferInfo> infos(d.buffers.size());
      std::vector<VkWriteDescriptorSet> writes(d.buffers.size());
      for (size_t k = 0; k < d.buffers.size(); ++k) {
        infos[k] = {d.buffers[k]->handle, 0,
                    std::min<VkDeviceSize>(d.buffers[k]->bytes, ctx_->info().max_storage_range)};
        writes[k] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        writes[k].dstSet = set;
        writes[k].dstBinding = uint32_t(k);
        writes[k].descriptorCount = 1;
        writes[k].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[k].pBufferInfo = &infos[k];
      }
      vkUpdateDescriptorSets(ctx_->device(), uint32_t(writes.size()), writes.data(), 0, nullptr);
      vkCmdBindPipeline(commands, VK_PIPELINE_BIND_POINT_COMPUTE, d.pipeline->pipeline);
      vkCmdBindDescriptorSets(commands, VK_PIPELINE_BIND_POINT_COMPUTE, d.pipeline->layout, 0, 1, &set, 0,
                              nullptr);
      if (!d.push.words.empty())
        vkCmdPushConstants(commands, d.pipeline->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                           uint32_t(d.push.words.size() * 4), d.push.words.data());
      vkCmdDispatch(commands, d.groups[0], d.groups[1], d.groups[2]);
      vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &between, 0, nullptr, 0, nullptr);
    }
    if (timestamps) vkCmdWriteTimestamp(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, timestamps, 1);
    VkMemoryBarrier to_host{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    to_host.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
    to_host.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                         &to_host, 0, nullptr, 0, nullptr);
    check(vkEndCommandBuffer(commands), "recording commands");
  }

  std::shared_ptr<Context> ctx_;
  bool f16_;
  ConvPolicy policy_;
  const Graph& graph_;
  std::vector<Shape> shapes_;
  std::vector<int> slot_;                              // blob -> pool_ index
  std::vector<Buffer> pool_;                           // activations
  std::vector<std::unique_ptr<Buffer>> owned_;         // given values, frame formats
  std::vector<std::shared_ptr<const Buffer>> shared_;  // weights, taps
  Buffer dummy_;                                       // bound where a shader's optional input is absent
  std::vector<Slot> slots_;
  FrameSpec frames_;                 // the frames it takes (in.width 0: tensors)
  const Buffer* formats_ = nullptr;  // frame.glsl's Format[2]
  std::vector<std::pair<const Node*, const Buffer*>> given_;
  std::vector<std::pair<int, std::unique_ptr<Buffer>>> observed_;
  std::vector<Dispatch> dispatches_;  // while compiling
  VkDescriptorPool descriptor_pool_ = VK_NULL_HANDLE;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  int64_t runs_ = 0;  // submissions so far
};

DeviceInfo describe(const vulkan::PhysicalDevice& d) {
  DeviceInfo info;
  info.backend = "vulkan";
  info.index = d.index;
  info.name = d.name;
  info.kind = d.software ? DeviceKind::software_gpu : DeviceKind::gpu;
  info.memory_bytes = d.memory_bytes;
  info.fast_f16 = d.storage_f16 && d.arithmetic_f16;
  info.subgroup_size = int(d.subgroup_size);
  info.cooperative_matrix = d.cooperative_matrix;
  return info;
}

class VulkanBackend final : public Backend {
 public:
  explicit VulkanBackend(const BackendConfig& config)
      : ctx_(Context::get(config.device)),
        f16_(config.precision == Precision::f16),
        policy_(conv_policy(ctx_->info())) {
    if (f16_ && !ctx_->info().storage_f16)
      throw Error(ErrorCode::unsupported,
                  fmt::format("{} cannot store 16-bit floats; use --precision f32", ctx_->info().name));
  }
  const char* name() const override { return "vulkan"; }
  DeviceInfo device() const override { return describe(ctx_->info()); }
  bool supports(const Node& node, Precision precision) const override {
    const bool precision_ok =
        precision == Precision::f32 || (precision == Precision::f16 && ctx_->info().storage_f16);
    return precision_ok && node.type != OpType::count;
  }
  // Bytes as the runtime counts them (float32): f16 storage holds twice as many values.
  int64_t memory_budget() const override { return ctx_->memory_budget() * (f16_ ? 2 : 1); }
  // One blob is one binding, which may cover at most maxStorageBufferRange bytes; so may the
  // float32 copies of the input and output tiles (hence no factor 2 for f16).
  int64_t max_tensor_bytes() const override { return ctx_->info().max_storage_range; }
  std::unique_ptr<Executor> compile(const Graph& graph, Shape input,
                                    const std::vector<int>& observed) override {
    return std::make_unique<VulkanExecutor>(ctx_, f16_, policy_, graph, input, observed);
  }
  // Whole frames convert on the device: only 8- to 16-bit planes cross to and from the host.
  std::unique_ptr<FrameExecutor> compile_frames(const Graph& graph, const FrameSpec& spec) override {
    return std::make_unique<VulkanExecutor>(ctx_, f16_, policy_, graph,
                                            Shape{3, spec.padded_height, spec.padded_width},
                                            std::vector<int>{}, &spec);
  }
  std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const override {
    auto g = std::make_unique<Graph>(graph);
    fuse_conv_epilogues(*g, probe);
    return g;
  }

 private:
  std::shared_ptr<Context> ctx_;
  bool f16_;
  ConvPolicy policy_;
};

}  // namespace

BackendEntry vulkan_backend_entry() {
  return {"vulkan", "compute shaders on a GPU through Vulkan (or Mesa's lavapipe on the CPU)",
          [](const BackendConfig& c) { return std::make_unique<VulkanBackend>(c); },
          [] {
            std::vector<DeviceInfo> devices;
            for (const vulkan::PhysicalDevice& d : vulkan::physical_devices()) devices.push_back(describe(d));
            return devices;
          }};
}

}  // namespace upres
