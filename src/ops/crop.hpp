// The window a Crop node keeps, resolved against actual input shapes.
#pragma once

#include "ops/op.hpp"

namespace upres {

struct CropWindow {
  int begin[3];  // channel, row, column of the first kept element
  Shape shape;
};

CropWindow resolve_crop(const Node& node, const std::vector<Shape>& inputs);

}  // namespace upres
