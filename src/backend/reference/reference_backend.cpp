// The reference backend: every op through its plain reference kernel, blobs in plain owned
// tensors freed after their last reader. The oracle the fast backends are tested against; with
// an int8 calibration it emulates the int8 plan (model/int8_plan.hpp) in plain loops.
#include <optional>

#include "backend/backend.hpp"
#include "backend/reference/convolution_int8.hpp"
#include "model/int8_plan.hpp"
#include "model/passes.hpp"
#include "ops/op.hpp"

namespace upres {
namespace {

class ReferenceExecutor final : public Executor {
 public:
  ReferenceExecutor(const Graph& graph, Shape input, const Int8Calibration* int8)
      : graph_(graph), shapes_(graph.infer_shapes(input)), last_use_(graph.last_uses()) {
    if (int8) plan_ = plan_int8(graph, *int8);
  }

  Ticket submit(const TensorView& input, const TensorView& output) override {
    run_observed(input, output, {});
    return {};
  }

  // Shows every blob, asked for or not.
  void run_observed(const TensorView& input, const TensorView& output, const BlobObserver& observe) override {
    UPRES_ASSERT(input.shape == shapes_[size_t(graph_.input_blob)]);
    std::vector<Tensor> blobs(shapes_.size());
    blobs[size_t(graph_.input_blob)] =
        Tensor(input.shape, std::vector<float>(input.data, input.data + input.shape.size()));
    if (observe) observe(graph_.input_blob, blobs[size_t(graph_.input_blob)].view());
    std::vector<TensorView> in, out;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      const Node& node = graph_.nodes[i];
      in.clear();
      out.clear();
      for (int b : node.inputs) in.push_back(blobs[size_t(b)].view());
      for (int b : node.outputs) {
        blobs[size_t(b)] = Tensor(shapes_[size_t(b)]);
        out.push_back(blobs[size_t(b)].view());
      }
      if (plan_ && plan_->convs[i])
        run_convolution_int8_reference(node, *plan_->convs[i], in, out);
      else
        op_def(node.type).run_reference(node, in, out);
      if (observe)
        for (int b : node.outputs) observe(b, blobs[size_t(b)].view());
      for (int b : node.inputs)
        if (last_use_[size_t(b)] == int(i)) blobs[size_t(b)] = Tensor();
    }
    UPRES_ASSERT(output.shape == output_shape());
    const Tensor& result = blobs[size_t(graph_.output_blob)];
    std::copy(result.values.begin(), result.values.end(), output.data);
  }

  TensorDesc input_desc() const override { return {shapes_[size_t(graph_.input_blob)]}; }
  TensorDesc output_desc() const override { return {shapes_[size_t(graph_.output_blob)]}; }
  int64_t memory_bytes() const override {
    return estimate_activation_bytes(graph_, shapes_[size_t(graph_.input_blob)]);
  }

 private:
  const Graph& graph_;
  std::vector<Shape> shapes_;
  std::vector<int> last_use_;
  std::optional<Int8Plan> plan_;
};

class ReferenceBackend final : public Backend {
 public:
  explicit ReferenceBackend(std::shared_ptr<const Int8Calibration> int8) : int8_(std::move(int8)) {}
  const char* name() const override { return "reference"; }
  DeviceInfo device() const override { return host_device("reference"); }
  std::unique_ptr<Executor> compile(const Graph& graph, Shape input, const std::vector<int>& = {}) override {
    return std::make_unique<ReferenceExecutor>(graph, input, int8_.get());
  }
  // In float32 the graph runs as loaded (so comparing with the cpu backend also checks its
  // fusion pass); in int8 it runs fused like the cpu backend's, whose int8 plan depends on which
  // activations are fused.
  std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const override {
    auto g = std::make_unique<Graph>(graph);
    if (int8_) fuse_conv_epilogues(*g, probe);
    return g;
  }

 private:
  std::shared_ptr<const Int8Calibration> int8_;
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend(std::shared_ptr<const Int8Calibration> int8) {
  return std::make_unique<ReferenceBackend>(std::move(int8));
}

BackendEntry reference_backend_entry() {
  return {"reference", "plain loops, the oracle the others are tested against",
          [](const BackendConfig& c) { return make_reference_backend(c.int8); },
          [] { return std::vector<DeviceInfo>{host_device("reference")}; }};
}

void run_reference_observed(const Graph& graph, const TensorView& input, const TensorView& output,
                            const BlobObserver& observe) {
  ReferenceExecutor(graph, input.shape, nullptr).run_observed(input, output, observe);
}

}  // namespace upres
