#include "backend/backend.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "backend/cpu/onednn_isa.hpp"
#include "upres/error.hpp"

namespace upres {

void Executor::run_to_pooling(const TensorView& input, int node,
                              const std::function<void(const TensorView&)>& visit) {
  stop_at_ = node;
  visit_ = &visit;
  struct Reset {
    int& stop;
    ~Reset() { stop = -1; }
  } reset{stop_at_};
  run_partial(input);
}

bool Executor::stop_at_pooling(int node, const TensorView& pooling_input) {
  if (node != stop_at_) return false;
  (*visit_)(pooling_input);
  return true;
}

const std::vector<float>* Executor::pooled_means(int node) const {
  auto it = pooled_means_.find(node);
  return it == pooled_means_.end() ? nullptr : it->second;
}

std::unique_ptr<Graph> Backend::prepare(const Graph& graph, Shape) const {
  return std::make_unique<Graph>(graph);
}

std::unique_ptr<Backend> make_backend(BackendKind kind, int threads,
                                      std::shared_ptr<const Int8Calibration> int8) {
  switch (kind) {
    case BackendKind::reference: return make_reference_backend(std::move(int8));
    case BackendKind::cpu: return make_cpu_backend(threads, std::move(int8));
  }
  UPRES_ASSERT(false);
  return nullptr;
}

BackendKind backend_from_name(const std::string& name) {
  if (name == "reference") return BackendKind::reference;
  if (name == "cpu") return BackendKind::cpu;
  throw Error(ErrorCode::invalid_argument,
              fmt::format("unknown backend '{}': use cpu (oneDNN) or reference (plain loops)", name));
}

Precision precision_from_name(const std::string& name) {
  if (name == "f32") return Precision::f32;
  if (name == "int8") return Precision::int8;
  if (name == "auto") return Precision::automatic;
  throw Error(
      ErrorCode::invalid_argument,
      fmt::format("unknown precision '{}': use f32 (exact), int8 (faster, needs a calibration) or auto "
                  "(int8 where that works and pays)",
                  name));
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::f32: return "f32";
    case Precision::int8: return "int8";
    case Precision::automatic: return "auto";
  }
  return "?";
}

bool backend_runs_int8_fast(BackendKind kind) {
  return kind == BackendKind::cpu && onednn_has_fast_int8();
}

const char* backend_name(BackendKind kind) {
  return kind == BackendKind::reference ? "reference" : "cpu";
}

int64_t estimate_activation_bytes(const Graph& graph, Shape input) {
  const std::vector<Shape> shapes = graph.infer_shapes(input);
  const std::vector<int> last = graph.last_uses();
  std::vector<bool> live(shapes.size(), false);
  live[size_t(graph.input_blob)] = true;
  int64_t current = shapes[size_t(graph.input_blob)].size(), peak = current;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (int b : graph.nodes[i].outputs) {
      live[size_t(b)] = true;
      current += shapes[size_t(b)].size();
    }
    peak = std::max(peak, current);
    for (size_t b = 0; b < shapes.size(); ++b)
      if (live[b] && last[b] <= int(i) && int(b) != graph.output_blob) {
        live[b] = false;
        current -= shapes[b].size();
      }
  }
  return peak * int64_t(sizeof(float));
}

}  // namespace upres
