// The reference backend: every op through its plain reference kernel, blobs in plain owned
// tensors freed after their last reader. The oracle the fast backends are tested against.
#include "backend/backend.hpp"
#include "ops/op.hpp"

namespace upres {
namespace {

class ReferenceExecutor final : public Executor {
 public:
  ReferenceExecutor(const Graph& graph, Shape input)
      : graph_(graph), shapes_(graph.infer_shapes(input)), last_use_(graph.last_uses()) {}

  void run(const TensorView& input, const TensorView& output) override {
    UPRES_ASSERT(input.shape == shapes_[size_t(graph_.input_blob)]);
    UPRES_ASSERT(output.shape == output_shape());
    std::vector<Tensor> blobs(shapes_.size());
    blobs[size_t(graph_.input_blob)] =
        Tensor(input.shape, std::vector<float>(input.data, input.data + input.shape.size()));
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
      op_def(node.type).run_reference(node, in, out);
      for (int b : node.inputs)
        if (last_use_[size_t(b)] == int(i)) blobs[size_t(b)] = Tensor();
    }
    const Tensor& result = blobs[size_t(graph_.output_blob)];
    std::copy(result.values.begin(), result.values.end(), output.data);
  }

  Shape output_shape() const override { return shapes_[size_t(graph_.output_blob)]; }
  int64_t memory_bytes() const override {
    return estimate_activation_bytes(graph_, shapes_[size_t(graph_.input_blob)]);
  }

 private:
  const Graph& graph_;
  std::vector<Shape> shapes_;
  std::vector<int> last_use_;
};

class ReferenceBackend final : public Backend {
 public:
  const char* name() const override { return "reference"; }
  std::unique_ptr<Executor> compile(const Graph& graph, Shape input) override {
    return std::make_unique<ReferenceExecutor>(graph, input);
  }
};

}  // namespace

std::unique_ptr<Backend> make_reference_backend() {
  return std::make_unique<ReferenceBackend>();
}

}  // namespace upres
