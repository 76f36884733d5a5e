// Tensors: float32, one image (no batch), channels x height x width, row-major and plain.
// A vector of n values is the shape (n, 1, 1), so per-channel broadcasting is ordinary
// numpy-style broadcasting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/assert.hpp"

namespace upres {

struct Shape {
  int c = 0, h = 0, w = 0;
  int64_t size() const { return int64_t(c) * h * w; }
  bool operator==(const Shape& o) const { return c == o.c && h == o.h && w == o.w; }
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string str() const;
};

// A non-owning view of plain c x h x w floats. Kernels read and write through views so that
// backends can hand them memory they own (oneDNN buffers, pooled scratch).
struct TensorView {
  Shape shape;
  float* data = nullptr;
  float* channel(int c) const { return data + int64_t(c) * shape.h * shape.w; }
  float& at(int c, int y, int x) const { return data[(int64_t(c) * shape.h + y) * shape.w + x]; }
};

// An owning tensor.
struct Tensor {
  Shape shape;
  std::vector<float> values;
  Tensor() = default;
  explicit Tensor(Shape s) : shape(s), values(static_cast<size_t>(s.size())) {}
  Tensor(Shape s, std::vector<float> v) : shape(s), values(std::move(v)) {
    UPRES_ASSERT(int64_t(values.size()) == shape.size());
  }
  TensorView view() { return {shape, values.data()}; }
  TensorView view() const { return {shape, const_cast<float*>(values.data())}; }
  bool empty() const { return values.empty(); }
};

}  // namespace upres
