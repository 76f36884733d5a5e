#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include <fmt/format.h>

#include "model/int8_tables.hpp"
#include "model/loader.hpp"
#include "ops/graph.hpp"
#include "ops/op.hpp"
#include "upres/error.hpp"
#include "upres/int8.hpp"
#include "upres/model.hpp"

namespace upres {
namespace {

// Input pixels a side that can influence one output pixel, following each blob's resolution
// relative to the input. Conservative (rounded up); global pooling makes it unbounded.
int receptive_radius(const Graph& g, const std::vector<Shape>& shapes, bool& global) {
  std::vector<double> radius(g.blob_names.size(), 0.0), density(g.blob_names.size(), 1.0);
  const Shape in = shapes[size_t(g.input_blob)];
  for (const Node& n : g.nodes) {
    double r = 0;
    for (int b : n.inputs) r = std::max(r, radius[size_t(b)]);
    const int out = n.outputs[0];
    const Shape os = shapes[size_t(out)];
    const double d = double(os.w) / in.w;  // output blob pixels per input pixel
    const double d_in = density[size_t(n.inputs[0])];
    switch (n.type) {
      case OpType::convolution: {
        const auto& p = n.p<ConvParams>();
        r += std::max(p.dilation_w * (p.kernel_w - 1), p.dilation_h * (p.kernel_h - 1)) / d_in;
        break;
      }
      case OpType::deconvolution: {
        const auto& p = n.p<ConvParams>();
        r += std::max(p.kernel_w, p.kernel_h) / (d * std::max(p.stride_w, 1));
        break;
      }
      case OpType::interp: r += 2.0 / std::min(d, d_in); break;
      case OpType::window_attention: {  // a token sees its window, shifted: up to a window and a shift away
        const auto& p = n.p<WindowAttentionParams>();
        r += (std::max(p.window_h, p.window_w) + std::max(p.shift_y, p.shift_x)) / d_in;
        break;
      }
      case OpType::pooling:
        if (n.p<PoolingParams>().global)
          global = true;
        else
          r += std::max(n.p<PoolingParams>().kernel_w, n.p<PoolingParams>().kernel_h) / d_in;
        break;
      default: break;
    }
    radius[size_t(out)] = r;
    density[size_t(out)] = d;
  }
  return int(std::ceil(radius[size_t(g.output_blob)]));
}

// Works out scale, border and alignment by inferring shapes for a range of input sizes.
ModelGeometry derive_geometry(const Graph& g, const std::string& name) {
  std::vector<std::pair<int, int>> valid;  // (input side, output side)
  std::string last_problem;
  for (int n = 64; n < 96; ++n) {
    try {
      std::vector<Shape> s = g.infer_shapes({3, n, n});
      Shape out = s[size_t(g.output_blob)];
      if (out.c != 3) throw Error(ErrorCode::invalid_model, fmt::format("outputs {} channels, not 3", out.c));
      if (out.h != out.w) throw Error(ErrorCode::invalid_model, "output is not square for a square input");
      valid.emplace_back(n, out.w);
    } catch (const Error& e) {
      last_problem = e.what();
    }
  }
  if (valid.size() < 2)
    throw Error(ErrorCode::invalid_model,
                fmt::format("{}: does not run on RGB inputs of 64..95 pixels: {}", name, last_problem));
  // Find the coarsest grid the model needs: the smallest alignment a and remainder r for which
  // inputs n = a * k + r give out = scale * n - eaten with a whole scale and a border eaten
  // evenly on both sides (strided layers floor odd sizes, so not every accepted n is clean).
  ModelGeometry geo;
  bool found = false;
  for (int a : {1, 2, 4, 8, 16}) {
    for (int r = 0; r < a && !found; ++r) {
      std::vector<std::pair<int, int>> pts;
      for (auto pt : valid)
        if (pt.first % a == r) pts.push_back(pt);
      if (pts.size() < 2 || pts.size() != size_t((32 - r + a - 1) / a))
        continue;  // every n on the grid must run
      int64_t grow = pts.back().second - pts.front().second, span = pts.back().first - pts.front().first;
      if (grow <= 0 || grow % span) continue;
      const int scale = int(grow / span);
      const int eaten = pts.front().first * scale - pts.front().second;
      bool linear = eaten >= 0 && eaten % (2 * scale) == 0;
      for (auto pt : pts) linear = linear && pt.first * scale - pt.second == eaten;
      if (!linear) continue;
      geo.alignment = a;
      geo.alignment_remainder = r;
      geo.scale = scale;
      geo.border = eaten / (2 * scale);
      found = true;
    }
    if (found) break;
  }
  if (!found)
    throw Error(ErrorCode::invalid_model,
                fmt::format("{}: output size is not a whole multiple of the input size", name));
  std::vector<Shape> shapes = g.infer_shapes({3, valid.front().first, valid.front().first});
  geo.receptive_radius = std::max(geo.border, receptive_radius(g, shapes, geo.has_global_pooling));
  return geo;
}

}  // namespace

Model::~Model() = default;

std::shared_ptr<const Model> Model::load_source(const ModelSource& source, const std::string& display_name,
                                                BorderMode border, bool output_adds_input) {
  return open(source, display_name, border, output_adds_input);
}

std::shared_ptr<Model> Model::open(const ModelSource& source, const std::string& display_name,
                                   BorderMode border, bool output_adds_input) {
  std::shared_ptr<Model> m(new Model());
  m->name_ = display_name;
  m->source_ = source;
  m->graph_ = load_graph(source);
  m->geometry_ = derive_geometry(*m->graph_, source.files.front());
  m->border_ = border;
  // A model that pads its own input to its alignment is padded by the runtime the same way.
  if (const std::optional<PadMode>& mode = m->graph_->input_pad_mode)
    m->border_ = *mode == PadMode::reflect ? BorderMode::reflect
                 : *mode == PadMode::edge  ? BorderMode::replicate
                                           : BorderMode::zero;
  m->output_adds_input_ = output_adds_input;
  const std::string sidecar = calibration_path_for(source.files.front());
  if (std::filesystem::exists(sidecar)) {
    Int8Calibration table = read_calibration(sidecar);
    if (table.weights_sha256 == file_sha256(source.weights_file()))
      m->int8_ = std::make_shared<const Int8Calibration>(std::move(table));
    else
      m->int8_note_ = fmt::format(
          "{} was made for other weights than {}; make it again with `upres models "
          "calibrate`",
          sidecar, source.weights_file());
  } else {
    m->int8_note_ = fmt::format("no calibration table {}", sidecar);
  }
  return m;
}

std::shared_ptr<const Model> Model::load(const std::string& name_or_path) {
  // A zoo model's weights run with its settings and shipped int8 table, whatever the files are
  // called or wherever they are (a realesrgan-ncnn-vulkan models folder, a model a user added).
  // A table the user made beside the files (even a stale one, whose note says so) wins over the
  // shipped one there.
  auto open_zoo = [](const ModelInfo& info, const ModelSource& source, const std::string& display_name,
                     bool user_table_wins) {
    auto model = open(source, display_name, info.border, info.output_adds_input);
    if (!model->int8_ &&
        !(user_table_wins && std::filesystem::exists(calibration_path_for(source.files.front())))) {
      // The table shipped with upres, made for the weights the manifest pins.
      auto shipped = shipped_int8_calibration(info.name);
      if (shipped && shipped->weights_sha256 == info.sha256.back()) {
        model->int8_ = std::move(shipped);
        model->int8_note_.clear();
      } else {
        model->int8_note_ = fmt::format("upres ships no int8 calibration for {}", info.name);
      }
    }
    return model;
  };
  auto open_file = [&](const ModelSource& source, const std::string& display_name) -> std::shared_ptr<Model> {
    // Every file must match (an edited .param with the zoo's weights is another network).
    std::vector<std::string> sha;
    for (const std::string& f : source.files) sha.push_back(file_sha256(f));
    for (const ModelInfo& info : model_zoo())
      if (info.source.format == source.format && info.sha256 == sha)
        return open_zoo(info, source, display_name, true);
    return open(source, display_name, BorderMode::replicate, false);
  };
  if (const ModelInfo* info = find_model_info(name_or_path)) {
    const ModelSource source = model_source(*info);
    if (!model_installed(*info))
      throw Error(ErrorCode::not_found,
                  fmt::format("model '{}' is not installed (looked for {}); fetch it with `upres models "
                              "fetch {}`",
                              info->name, source.files.front(), info->name));
    return open_zoo(*info, source, info->name, false);
  }
  if (std::unique_ptr<UserModel> user = find_user_model(name_or_path))
    return open_file(user->source, user->name);
  if (!std::filesystem::exists(name_or_path))
    throw Error(
        ErrorCode::not_found,
        fmt::format("unknown model '{}': `upres models list` shows the model names; a path to a model "
                    "file (an ncnn .param with its .bin beside it, or an .onnx file) also works; `upres "
                    "models add FILE` registers one under a name",
                    name_or_path));
  const ModelSource source = sniff_model_file(name_or_path);
  return open_file(source, std::filesystem::path(source.files.front()).stem().string());
}

int64_t Model::parameter_count() const {
  return graph_->parameter_count();
}

double Model::macs_per_input_pixel() const {
  const int n = 64 * geometry_.alignment + 2 * geometry_.border;
  int side = n;
  for (int extra = 0; extra < geometry_.alignment * 2; ++extra) {
    try {
      side = n + extra;
      graph_->infer_shapes({3, side, side});
      break;
    } catch (const Error&) {
    }
  }
  std::vector<Shape> shapes = graph_->infer_shapes({3, side, side});
  double macs = 0;
  std::vector<Shape> in, out;
  for (const Node& node : graph_->nodes) {
    const OpDef& def = op_def(node.type);
    if (!def.count_macs) continue;
    in.clear();
    out.clear();
    for (int b : node.inputs) in.push_back(shapes[size_t(b)]);
    for (int b : node.outputs) out.push_back(shapes[size_t(b)]);
    macs += def.count_macs(node, in, out);
  }
  return macs / (double(side) * side);
}

}  // namespace upres
