#include "ops/graph.hpp"

#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {

int Graph::add_blob(const std::string& name) {
  blob_names.push_back(name);
  return int(blob_names.size()) - 1;
}

void Graph::validate() const {
  const int blob_count = int(blob_names.size());
  std::vector<bool> produced(size_t(blob_count), false);
  auto fail = [&](const Node& n, const std::string& what) {
    throw Error(ErrorCode::invalid_model,
                fmt::format("{}: layer '{}' (line {}): {}", source, n.name, n.source_line, what));
  };
  if (input_blob < 0 || input_blob >= blob_count)
    throw Error(ErrorCode::invalid_model, fmt::format("{}: has no Input layer", source));
  if (output_blob < 0 || output_blob >= blob_count)
    throw Error(ErrorCode::invalid_model, fmt::format("{}: has no output blob", source));
  produced[size_t(input_blob)] = true;
  for (const Node& n : nodes) {
    if (n.outputs.size() != 1) fail(n, "must have exactly one output");
    for (int b : n.inputs) {
      if (b < 0 || b >= blob_count) fail(n, "reads an unknown blob");
      if (!produced[size_t(b)])
        fail(n, fmt::format("reads blob '{}' before any layer produces it", blob_names[size_t(b)]));
    }
    for (int b : n.outputs) {
      if (b < 0 || b >= blob_count) fail(n, "writes an unknown blob");
      if (produced[size_t(b)]) fail(n, fmt::format("writes blob '{}' a second time", blob_names[size_t(b)]));
      produced[size_t(b)] = true;
    }
  }
  if (!produced[size_t(output_blob)])
    throw Error(ErrorCode::invalid_model, fmt::format("{}: nothing produces the output", source));
}

std::vector<Shape> Graph::infer_shapes(Shape input) const {
  if (input.h % input_alignment || input.w % input_alignment)
    throw Error(ErrorCode::invalid_model, fmt::format("{}: input sides must be multiples of {}, not {}x{}",
                                                      source, input_alignment, input.w, input.h));
  std::vector<Shape> shapes(blob_names.size());
  shapes[size_t(input_blob)] = input;
  std::vector<Shape> in;
  for (const Node& n : nodes) {
    in.clear();
    for (int b : n.inputs) in.push_back(shapes[size_t(b)]);
    std::vector<Shape> out = op_def(n.type).infer_shapes(n, in);
    UPRES_ASSERT(out.size() == n.outputs.size());
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i].size() <= 0 || out[i].size() > (int64_t(1) << 34))
        op_error(n, fmt::format("produces an impossible shape {}", out[i].str()));
      shapes[size_t(n.outputs[i])] = out[i];
    }
  }
  return shapes;
}

std::vector<int> Graph::last_uses() const {
  std::vector<int> last(blob_names.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int b : nodes[i].inputs) last[size_t(b)] = int(i);
  last[size_t(output_blob)] = int(nodes.size());
  return last;
}

int64_t Graph::parameter_count() const {
  int64_t n = 0;
  for (const Node& node : nodes)
    for (const Tensor& t : node.weights) n += int64_t(t.values.size());
  return n;
}

}  // namespace upres
