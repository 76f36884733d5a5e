// Keeps a window of a tensor: fixed offsets and sizes, margins from the end, or the size of a
// second (reference) input.
#include "ops/crop.hpp"

#include <fmt/format.h>

namespace upres {

CropWindow resolve_crop(const Node& node, const std::vector<Shape>& in) {
  check_input_count(node, in, 1, 2);
  const auto& p = node.p<CropParams>();
  const int dims[3] = {in[0].c, in[0].h, in[0].w};
  int size[3];
  CropWindow window{};
  for (int a = 0; a < 3; ++a) {
    int begin = p.begin[a] < 0 ? dims[a] + p.begin[a] : p.begin[a];
    int end = p.end_from_end[a] ? dims[a] + p.end[a] : std::min(p.end[a], dims[a]);
    if (in.size() == 2) {
      const int ref[3] = {in[1].c, in[1].h, in[1].w};
      end = begin + ref[a];
    }
    if (begin < 0 || end > dims[a] || end <= begin)
      op_error(node, fmt::format("window [{}, {}) does not fit extent {} of input {}", begin, end, dims[a],
                                 in[0].str()));
    window.begin[a] = begin;
    size[a] = end - begin;
  }
  window.shape = {size[0], size[1], size[2]};
  return window;
}

namespace {

std::vector<Shape> infer(const Node& node, const std::vector<Shape>& in) {
  return {resolve_crop(node, in).shape};
}

void run(const Node& node, const std::vector<TensorView>& in, const std::vector<TensorView>& out) {
  thread_local std::vector<Shape> shapes;  // reused: steady-state runs allocate nothing
  shapes.assign({in[0].shape});
  if (in.size() == 2) shapes.push_back(in[1].shape);
  const CropWindow w = resolve_crop(node, shapes);
  const TensorView& y = out[0];
  for (int c = 0; c < y.shape.c; ++c)
    for (int yy = 0; yy < y.shape.h; ++yy)
      for (int xx = 0; xx < y.shape.w; ++xx)
        y.at(c, yy, xx) = in[0].at(c + w.begin[0], yy + w.begin[1], xx + w.begin[2]);
}

}  // namespace

extern const OpDef op_crop = {"Crop", infer, run, nullptr};

}  // namespace upres
