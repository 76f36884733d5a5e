// The load-time arithmetic of the ONNX loader: tensors whose values are known once the input size
// is (initializers, Constant nodes, and the shape arithmetic exporters emit around them: Shape,
// Gather, Concat, Div, Mod, Range, ...).
//
// The loader imports a model at a few sample input sizes at once (onnx_loader.cpp): a value that
// depends on the input size holds one array per sample, one that does not holds a single array.
// Every value is a double, which holds int64 shape arithmetic exactly (below 2^53) and float32.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace upres::onnx_fold {

// A dense row-major array.
struct Array {
  std::vector<int64_t> dims;
  std::vector<double> v;
  int64_t count() const;
  static Array scalar(double value) { return {{}, {value}}; }
  static Array vector(std::vector<double> values);
};

// A value known at load time: one array, or one per sample input size.
struct Const {
  bool integer = false;  // int64/int32/bool (else floating point)
  // Computed from a quotient or remainder of the input's size by an alignment (a model padding
  // itself up to a multiple: (8 - h % 8) % 8): at the sample sizes, all multiples of 16, such a
  // value often comes out the same (0), so this remembers that it is not really fixed.
  bool from_alignment = false;
  std::vector<Array> at;
  const Array& sample(size_t s) const { return at.size() == 1 ? at[0] : at[s]; }
  bool varies() const { return at.size() > 1; }
};

// Problems are reported through this, which must throw (the loader names the node).
using Fail = std::function<void(const std::string& problem)>;

// Shape rules shared with the loader's views of pictures.
Array reshape(const Array& a, const std::vector<int64_t>& target, bool allow_zero, const Fail& fail);
Array transpose(const Array& a, const std::vector<int64_t>& perm, const Fail& fail);
Array slice(const Array& a, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
            std::vector<int64_t> axes, std::vector<int64_t> steps, const Fail& fail);
Array gather(const Array& data, const Array& indices, int64_t axis, const Fail& fail);
Array concat(const std::vector<const Array*>& parts, int64_t axis, const Fail& fail);
// Broadcasts `a` to `shape` by ONNX Expand's rule (the result has the broadcast of both shapes).
Array expand(const Array& a, const std::vector<int64_t>& shape, const Fail& fail);
std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                    const Fail& fail);

// Attribute lookups of the node being folded.
struct Attributes {
  std::function<int64_t(const char* name, int64_t fallback)> i;
  std::function<std::vector<int64_t>(const char* name)> ints;  // empty when absent
  std::function<const Const*(const char* name)> tensor;        // nullptr when absent
};

struct FoldContext {
  size_t samples = 1;
  size_t outputs = 1;  // the node's output count (Split)
  Fail fail;
  // Told of each integer division or remainder of a value that varies with the input size: the
  // loader works out the input alignment that keeps it exact (alignment_for_division).
  std::function<void(const Const& dividend, double divisor)> divides;
};

// Folds one node over constant inputs (`inputs[k]` null for an omitted optional input) into its
// outputs. Returns false when `op` is not an op this folds.
bool fold(const std::string& op, const std::vector<const Const*>& inputs, const Attributes& attrs,
          const FoldContext& context, std::vector<Const>& outputs);

// For a value that varies with the input size, the smallest alignment (1, 2, 4, 8 or 16, a
// multiple of `current`) at which dividing it by `divisor` (or taking it modulo) is exact for
// every aligned input size, given the sample sizes the values were computed at; 0 when none is.
int alignment_for_division(const std::vector<double>& at_samples, const std::vector<int>& sample_h,
                           const std::vector<int>& sample_w, double divisor, int current);

}  // namespace upres::onnx_fold
