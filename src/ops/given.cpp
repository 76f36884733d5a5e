// Given: values handed in by the caller at each run (see GivenParams).
#include <fmt/format.h>

#include "ops/op.hpp"

namespace upres {
namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 0, 1);  // a replaced pooling keeps its input, unread
  return {{node.p<GivenParams>().channels, 1, 1}};
}

void run(const Node& node, const std::vector<TensorView>&, const std::vector<TensorView>& out) {
  const GivenParams& p = node.p<GivenParams>();
  UPRES_ASSERT(p.values && int64_t(p.values->size()) == out[0].shape.size());
  std::copy(p.values->begin(), p.values->end(), out[0].data);
}

}  // namespace

extern const OpDef op_given = {"Given", infer, run, nullptr};

}  // namespace upres
