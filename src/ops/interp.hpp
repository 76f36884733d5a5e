// The taps of ncnn's Interp along one axis, shared by the reference kernel and fast backends.
#pragma once

#include "ops/op.hpp"

namespace upres {

struct InterpTaps {
  int index[4];
  double weight[4];
  int count;
};

// Taps for every output index along one axis (vertical: rows, using scale_h/out_h).
std::vector<InterpTaps> interp_axis_taps(const InterpParams& p, int in_size, int out_size, bool vertical);

}  // namespace upres
