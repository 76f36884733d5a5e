// Fully connected layer over the flattened input, with a fused activation.
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 1);
  const auto& p = node.p<InnerProductParams>();
  if (int64_t(node.weights[0].values.size()) != int64_t(p.out_features) * in[0].size())
    op_error(node, fmt::format("weights hold {} values, input {} needs {}", node.weights[0].values.size(),
                               in[0].str(), int64_t(p.out_features) * in[0].size()));
  return {{p.out_features, 1, 1}};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  const auto& p = node.p<InnerProductParams>();
  const int64_t n = in[0].shape.size();
  const float* w = node.weights[0].values.data();
  for (int o = 0; o < p.out_features; ++o) {
    double sum = p.bias ? node.weights[1].values[size_t(o)] : 0.0;
    for (int64_t i = 0; i < n; ++i) sum += double(w[o * n + i]) * in[0].data[i];
    out[0].data[o] = activate(float(sum), p.activation, 0.f);
  }
}

double macs(const Node&, const std::vector<Shape>& in, const std::vector<Shape>& out) {
  return double(in[0].size()) * out[0].size();
}

}  // namespace

extern const OpDef op_inner_product = {"InnerProduct", infer, run, macs};

}  // namespace upres
