// Folding ONNX's shape arithmetic at load time; see onnx_fold.hpp.
#include "model/onnx_fold.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace upres::onnx_fold {
namespace {

constexpr int64_t kMaxFoldedCount = int64_t(1) << 24;  // a folded value larger than this is a mistake

std::string dims_text(const std::vector<int64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

// Saturates far above any size folded here, so that checks against kMaxFoldedCount cannot be
// fooled by a product that overflows.
int64_t product(const std::vector<int64_t>& dims) {
  constexpr int64_t kHuge = int64_t(1) << 40;
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) return kHuge;
    if (d != 0 && n > kHuge / d) return kHuge;
    n *= d;
  }
  return n;
}

void check_count(int64_t count, const Fail& fail) {
  if (count > kMaxFoldedCount) fail(fmt::format("folds to a constant of {} values or more", count));
}

// The one value of a scalar (or one-element) array.
double scalar_of(const Array& a, const char* what, const Fail& fail) {
  if (a.v.size() != 1) fail(fmt::format("its {} holds {} values, not one", what, a.v.size()));
  return a.v[0];
}

// Visits every position of `dims` in row-major order, calling f(position number, offset) where the
// offset moves by step[k] along axis k: the gathers of transpose, expand and slice without a
// division per element.
template <class F>
void walk(const std::vector<int64_t>& dims, const std::vector<int64_t>& step, int64_t start, F f) {
  const size_t rank = dims.size();
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<int64_t> at(rank, 0);
  int64_t offset = start;
  for (int64_t i = 0; i < n; ++i) {
    f(i, offset);
    for (size_t k = rank; k-- > 0;) {
      offset += step[k];
      if (++at[k] < dims[k]) break;
      offset -= step[k] * dims[k];
      at[k] = 0;
    }
  }
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;) strides[k - 1] = strides[k] * dims[k];
  return strides;
}

int64_t normalize_axis(int64_t axis, size_t rank, const Fail& fail) {
  const int64_t r = int64_t(rank);
  if (axis < -r || axis >= r) fail(fmt::format("axis {} is out of range for rank {}", axis, rank));
  return axis < 0 ? axis + r : axis;
}

std::vector<int64_t> as_ints(const Array& a, const Fail& fail) {
  std::vector<int64_t> out;
  for (double v : a.v) {
    if (v != std::floor(v)) fail(fmt::format("{} is not an integer", v));
    // Exporters write "to the end" as INT64_MAX/MIN; doubles hold those only approximately.
    out.push_back(v >= 9.0e18 ? INT64_MAX : v <= -9.0e18 ? INT64_MIN : int64_t(v));
  }
  return out;
}

// Applies f to each sample of the inputs (one call when none varies).
Const per_sample(const std::vector<const Const*>& inputs, const FoldContext& cx, bool integer,
                 const std::function<Array(size_t sample)>& f) {
  bool varies = false;
  for (const Const* c : inputs) varies = varies || (c && c->varies());
  Const out;
  out.integer = integer;
  for (size_t s = 0; s < (varies ? cx.samples : 1); ++s) {
    out.at.push_back(f(s));
    if (out.at.back().count() > kMaxFoldedCount)
      cx.fail(fmt::format("folds to a constant of {} values", out.at.back().count()));
  }
  return out;
}

Array elementwise(const Array& a, const Array& b, const Fail& fail,
                  const std::function<double(double, double)>& f) {
  Array out;
  out.dims = broadcast_dims(a.dims, b.dims, fail);
  check_count(product(out.dims), fail);
  const size_t rank = out.dims.size();
  auto steps = [&](const std::vector<int64_t>& d) {  // strides, 0 along broadcast axes
    std::vector<int64_t> p(rank - d.size(), 1);
    p.insert(p.end(), d.begin(), d.end());
    std::vector<int64_t> st = strides_of(p);
    for (size_t k = 0; k < rank; ++k)
      if (p[k] == 1) st[k] = 0;
    return st;
  };
  const std::vector<int64_t> sa = steps(a.dims), sb = steps(b.dims);
  // One walk over the output, the second operand's offset kept beside it: a's steps drive walk(),
  // b's move in the same odometer order.
  std::vector<int64_t> ib_at(rank, 0);
  int64_t ib = 0;
  out.v.resize(size_t(product(out.dims)));
  walk(out.dims, sa, 0, [&](int64_t i, int64_t ia) {
    out.v[size_t(i)] = f(a.v[size_t(ia)], b.v[size_t(ib)]);
    for (size_t k = rank; k-- > 0;) {
      ib += sb[k];
      if (++ib_at[k] < out.dims[k]) break;
      ib -= sb[k] * out.dims[k];
      ib_at[k] = 0;
    }
  });
  return out;
}

Array map_values(const Array& a, const std::function<double(double)>& f) {
  Array out = a;
  for (double& v : out.v) v = f(v);
  return out;
}

}  // namespace

Array slice(const Array& a, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
            std::vector<int64_t> axes, std::vector<int64_t> steps, const Fail& fail) {
  if (axes.empty())
    for (size_t k = 0; k < starts.size(); ++k) axes.push_back(int64_t(k));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    fail("starts, ends, axes and steps differ in length");
  const size_t rank = a.dims.size();
  std::vector<int64_t> begin(rank, 0), step(rank, 1), count = a.dims;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t axis = normalize_axis(axes[k], rank, fail), dim = a.dims[size_t(axis)];
    if (steps[k] == 0) fail("a slice step is 0");
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (steps[k] > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      count[size_t(axis)] = std::max<int64_t>(0, (e - s + steps[k] - 1) / steps[k]);
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      count[size_t(axis)] = std::max<int64_t>(0, (s - e - steps[k] - 1) / -steps[k]);
    }
    begin[size_t(axis)] = s;
    step[size_t(axis)] = steps[k];
  }
  Array out;
  out.dims = count;
  const std::vector<int64_t> si = strides_of(a.dims);
  std::vector<int64_t> moves(rank);
  int64_t start = 0;
  for (size_t k = 0; k < rank; ++k) {
    moves[k] = step[k] * si[k];
    start += begin[k] * si[k];
  }
  out.v.resize(size_t(product(count)));
  walk(count, moves, start, [&](int64_t i, int64_t src) { out.v[size_t(i)] = a.v[size_t(src)]; });
  return out;
}

Array gather(const Array& data, const Array& indices, int64_t axis_in, const Fail& fail) {
  const size_t rank = data.dims.size();
  if (rank == 0) fail("Gather on a scalar");
  const int64_t axis = normalize_axis(axis_in, rank, fail), dim = data.dims[size_t(axis)];
  Array out;
  out.dims.assign(data.dims.begin(), data.dims.begin() + axis);
  out.dims.insert(out.dims.end(), indices.dims.begin(), indices.dims.end());
  out.dims.insert(out.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
  const int64_t outer = product({data.dims.begin(), data.dims.begin() + axis});
  const int64_t inner = product({data.dims.begin() + axis + 1, data.dims.end()});
  check_count(product(out.dims), fail);
  for (int64_t o = 0; o < outer; ++o)
    for (double raw : indices.v) {
      int64_t idx = int64_t(raw);
      if (idx < 0) idx += dim;
      if (idx < 0 || idx >= dim) fail(fmt::format("index {} is out of range for {}", raw, dim));
      for (int64_t i = 0; i < inner; ++i) out.v.push_back(data.v[size_t((o * dim + idx) * inner + i)]);
    }
  return out;
}

Array concat(const std::vector<const Array*>& parts, int64_t axis_in, const Fail& fail) {
  const size_t rank = parts[0]->dims.size();
  const int64_t axis = normalize_axis(axis_in, rank, fail);
  Array out;
  out.dims = parts[0]->dims;
  out.dims[size_t(axis)] = 0;
  for (const Array* p : parts) {
    if (p->dims.size() != rank) fail("concatenates arrays of different ranks");
    for (size_t k = 0; k < rank; ++k)
      if (int64_t(k) != axis && p->dims[k] != out.dims[k]) fail("concatenates arrays of different shapes");
    out.dims[size_t(axis)] += p->dims[size_t(axis)];
    check_count(product(out.dims), fail);
  }
  const int64_t outer = product({out.dims.begin(), out.dims.begin() + axis});
  for (int64_t o = 0; o < outer; ++o)
    for (const Array* p : parts) {
      const int64_t block = product({p->dims.begin() + axis, p->dims.end()});
      out.v.insert(out.v.end(), p->v.begin() + o * block, p->v.begin() + (o + 1) * block);
    }
  return out;
}

namespace {

std::vector<int64_t> unsqueezed(std::vector<int64_t> dims, std::vector<int64_t> axes, const Fail& fail) {
  const size_t rank = dims.size() + axes.size();
  for (int64_t& a : axes) a = normalize_axis(a, rank, fail);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) fail("lists an axis twice");
  for (int64_t a : axes) dims.insert(dims.begin() + a, 1);
  return dims;
}

std::vector<int64_t> squeezed(const std::vector<int64_t>& dims, std::vector<int64_t> axes, const Fail& fail) {
  for (int64_t& a : axes) a = normalize_axis(a, dims.size(), fail);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) fail("lists an axis twice");
  std::vector<int64_t> out;
  for (size_t k = 0; k < dims.size(); ++k) {
    const bool listed = std::find(axes.begin(), axes.end(), int64_t(k)) != axes.end();
    if (listed && dims[k] != 1) fail(fmt::format("squeezes axis {} of size {}", k, dims[k]));
    if (!(listed || (axes.empty() && dims[k] == 1))) out.push_back(dims[k]);
  }
  return out;
}

bool is_integer_type(int64_t onnx_type) {
  // FLOAT 1, FLOAT16 10, DOUBLE 11, BFLOAT16 16; everything else here is an integer or bool.
  return !(onnx_type == 1 || onnx_type == 10 || onnx_type == 11 || onnx_type == 16);
}

// Numpy-style binary ops; integer division truncates and Mod follows the divisor's sign (fmod=0),
// as ONNX defines them.
std::function<double(double, double)> binary_function(const std::string& op, bool integer,
                                                      int64_t fmod_attr) {
  if (op == "Add") return [](double a, double b) { return a + b; };
  if (op == "Sub") return [](double a, double b) { return a - b; };
  if (op == "Mul") return [](double a, double b) { return a * b; };
  if (op == "Div")
    return integer
               ? std::function<double(double, double)>([](double a, double b) { return std::trunc(a / b); })
               : [](double a, double b) { return a / b; };
  if (op == "Mod")
    return [fmod_attr](double a, double b) {
      double r = std::fmod(a, b);
      if (!fmod_attr && r != 0 && ((r < 0) != (b < 0))) r += b;
      return r;
    };
  if (op == "Pow") return [](double a, double b) { return std::pow(a, b); };
  if (op == "Max") return [](double a, double b) { return std::max(a, b); };
  if (op == "Min") return [](double a, double b) { return std::min(a, b); };
  if (op == "Equal") return [](double a, double b) { return double(a == b); };
  if (op == "Less") return [](double a, double b) { return double(a < b); };
  if (op == "Greater") return [](double a, double b) { return double(a > b); };
  if (op == "And") return [](double a, double b) { return double(a != 0 && b != 0); };
  if (op == "Or") return [](double a, double b) { return double(a != 0 || b != 0); };
  return nullptr;
}

std::function<double(double)> unary_function(const std::string& op) {
  if (op == "Neg") return [](double a) { return -a; };
  if (op == "Abs") return [](double a) { return std::fabs(a); };
  if (op == "Floor") return [](double a) { return std::floor(a); };
  if (op == "Ceil") return [](double a) { return std::ceil(a); };
  if (op == "Round") return [](double a) { return std::nearbyint(a); };
  if (op == "Sqrt") return [](double a) { return std::sqrt(a); };
  if (op == "Reciprocal") return [](double a) { return 1.0 / a; };
  if (op == "Not") return [](double a) { return double(a == 0); };
  return nullptr;
}

const Const& need(const std::vector<const Const*>& inputs, size_t k, const Fail& fail) {
  if (k >= inputs.size() || !inputs[k]) fail(fmt::format("input {} is missing", k + 1));
  return *inputs[k];
}

}  // namespace

int64_t Array::count() const {
  return product(dims);
}

Array Array::vector(std::vector<double> values) {
  Array a;
  a.dims = {int64_t(values.size())};
  a.v = std::move(values);
  return a;
}

std::vector<int64_t> broadcast_dims(const std::vector<int64_t>& a, const std::vector<int64_t>& b,
                                    const Fail& fail) {
  const size_t rank = std::max(a.size(), b.size());
  std::vector<int64_t> out(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(fmt::format("cannot broadcast {} with {}", dims_text(a), dims_text(b)));
    out[k] = da == 1 ? db : da;
  }
  return out;
}

Array reshape(const Array& a, const std::vector<int64_t>& target, bool allow_zero, const Fail& fail) {
  std::vector<int64_t> dims = target;
  int infer = -1;
  int64_t known = 1;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 0 && !allow_zero) {
      if (k >= a.dims.size())
        fail(fmt::format("Reshape to {} copies a dimension {} lacks", dims_text(target), dims_text(a.dims)));
      dims[k] = a.dims[k];
    }
    if (dims[k] == -1) {
      if (infer >= 0) fail(fmt::format("Reshape to {} has two -1 dimensions", dims_text(target)));
      infer = int(k);
    } else if (dims[k] < 0) {
      fail(fmt::format("Reshape to {} has a negative dimension", dims_text(target)));
    } else {
      known *= dims[k];
    }
  }
  const int64_t n = a.count();
  if (infer >= 0) {
    if (known == 0 || n % known)
      fail(fmt::format("cannot reshape {} to {}", dims_text(a.dims), dims_text(target)));
    dims[size_t(infer)] = n / known;
  }
  if (product(dims) != n) fail(fmt::format("cannot reshape {} to {}", dims_text(a.dims), dims_text(target)));
  return {dims, a.v};
}

Array expand(const Array& a, const std::vector<int64_t>& shape, const Fail& fail) {
  Array out;
  out.dims = broadcast_dims(a.dims, shape, fail);
  if (product(out.dims) > kMaxFoldedCount) fail("Expand is too large");
  const size_t rank = out.dims.size();
  std::vector<int64_t> da(rank - a.dims.size(), 1);
  da.insert(da.end(), a.dims.begin(), a.dims.end());
  std::vector<int64_t> step = strides_of(da);
  for (size_t k = 0; k < rank; ++k)
    if (da[k] == 1) step[k] = 0;
  out.v.resize(size_t(product(out.dims)));
  walk(out.dims, step, 0, [&](int64_t i, int64_t from) { out.v[size_t(i)] = a.v[size_t(from)]; });
  return out;
}

Array transpose(const Array& a, const std::vector<int64_t>& perm_in, const Fail& fail) {
  const size_t rank = a.dims.size();
  std::vector<int64_t> perm = perm_in;
  if (perm.empty())
    for (size_t k = 0; k < rank; ++k) perm.push_back(int64_t(rank - 1 - k));
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t k = 0; k < sorted.size(); ++k)
    if (sorted.size() != rank || sorted[k] != int64_t(k))
      fail(fmt::format("perm {} is not a permutation of {} axes", dims_text(perm), rank));
  Array out;
  for (int64_t p : perm) out.dims.push_back(a.dims[size_t(p)]);
  const std::vector<int64_t> si = strides_of(a.dims);
  std::vector<int64_t> step;
  for (int64_t p : perm) step.push_back(si[size_t(p)]);
  out.v.resize(size_t(a.count()));
  walk(out.dims, step, 0, [&](int64_t i, int64_t src) { out.v[size_t(i)] = a.v[size_t(src)]; });
  return out;
}

int alignment_for_division(const std::vector<double>& x, const std::vector<int>& sample_h,
                           const std::vector<int>& sample_w, double divisor, int current) {
  // x = a * H + b * W + c through the three samples (Cramer's rule).
  if (x.size() != 3 || sample_h.size() != 3 || sample_w.size() != 3) return 0;
  auto det3 = [](double m[3][3]) {
    return m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) -
           m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0]) +
           m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
  };
  double m[3][3], coef[3];
  for (int s = 0; s < 3; ++s) {
    m[s][0] = sample_h[size_t(s)];
    m[s][1] = sample_w[size_t(s)];
    m[s][2] = 1;
  }
  const double d = det3(m);
  for (int k = 0; k < 3; ++k) {
    double mk[3][3];
    for (int s = 0; s < 3; ++s)
      for (int j = 0; j < 3; ++j) mk[s][j] = j == k ? x[size_t(s)] : m[s][j];
    coef[k] = det3(mk) / d;
  }
  auto whole = [](double v) { return std::fabs(v - std::nearbyint(v)) < 1e-9; };
  for (int a = current; a <= 16; a *= 2)
    if (whole(coef[0] * a / divisor) && whole(coef[1] * a / divisor)) return a;
  return 0;
}

bool fold(const std::string& op, const std::vector<const Const*>& in, const Attributes& attrs,
          const FoldContext& cx, std::vector<Const>& out) {
  const Fail& fail = cx.fail;
  auto ints_of = [&](const Const& c, size_t s) { return as_ints(c.sample(s), fail); };
  if (op == "Identity" || op == "Dropout") {
    out = {need(in, 0, fail)};
    return true;
  }
  if (op == "Cast") {
    const Const& x = need(in, 0, fail);
    const int64_t to = attrs.i("to", 1);
    const bool integer = is_integer_type(to);
    out = {per_sample(in, cx, integer, [&](size_t s) {
      if (to == 9) return map_values(x.sample(s), [](double v) { return double(v != 0); });  // BOOL
      return integer && !x.integer ? map_values(x.sample(s), [](double v) { return std::trunc(v); })
                                   : x.sample(s);
    })};
    return true;
  }
  if (auto f = unary_function(op)) {
    const Const& x = need(in, 0, fail);
    out = {per_sample(in, cx, x.integer, [&](size_t s) { return map_values(x.sample(s), f); })};
    return true;
  }
  const bool comparison = op == "Equal" || op == "Less" || op == "Greater" || op == "And" || op == "Or";
  if (auto f = binary_function(op, need(in, 0, fail).integer && (in.size() < 2 || !in[1] || in[1]->integer),
                               attrs.i("fmod", 0))) {
    // Max and Min take any number of inputs; the others two.
    Const acc = need(in, 0, fail);
    for (size_t k = 1; k < in.size(); ++k) {
      const Const& b = need(in, k, fail);
      const bool integer = acc.integer && b.integer;
      if ((op == "Div" && integer) || op == "Mod") {
        for (size_t s = 0; s < (b.varies() ? cx.samples : 1); ++s)
          for (double v : b.sample(s).v)
            if (v == 0) fail("divides by zero");
        if (acc.varies() && !b.varies() && b.sample(0).count() == 1 && cx.divides)
          cx.divides(acc, b.sample(0).v[0]);
      }
      std::vector<const Const*> pair{&acc, &b};
      acc = per_sample(pair, cx, comparison || integer,
                       [&](size_t s) { return elementwise(acc.sample(s), b.sample(s), fail, f); });
    }
    out = {acc};
    return true;
  }
  if (op == "Where") {
    const Const &c = need(in, 0, fail), &a = need(in, 1, fail), &b = need(in, 2, fail);
    out = {per_sample(in, cx, a.integer && b.integer, [&](size_t s) {
      // By index: each output element learns which element of a, or else of b, it takes.
      const Array &cs = c.sample(s), &as = a.sample(s), &bs = b.sample(s);
      Array index_a = as, index_b = bs;
      std::iota(index_a.v.begin(), index_a.v.end(), 0.0);
      std::iota(index_b.v.begin(), index_b.v.end(), 0.0);
      auto first = [](double i, double) { return i; };
      const Array from_a =
          elementwise(elementwise(cs, index_a, fail, [](double cv, double i) { return cv != 0 ? i : -1.0; }),
                      index_b, fail, first);
      const Array from_b =
          elementwise(elementwise(cs, index_b, fail, [](double cv, double i) { return cv != 0 ? -1.0 : i; }),
                      index_a, fail, first);
      Array result = from_a;
      for (size_t k = 0; k < result.v.size(); ++k)
        result.v[k] = from_a.v[k] >= 0 ? as.v[size_t(from_a.v[k])] : bs.v[size_t(from_b.v[k])];
      return result;
    })};
    return true;
  }
  if (op == "Shape" || op == "Size") {
    const Const& x = need(in, 0, fail);
    out = {per_sample(in, cx, true, [&](size_t s) {
      const std::vector<int64_t>& dims = x.sample(s).dims;
      if (op == "Size") return Array::scalar(double(product(dims)));
      const int64_t rank = int64_t(dims.size());
      int64_t start = attrs.i("start", 0), end = attrs.i("end", rank);
      if (start < 0) start += rank;
      if (end < 0) end += rank;
      start = std::clamp<int64_t>(start, 0, rank);
      end = std::clamp<int64_t>(end, start, rank);
      return Array::vector({dims.begin() + start, dims.begin() + end});
    })};
    return true;
  }
  if (op == "Gather") {
    const Const &data = need(in, 0, fail), &idx = need(in, 1, fail);
    out = {per_sample(in, cx, data.integer, [&](size_t s) {
      return gather(data.sample(s), idx.sample(s), attrs.i("axis", 0), fail);
    })};
    return true;
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const Const& x = need(in, 0, fail);
    out = {per_sample(in, cx, x.integer, [&](size_t s) {
      std::vector<int64_t> axes = in.size() > 1 && in[1] ? ints_of(*in[1], s) : attrs.ints("axes");
      Array a = x.sample(s);
      a.dims = op == "Unsqueeze" ? unsqueezed(a.dims, axes, fail) : squeezed(a.dims, axes, fail);
      return a;
    })};
    return true;
  }
  if (op == "Concat") {
    bool integer = true;
    for (const Const* c : in) integer = integer && c && c->integer;
    out = {per_sample(in, cx, integer, [&](size_t s) {
      std::vector<const Array*> parts;
      for (size_t k = 0; k < in.size(); ++k) parts.push_back(&need(in, k, fail).sample(s));
      return concat(parts, attrs.i("axis", 0), fail);
    })};
    return true;
  }
  if (op == "Reshape") {
    const Const &x = need(in, 0, fail), &shape = need(in, 1, fail);
    out = {per_sample(in, cx, x.integer, [&](size_t s) {
      return reshape(x.sample(s), ints_of(shape, s), attrs.i("allowzero", 0) != 0, fail);
    })};
    return true;
  }
  if (op == "Transpose") {
    const Const& x = need(in, 0, fail);
    out = {per_sample(in, cx, x.integer,
                      [&](size_t s) { return transpose(x.sample(s), attrs.ints("perm"), fail); })};
    return true;
  }
  if (op == "Split") {  // a constant split into parts along an axis (exporters split repeat counts)
    const Const& x = need(in, 0, fail);
    std::vector<std::vector<int64_t>> sizes(cx.samples);
    for (size_t s = 0; s < cx.samples; ++s) {
      const Array& a = x.sample(s);
      int64_t axis = attrs.i("axis", 0);
      if (axis < 0) axis += int64_t(a.dims.size());
      if (axis < 0 || axis >= int64_t(a.dims.size())) fail("splits an axis the value lacks");
      const int64_t d = a.dims[size_t(axis)];
      if (in.size() > 1 && in[1])
        sizes[s] = ints_of(*in[1], s);
      else if (!attrs.ints("split").empty())
        sizes[s] = attrs.ints("split");
      else if (cx.outputs > 0 && d % int64_t(cx.outputs) == 0)
        sizes[s].assign(cx.outputs, d / int64_t(cx.outputs));
      int64_t total = 0;
      for (int64_t v : sizes[s]) total += v < 0 ? d + 1 : v;
      if (sizes[s].size() != cx.outputs || total != d)
        fail(fmt::format("splits {} values into parts that do not add up", d));
    }
    for (size_t k = 0; k < cx.outputs; ++k)
      out.push_back(per_sample(in, cx, x.integer, [&](size_t s) {
        int64_t axis = attrs.i("axis", 0);
        if (axis < 0) axis += int64_t(x.sample(s).dims.size());
        int64_t begin = 0;
        for (size_t j = 0; j < k; ++j) begin += sizes[s][j];
        return slice(x.sample(s), {begin}, {begin + sizes[s][k]}, {axis}, {}, fail);
      }));
    return true;
  }
  if (op == "Slice") {
    const Const& x = need(in, 0, fail);
    out = {per_sample(in, cx, x.integer, [&](size_t s) {
      if (in.size() == 1)  // opset < 10: attributes
        return slice(x.sample(s), attrs.ints("starts"), attrs.ints("ends"), attrs.ints("axes"), {}, fail);
      auto opt = [&](size_t k) {
        return k < in.size() && in[k] ? ints_of(*in[k], s) : std::vector<int64_t>{};
      };
      return slice(x.sample(s), opt(1), opt(2), opt(3), opt(4), fail);
    })};
    return true;
  }
  if (op == "ConstantOfShape") {
    const Const& shape = need(in, 0, fail);
    const Const* value = attrs.tensor("value");
    const double v = value ? scalar_of(value->sample(0), "value", fail) : 0.0;
    out = {per_sample(in, cx, value ? value->integer : false, [&](size_t s) {
      Array a;
      a.dims = ints_of(shape, s);
      for (int64_t d : a.dims)
        if (d < 0) fail("ConstantOfShape with a negative dimension");
      if (product(a.dims) > kMaxFoldedCount) fail("ConstantOfShape is too large");
      a.v.assign(size_t(product(a.dims)), v);
      return a;
    })};
    return true;
  }
  if (op == "Range") {
    const Const &start = need(in, 0, fail), &limit = need(in, 1, fail), &delta = need(in, 2, fail);
    out = {per_sample(in, cx, start.integer, [&](size_t s) {
      const double a = scalar_of(start.sample(s), "start", fail),
                   b = scalar_of(limit.sample(s), "limit", fail),
                   d = scalar_of(delta.sample(s), "delta", fail);
      if (d == 0) fail("Range with a step of 0");
      const double n = std::max(0.0, std::ceil((b - a) / d));
      if (n > double(kMaxFoldedCount)) fail("Range is too long");
      std::vector<double> v;
      for (int64_t k = 0; k < int64_t(n); ++k) v.push_back(a + double(k) * d);
      return Array::vector(std::move(v));
    })};
    return true;
  }
  if (op == "ScatterND") {  // constants written in slices (Swin's attention mask regions)
    const Const &data = need(in, 0, fail), &indices = need(in, 1, fail), &updates = need(in, 2, fail);
    if (attrs.i("reduction", 0) != 0) fail("ScatterND with a reduction is not folded");
    out = {per_sample(in, cx, data.integer, [&](size_t s) {
      Array a = data.sample(s);
      const Array &idx = indices.sample(s), &up = updates.sample(s);
      if (idx.dims.empty()) fail("ScatterND indices have no dimensions");
      const size_t k = size_t(idx.dims.back());
      if (k == 0 || k > a.dims.size()) fail("ScatterND indices are longer than the data's rank");
      const std::vector<int64_t> strides = strides_of(a.dims);
      const int64_t slice = product({a.dims.begin() + int64_t(k), a.dims.end()});
      const int64_t tuples = product({idx.dims.begin(), idx.dims.end() - 1});
      if (up.count() != tuples * slice) fail("ScatterND updates do not match its indices");
      for (int64_t t = 0; t < tuples; ++t) {
        int64_t offset = 0;
        for (size_t j = 0; j < k; ++j) {
          int64_t v = int64_t(idx.v[size_t(t * int64_t(k) + int64_t(j))]);
          if (v < 0) v += a.dims[j];
          if (v < 0 || v >= a.dims[j]) fail("ScatterND index out of range");
          offset += v * strides[j];
        }
        for (int64_t i = 0; i < slice; ++i) a.v[size_t(offset + i)] = up.v[size_t(t * slice + i)];
      }
      return a;
    })};
    return true;
  }
  if (op == "Expand") {
    const Const &x = need(in, 0, fail), &shape = need(in, 1, fail);
    out = {per_sample(in, cx, x.integer,
                      [&](size_t s) { return expand(x.sample(s), ints_of(shape, s), fail); })};
    return true;
  }
  return false;
}

}  // namespace upres::onnx_fold
