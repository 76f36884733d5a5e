// Runs a model over an image: pad the frame as the model expects, cut it into windows (one
// window when the whole frame fits the memory budget), run each window through a compiled
// executor, and paste the window cores into the output.
//
// Windows all have one shape, so one executor (one set of primitives and buffers) serves every
// tile. A core's output is exact when its window holds `overlap` pixels of real context on each
// side that is not a frame edge, overlap >= the receptive radius, and the window starts on the
// model's alignment grid (so strided layers sample the same phase as a full-frame run).
#include "upres/upscaler.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "backend/backend.hpp"
#include "core/check_range.hpp"
#include "image/resizer.hpp"
#include "model/passes.hpp"
#include "ops/op.hpp"
#include "runtime/border_index.hpp"
#include "runtime/frame_path.hpp"
#include "upres/error.hpp"
#include "upres/int8.hpp"

namespace upres {
namespace {

// Deep networks (RRDB) have receptive radii of hundreds of pixels whose outer reach hardly
// matters; past this many pixels of context we accept a tiny tile-edge difference.
constexpr int kMaxAutoOverlap = 48;

int align_down(int v, int a) {
  return v >= 0 ? v / a * a : -((-v + a - 1) / a) * a;
}

// One axis of the tiling: the window length and, per core, where its window starts.
struct AxisPlan {
  int window = 0;  // input pixels per window (without the model border)
  std::vector<int> core_begin, core_end, window_begin;
};

}  // namespace

// Where the windows go for one input size: kept between calls, so a stream of same-sized frames
// plans once.
struct TilePlan {
  int width = -1, height = -1;
  int tile = 0;
  AxisPlan x, y;
};

struct Upscaler::Impl {
  // First, so that it outlives every buffer it allocated and every executor it compiled.
  std::unique_ptr<Backend> backend;
  // Buffers reused from call to call: a video's frames allocate nothing after the first.
  TilePlan plan;
  DeviceBuffer window, result;  // the backend's: host memory for host backends
  // A second pair for tiled frames: one tile is filled and the one before stitched while the
  // backend runs the other (a device backend overlaps them; a host backend finishes in submit).
  DeviceBuffer next_window, next_result;
  DeviceBuffer pooling_input;  // while gathering frame-wide means
  Image native, scaled;        // the model-scale RGB, and the resampled RGB when alpha is added after
  Resizer resizer, alpha_resizer;
  Image alpha, big_alpha;
  // The self-ensemble's turned input, its result, that turned back, and their sum.
  Image tta_turned, tta_result, tta_back, tta_sum;
  Resizer tta_resizer;  // the sum to an exact output size

  std::unique_ptr<Graph> graph;  // the backend's prepared graph
  Shape probe;                   // an input shape the graph accepts
  // Frame-wide averages (squeeze-excitation) in a tiled run: the graph with its global average
  // poolings replaced by values handed in, and those values, gathered from all tiles first.
  std::vector<int> pooling_nodes;               // global average poolings, in order
  std::vector<std::vector<float>> frame_means;  // their frame-wide means, during a tiled run
  std::unique_ptr<Graph> tiled_graph;
  // Executors by window shape and graph (false: the prepared graph, true: tiled_graph).
  std::map<std::tuple<int, int, bool>, std::unique_ptr<Executor>> executors;
  // The parts that gather frame-wide means: per pooling, the graph up to its input, and their
  // executors by window shape and pooling, kept while everything fits the memory budget.
  std::vector<std::unique_ptr<Graph>> part_graphs;
  std::map<std::tuple<int, int, size_t>, std::unique_ptr<Executor>> part_executors;
  int64_t bytes_per_pixel = 0;  // activation memory per padded input pixel
  int64_t memory_budget = 0;    // the user's, within what the backend can hold

  void gather_frame_means(const ModelGeometry& geo, const std::function<void(size_t, size_t)>& fill_window,
                          int frame_h, int frame_w);

  const Graph& graph_for(bool tiled_means) {
    if (!tiled_means) return *graph;
    if (!tiled_graph)
      tiled_graph =
          std::make_unique<Graph>(graph_with_given_poolings(*graph, pooling_nodes, frame_means, probe));
    return *tiled_graph;
  }

  Executor& executor(int h, int w, bool tiled_means) {
    auto& e = executors[{h, w, tiled_means}];
    if (!e) {
      if (executors.size() > 4) {  // frames of many sizes: keep memory bounded
        executors.clear();
        part_executors.clear();
        return executor(h, w, tiled_means);
      }
      e = backend->compile(graph_for(tiled_means), {3, h, w});
    }
    return *e;
  }

  // A buffer of `shape` in `buffer`, reallocated only when the shape changes.
  void ensure(DeviceBuffer& buffer, Shape shape) {
    if (buffer.empty() || buffer.desc().shape != shape) buffer = backend->allocate({shape});
  }
};

void check_upscale_options(const UpscaleOptions& o) {
  check_backend_name(o.backend);
  check_range("scale", o.scale, 0, kMaxScale, " (0: the model's own)");
  if ((o.output_width == 0) != (o.output_height == 0))
    throw Error(ErrorCode::invalid_argument, "an output size needs both its width and its height");
  if (o.output_width != 0) {
    check_range("output width", o.output_width, 1, kMaxImageSide);
    check_range("output height", o.output_height, 1, kMaxImageSide);
  }
  check_range("threads", o.threads, 0, kMaxThreads, " (0: all cores)");
  check_range("device", o.device, 0, 255, " (`upres devices` lists them)");
  if (o.tile != 0) check_range("tile", o.tile, 16, kMaxImageSide, " (or 0: automatic)");
  check_range("tile overlap", o.tile_overlap, -1, kMaxTileOverlap, " (-1: the model's receptive radius)");
  if (o.max_memory < kMinMemoryBudget || o.max_memory > kMaxMemoryBudget)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("max memory {} bytes is outside 1M..16T (a size like 512M or 4G)", o.max_memory));
  check_range("max size", o.max_output_side, 16, kMaxImageSide, " pixels a side");
}

Upscaler::Upscaler(std::shared_ptr<const Model> model, const UpscaleOptions& options)
    : model_(std::move(model)), options_(options), impl_(std::make_unique<Impl>()) {
  check_upscale_options(options_);
  std::shared_ptr<const Int8Calibration> int8 =
      options_.int8_table ? options_.int8_table : model_->int8_calibration();
  precision_ = options_.precision;
  if (precision_ == Precision::int8 && !int8)
    throw Error(
        ErrorCode::unsupported,
        fmt::format("{} cannot run in int8: {}. Make a table with `upres models calibrate {} --images "
                    "FOLDER`, or use --precision f32",
                    model_->name(), model_->int8_calibration_note(), model_->name()));
  options_.backend = resolve_backend_name(options_.backend);
  if (precision_ == Precision::automatic) {
    // int8 where the table is faithful enough and the device runs it fast, else f16 where the
    // device stores and computes 16-bit floats fast, else f32.
    DeviceInfo device;
    for (const DeviceInfo& d : find_backend(options_.backend).devices())
      if (d.index == options_.device) device = d;
    if (int8 && device.fast_int8 && int8->fidelity_db >= kAutoInt8MinFidelity)
      precision_ = Precision::int8;
    else
      precision_ = device.fast_f16 ? Precision::f16 : Precision::f32;
  }
  if (precision_ != Precision::int8) int8 = nullptr;
  impl_->backend = make_backend(options_.backend, {options_.threads, options_.device, precision_, int8});
  const ModelGeometry& geo = model_->geometry();
  int probe = 64 * geo.alignment + geo.alignment_remainder;
  while ((probe - geo.alignment_remainder) % geo.alignment) ++probe;
  impl_->probe = {3, probe, probe};
  impl_->graph = impl_->backend->prepare(model_->graph(), impl_->probe);
  // A graph the backend cannot run entirely is refused here, before any work.
  for (const Node& node : impl_->graph->nodes) {
    if (!impl_->backend->supports(node, precision_) && impl_->backend->supports(node, Precision::f32))
      throw Error(ErrorCode::unsupported, fmt::format("the {} backend does not run {}; use --precision f32",
                                                      impl_->backend->name(), precision_name(precision_)));
    if (!impl_->backend->supports(node, precision_))
      throw Error(ErrorCode::unsupported,
                  fmt::format("the {} backend cannot run layer '{}' ({}) of {} at {}; use --backend cpu",
                              impl_->backend->name(), node.name, op_def(node.type).name, model_->name(),
                              precision_name(precision_)));
  }
  for (size_t i = 0; i < impl_->graph->nodes.size(); ++i)
    if (is_global_average_pooling(impl_->graph->nodes[i])) impl_->pooling_nodes.push_back(int(i));
  impl_->frame_means.resize(impl_->pooling_nodes.size());
  // Blocked layouts and reorder scratch cost more than the plain estimate.
  impl_->bytes_per_pixel =
      estimate_activation_bytes(*impl_->graph, impl_->probe) * 3 / 2 / (int64_t(probe) * probe);
  impl_->memory_budget = std::min(options_.max_memory, impl_->backend->memory_budget());
  // A backend may also cap each tensor (a GPU binding's range): the frame's largest blob must fit
  // within it, which, in the per-pixel terms of the budget, caps the budget too.
  int64_t largest_blob = 0;
  for (const Shape& s : impl_->graph->infer_shapes(impl_->probe))
    largest_blob = std::max(largest_blob, s.size());
  const double largest_per_pixel = double(largest_blob) * sizeof(float) / (double(probe) * probe);
  const double tensor_cap = double(impl_->backend->max_tensor_bytes()) / largest_per_pixel;
  if (tensor_cap < double(kMaxImageSide) * kMaxImageSide)  // in padded input pixels
    impl_->memory_budget =
        std::min(impl_->memory_budget, int64_t(tensor_cap * 0.95) * impl_->bytes_per_pixel);
}

Upscaler::~Upscaler() = default;

// Frame-wide means for a tiled run: for each global average pooling in turn, every window runs up
// to it (with the means found so far), each adds up its share of the pooling's input, and the
// sums become that pooling's mean over the whole frame. The windows' shares partition the full
// frame's feature map: it is cut where the tile cores' edges fall on it, the first and last
// tiles also taking the padding beyond the image, which the last window reaches (plan_axis).
// Costs one partial pass per pooling; the result equals the full-frame run's.
void Upscaler::Impl::gather_frame_means(const ModelGeometry& geo,
                                        const std::function<void(size_t, size_t)>& fill_window, int frame_h,
                                        int frame_w) {
  const Graph& g = graph_for(true);
  const Shape window_shape = window.desc().shape;
  const Shape frame = {3, frame_h, frame_w}, bigger = {3, frame_h + geo.alignment, frame_w + geo.alignment};
  const std::vector<Shape> frame_shapes = g.infer_shapes(frame), bigger_shapes = g.infer_shapes(bigger),
                           window_shapes = g.infer_shapes(window_shape);
  for (size_t k = 0; k < pooling_nodes.size(); ++k) {
    const int node = pooling_nodes[k];
    const int blob = g.nodes[size_t(node)].inputs[0];
    const Shape fs = frame_shapes[size_t(blob)], ws = window_shapes[size_t(blob)];
    // One axis of the feature map: feature pixels per padded input pixel, the feature pixels
    // trimmed from each side, and where tile t's share begins and ends.
    struct Axis {
      double density, trimmed;
      int frame_size;
    };
    auto axis = [&](int frame_len, int frame_feat, int bigger_feat) {
      const double d = double(bigger_feat - frame_feat) / geo.alignment;
      return Axis{d, (d * frame_len - frame_feat) / 2, frame_feat};
    };
    const Axis fy = axis(frame_h, fs.h, bigger_shapes[size_t(blob)].h);
    const Axis fx = axis(frame_w, fs.w, bigger_shapes[size_t(blob)].w);
    auto share = [&](const Axis& a, const AxisPlan& ap, size_t t, int& lo, int& hi, int& offset) {
      auto cut = [&](int core_edge) {
        return std::clamp(int(std::ceil(a.density * (core_edge + geo.border) - a.trimmed - 1e-6)), 0,
                          a.frame_size);
      };
      lo = t == 0 ? 0 : cut(ap.core_begin[t]);
      hi = t + 1 == ap.core_begin.size() ? a.frame_size : cut(ap.core_begin[t + 1]);
      const double o = a.density * ap.window_begin[t];
      offset = int(std::lround(o));
      UPRES_ASSERT(std::abs(o - offset) < 1e-6);  // windows start on the model's alignment grid
    };
    // The graph up to the pooling's input, the earlier poolings' means handed in. Its executor
    // is kept for the next frame only while all executors together fit the memory budget (a
    // frame tiled because it does not fit compiles it again each time).
    if (part_graphs.size() != pooling_nodes.size()) part_graphs.resize(pooling_nodes.size());
    if (!part_graphs[k]) part_graphs[k] = std::make_unique<Graph>(graph_until(g, blob));
    const auto key = std::make_tuple(window_shape.h, window_shape.w, k);
    std::unique_ptr<Executor> owned;
    Executor* exec = nullptr;
    if (auto it = part_executors.find(key); it != part_executors.end()) {
      exec = it->second.get();
    } else {
      owned = backend->compile(*part_graphs[k], window_shape);
      exec = owned.get();
    }
    ensure(pooling_input, exec->output_shape());
    std::vector<double> sums(size_t(fs.c), 0.0);
    for (size_t ty = 0; ty < plan.y.core_begin.size(); ++ty)
      for (size_t tx = 0; tx < plan.x.core_begin.size(); ++tx) {
        int y0, y1, oy, x0, x1, ox;
        share(fy, plan.y, ty, y0, y1, oy);
        share(fx, plan.x, tx, x0, x1, ox);
        UPRES_ASSERT(y0 - oy >= 0 && y1 - oy <= ws.h && x0 - ox >= 0 && x1 - ox <= ws.w);
        fill_window(ty, tx);
        const TensorView v = pooling_input.view();
        exec->run(window.view(), v);
        for (int c = 0; c < v.shape.c; ++c) {
          double sum = 0;
          for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) sum += v.at(c, y - oy, x - ox);
          sums[size_t(c)] += sum;
        }
      }
    std::vector<float>& means = frame_means[k];
    means.resize(sums.size());
    for (size_t c = 0; c < sums.size(); ++c) means[c] = float(sums[c] / (double(fs.h) * fs.w));
    if (owned) {
      int64_t held = owned->memory_bytes();
      for (const auto& [shape, e] : executors) held += e ? e->memory_bytes() : 0;
      for (const auto& [shape, e] : part_executors) held += e->memory_bytes();
      if (held <= memory_budget) part_executors[key] = std::move(owned);
    }
  }
}

// The graph's input length for `len` frame pixels: the border on both sides, then up to the
// model's alignment grid.
static int padded_length(const ModelGeometry& geo, int len) {
  int n = len + 2 * geo.border;
  while ((n - geo.alignment_remainder) % geo.alignment) ++n;
  return n;
}

std::unique_ptr<FramePath> FramePath::make(Upscaler& upscaler, const PlaneFormat& in,
                                           const PlaneFormat& out) {
  Upscaler::Impl& impl = *upscaler.impl_;
  const ModelGeometry& geo = upscaler.model().geometry();
  if (upscaler.options_.tta || upscaler.output_scale() != geo.scale || out.width != in.width * geo.scale ||
      out.height != in.height * geo.scale)
    return nullptr;
  if (upscaler.options_.tile != 0 && upscaler.options_.tile < std::max(in.width, in.height)) return nullptr;
  FrameSpec spec;
  spec.in = in;
  spec.out = out;
  spec.scale = geo.scale;
  spec.border = geo.border;
  spec.padded_width = padded_length(geo, in.width);
  spec.padded_height = padded_length(geo, in.height);
  spec.border_mode = upscaler.model().border_mode();
  spec.add_input = upscaler.model().output_adds_input();
  // The whole frame must fit as the tensor path would judge it, its largest blob included
  // (the budget is capped by the backend's largest tensor).
  if (int64_t(spec.padded_width) * spec.padded_height * impl.bytes_per_pixel > impl.memory_budget)
    return nullptr;
  // Executors of the float path hold memory this path does not need.
  impl.executors.clear();
  impl.part_executors.clear();
  std::unique_ptr<FrameExecutor> executor;
  try {
    executor = impl.backend->compile_frames(*impl.graph, spec);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::limit_exceeded) throw;
    return nullptr;  // a plane buffer over one binding's range: the float path tiles instead
  }
  return executor ? std::unique_ptr<FramePath>(new FramePath(std::move(executor))) : nullptr;
}

int Upscaler::output_scale() const {
  return options_.scale > 0 ? options_.scale : model_->geometry().scale;
}

std::pair<int64_t, int64_t> Upscaler::output_size(int64_t width, int64_t height) const {
  if (options_.output_width > 0) return {options_.output_width, options_.output_height};
  return {width * output_scale(), height * output_scale()};
}

void Upscaler::check_input_size(int64_t width, int64_t height) const {
  const auto [out_w, out_h] = output_size(width, height);
  if (out_w > options_.max_output_side || out_h > options_.max_output_side)
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("output would be {}x{}, over the cap of {} pixels a side; use a smaller "
                            "scale, crop or shrink the input, or raise the cap (--max-size)",
                            out_w, out_h, options_.max_output_side));
}

Image Upscaler::upscale(const Image& input) {
  Image out;
  upscale_into(input, out);
  return out;
}

namespace {

// One of the eight flips and quarter turns of a picture (bit 2: transpose first, bit 0: then
// mirror left-right, bit 1: then upside down), or with `back`, that one undone.
void dihedral(const Image& src, int k, bool back, Image& dst) {
  const bool transpose = k & 4, fx = k & 1, fy = k & 2;
  const int w = transpose ? src.height : src.width, h = transpose ? src.width : src.height;
  reshape_image(dst, w, h, src.channels, src.bit_depth);
  for (int c = 0; c < src.channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        if (!back) {  // dst = flip(transpose(src))
          const int yy = fy ? h - 1 - y : y, xx = fx ? w - 1 - x : x;
          dst.at(c, y, x) = transpose ? src.at(c, xx, yy) : src.at(c, yy, xx);
        } else {  // src = flip(transpose(dst)): read dst's place in src
          const int ty = transpose ? x : y, tx = transpose ? y : x;
          dst.at(c, y, x) = src.at(c, fy ? src.height - 1 - ty : ty, fx ? src.width - 1 - tx : tx);
        }
      }
}

}  // namespace

void Upscaler::upscale_into(const Image& input, Image& out) {
  if (!options_.tta) return upscale_once(input, out);
  UPRES_ASSERT(&input != &out);
  const auto start = std::chrono::steady_clock::now();
  // A fixed output size is not turned with the picture: the eight are averaged at the model's
  // scale and the average resampled.
  const bool fixed_size = options_.output_width > 0;
  native_only_ = fixed_size;
  struct Restore {
    bool& flag;
    ~Restore() { flag = false; }
  } restore{native_only_};
  // Straight ones first, then the turned ones: the tile plan changes shape once per picture.
  // The buffers are kept from picture to picture, as the single pass keeps its own.
  Impl& im = *impl_;
  Image& sum = fixed_size ? im.tta_sum : out;
  for (int k : {0, 1, 2, 3, 4, 5, 6, 7}) {
    dihedral(input, k, false, im.tta_turned);
    upscale_once(im.tta_turned, im.tta_result);
    dihedral(im.tta_result, k, true, im.tta_back);
    const Image& back = im.tta_back;
    if (k == 0) {
      reshape_image(sum, back.width, back.height, back.channels, back.bit_depth);
      std::fill(sum.data.begin(), sum.data.end(), 0.f);
    }
    for (size_t i = 0; i < sum.data.size(); ++i) sum.data[i] += back.data[i] / 8.f;
  }
  if (fixed_size) {
    if (!im.tta_resizer.matches(sum.width, sum.height, options_.output_width, options_.output_height,
                                options_.resample))
      im.tta_resizer =
          Resizer(sum.width, sum.height, options_.output_width, options_.output_height, options_.resample);
    im.tta_resizer.run(sum, out);
  }
  stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Upscaler::upscale_once(const Image& input, Image& out) {
  UPRES_ASSERT(&input != &out);
  const auto start = std::chrono::steady_clock::now();
  const ModelGeometry& geo = model_->geometry();
  const int s = geo.scale, p = geo.border, align = geo.alignment;
  const int w = input.width, h = input.height;
  if (w <= 0 || h <= 0 || (input.channels != 3 && input.channels != 4))
    throw Error(ErrorCode::invalid_argument, "upscale needs an RGB or RGBA image");
  check_input_size(w, h);
  const auto [out_w, out_h] =
      native_only_ ? std::pair<int64_t, int64_t>{int64_t(w) * s, int64_t(h) * s} : output_size(w, h);

  // The padded input length for `len` image pixels: + 2 border, up to the alignment grid.
  auto padded = [&](int len) { return padded_length(geo, len); };
  // Networks that eat a border take their context from it (it comes from the frame, not from
  // padding, for inner windows); zero-padded networks need real pixels around each core.
  int overlap = options_.tile_overlap >= 0 ? options_.tile_overlap
                : p > 0                    ? 0
                                           : std::min(geo.receptive_radius, kMaxAutoOverlap);
  TilePlan& plan = impl_->plan;
  if (plan.width != w || plan.height != h) {
    int tile = options_.tile;
    if (tile == 0) {
      int64_t full = int64_t(padded(w)) * padded(h) * impl_->bytes_per_pixel;
      if (full <= impl_->memory_budget) {
        tile = std::max(w, h);
      } else {
        int side = int(std::sqrt(double(impl_->memory_budget) / double(impl_->bytes_per_pixel)));
        tile = std::max(side - 2 * overlap - 2 * p - align, 32);
      }
    }
    auto plan_axis = [&](int n) {
      AxisPlan a;
      const int window = padded(tile + 2 * overlap + align - 1) - 2 * p;
      if (tile >= n || window >= padded(n) - 2 * p) {
        a.window = padded(n) - 2 * p;
        a.core_begin = {0};
        a.core_end = {n};
        a.window_begin = {0};
        return a;
      }
      a.window = window;
      for (int c0 = 0; c0 < n; c0 += tile) {
        int c1 = std::min(n, c0 + tile);
        int begin = std::max(0, align_down(c0 - overlap, align));
        // The last window reaches the end of the full frame's padding (alignment included), so
        // the tiles together see every position of the full frame's feature maps: frame-wide
        // averages (squeeze-excitation) need them all.
        int needed_end = c1 == n ? padded(n) - 2 * p : std::min(c1 + overlap, n);
        if (begin + a.window < needed_end) begin = align_down(needed_end - a.window + align - 1, align);
        // Zero-padded networks must not see pixels past the full frame's padded edge (the frame
        // up to the alignment grid): their layers pad each feature map with zeros there, which a
        // window reaching past it would not do. Both ends are on the grid, so the start stays on it.
        if (p == 0) begin = std::max(0, std::min(begin, padded(n) - a.window));
        a.core_begin.push_back(c0);
        a.core_end.push_back(c1);
        a.window_begin.push_back(begin);
      }
      return a;
    };
    plan = {w, h, tile, plan_axis(w), plan_axis(h)};
  }
  const AxisPlan &ax = plan.x, &ay = plan.y;
  const int win_w = ax.window + 2 * p, win_h = ay.window + 2 * p;
  const bool tiled = ax.core_begin.size() * ay.core_begin.size() > 1;
  const bool tiled_means = tiled && geo.has_global_pooling;
  Executor& exec = impl_->executor(win_h, win_w, tiled_means);
  const Shape net_out = exec.output_shape();
  impl_->ensure(impl_->window, {3, win_h, win_w});
  impl_->ensure(impl_->result, net_out);
  const TensorView window = impl_->window.view(), result = impl_->result.view();
  // The model's output goes straight into `out` unless a resample or an alpha plane follows.
  const bool direct = out_w == int64_t(w) * s && out_h == int64_t(h) * s && input.channels == 3;
  Image& native = direct ? out : impl_->native;
  reshape_image(native, w * s, h * s, 3, input.bit_depth);
  // The padded input of window (ty, tx): image pixels, with the border rule outside the image.
  auto fill_into = [&](const TensorView& window, size_t ty, size_t tx) {
    const int y0 = ay.window_begin[ty] - p, x0 = ax.window_begin[tx] - p;
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < win_h; ++y) {
        const int iy = y0 + y;
        const bool row_inside = iy >= 0 && iy < h;
        for (int x = 0; x < win_w; ++x) {
          const int ix = x0 + x;
          float v;
          if (row_inside && ix >= 0 && ix < w)
            v = input.at(c, iy, ix);
          else if (model_->border_mode() == BorderMode::zero && p == 0)
            v = 0.f;
          else
            v = input.at(c, border_index(iy, h, model_->border_mode()),
                         border_index(ix, w, model_->border_mode()));
          window.data[(size_t(c) * win_h + y) * win_w + x] = v;
        }
      }
  };
  auto fill_window = [&](size_t ty, size_t tx) { fill_into(window, ty, tx); };
  if (tiled_means) impl_->gather_frame_means(geo, fill_window, padded(h), padded(w));
  // Output pixel j of window (ty, tx) sits at input pixel window_begin + j / s.
  auto stitch = [&](const TensorView& result, size_t ty, size_t tx) {
    const int cy0 = ay.core_begin[ty], cy1 = ay.core_end[ty], cx0 = ax.core_begin[tx], cx1 = ax.core_end[tx];
    const int oy = (cy0 - ay.window_begin[ty]) * s, ox = (cx0 - ax.window_begin[tx]) * s;
    UPRES_ASSERT(oy + (cy1 - cy0) * s <= net_out.h && ox + (cx1 - cx0) * s <= net_out.w);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < (cy1 - cy0) * s; ++y)
        for (int x = 0; x < (cx1 - cx0) * s; ++x)
          native.at(c, cy0 * s + y, cx0 * s + x) = result.at(c, oy + y, ox + x);
  };
  // Two tiles in flight: tile k+1 is filled before tile k is waited for, and tile k is stitched
  // after tile k+1 is submitted, so a device backend never waits for the host between tiles.
  if (tiled) {
    impl_->ensure(impl_->next_window, {3, win_h, win_w});
    impl_->ensure(impl_->next_result, net_out);
  }
  const TensorView windows[2] = {window, tiled ? impl_->next_window.view() : window};
  const TensorView results[2] = {result, tiled ? impl_->next_result.view() : result};
  struct InFlight {
    Ticket ticket;
    size_t ty, tx;
    int slot;
  };
  std::optional<InFlight> previous;
  int slot = 0, stitched = 0;
  const int tile_count = int(ay.core_begin.size() * ax.core_begin.size());
  auto finish = [&](InFlight& done) {
    done.ticket.wait();
    stitch(results[done.slot], done.ty, done.tx);
    if (tile_progress_) tile_progress_(++stitched, tile_count);
  };
  for (size_t ty = 0; ty < ay.core_begin.size(); ++ty)
    for (size_t tx = 0; tx < ax.core_begin.size(); ++tx) {
      fill_into(windows[slot], ty, tx);
      Ticket ticket = exec.submit(windows[slot], results[slot]);
      if (previous) finish(*previous);
      previous = InFlight{std::move(ticket), ty, tx, slot};
      slot ^= 1;
    }
  finish(*previous);

  const bool add_input = model_->output_adds_input();
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h * s; ++y)
      for (int x = 0; x < w * s; ++x) {
        float& v = native.at(c, y, x);
        v = std::clamp(add_input ? v + input.at(c, y / s, x / s) : v, 0.f, 1.f);
      }
  Image* rgb = &native;
  if (out_w != int64_t(w) * s || out_h != int64_t(h) * s) {
    Image& scaled = input.channels == 3 ? out : impl_->scaled;
    if (!impl_->resizer.matches(w * s, h * s, int(out_w), int(out_h), options_.resample))
      impl_->resizer = Resizer(w * s, h * s, int(out_w), int(out_h), options_.resample);
    impl_->resizer.run(native, scaled);
    rgb = &scaled;
  }
  if (input.channels == 4) {
    reshape_image(impl_->alpha, w, h, 1, input.bit_depth);
    std::copy(input.plane(3), input.plane(3) + int64_t(w) * h, impl_->alpha.plane(0));
    if (!impl_->alpha_resizer.matches(w, h, int(out_w), int(out_h), options_.resample))
      impl_->alpha_resizer = Resizer(w, h, int(out_w), int(out_h), options_.resample);
    impl_->alpha_resizer.run(impl_->alpha, impl_->big_alpha);
    reshape_image(out, int(out_w), int(out_h), 4, input.bit_depth);
    std::copy(rgb->data.begin(), rgb->data.end(), out.data.begin());
    for (int64_t i = 0; i < out_w * out_h; ++i)
      out.plane(3)[i] = std::clamp(impl_->big_alpha.plane(0)[i], 0.f, 1.f);
  }
  stats_.tiles = int(ax.core_begin.size() * ay.core_begin.size());
  stats_.tile_size = plan.tile;
  stats_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace upres
