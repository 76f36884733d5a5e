// A fast Interp for the cpu backend: the same taps as the reference kernel, applied as two
// separable float passes (rows, then columns) with tables made once per shape.
#pragma once

#include <vector>

#include "ops/graph.hpp"

namespace upres {

class InterpKernel {
 public:
  InterpKernel(const InterpParams& params, Shape in, Shape out);
  void run(const float* x, float* y);

 private:
  struct Tap {
    int index[4];
    float weight[4];
    int count;
  };
  Shape in_, out_;
  std::vector<Tap> rows_, cols_;
  std::vector<float> horizontal_;  // c x in.h x out.w
};

}  // namespace upres
