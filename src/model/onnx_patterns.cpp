#include "model/onnx_patterns.hpp"

#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/float16.hpp"

namespace upres {
namespace {

class Matcher {
 public:
  explicit Matcher(const onnx::GraphProto& g) : g_(g) {
    for (int i = 0; i < g.node_size(); ++i) {
      index_[&g.node(i)] = i;
      for (const std::string& out : g.node(i).output()) producer_[out] = i;
      for (const std::string& in : g.node(i).input()) reader_nodes_[in].push_back(i);
    }
    for (const onnx::ValueInfoProto& out : g.output()) reader_nodes_[out.name()].push_back(-1);
    for (const onnx::TensorProto& t : g.initializer()) initializer_[t.name()] = &t;
    rewrites_.skip.assign(size_t(g.node_size()), false);
  }

  OnnxRewrites run() {
    for (int i = 0; i < g_.node_size(); ++i) {
      if (rewrites_.skip[size_t(i)]) continue;
      const std::string& op = g_.node(i).op_type();
      if (op == "Erf") match_gelu(i);
      if (op == "ReduceMean") match_channel_norm(i);
    }
    return std::move(rewrites_);
  }

 private:
  const onnx::NodeProto* producer(const std::string& value) const {
    auto it = producer_.find(value);
    return it == producer_.end() ? nullptr : &g_.node(it->second);
  }
  // (A repeated field's elements are allocated one by one: no pointer arithmetic between them.)
  int index_of(const onnx::NodeProto* n) const { return index_.at(n); }
  // Reads of `value`: one per node input that names it (and one for a graph output).
  const std::vector<int>& reader_list(const std::string& value) const {
    static const std::vector<int> none;
    auto it = reader_nodes_.find(value);
    return it == reader_nodes_.end() ? none : it->second;
  }
  int readers(const std::string& value) const { return int(reader_list(value).size()); }
  // The one node reading `value`, once (nullptr when none or several do).
  const onnx::NodeProto* only_reader(const std::string& value) const {
    const std::vector<int>& r = reader_list(value);
    return r.size() == 1 && r[0] >= 0 ? &g_.node(r[0]) : nullptr;
  }
  // A constant holding one number (a Constant node or an initializer).
  std::optional<double> scalar(const std::string& value) const {
    const onnx::TensorProto* t = nullptr;
    if (auto it = initializer_.find(value); it != initializer_.end()) t = it->second;
    if (const onnx::NodeProto* n = producer(value); n && n->op_type() == "Constant")
      for (const onnx::AttributeProto& a : n->attribute()) {
        if (a.name() == "value" && a.has_t()) t = &a.t();
        if (a.name() == "value_float") return a.f();
      }
    if (!t) return std::nullopt;
    int64_t count = 1;
    for (int64_t d : t->dims()) count *= d;
    if (count != 1) return std::nullopt;
    const std::string& raw = t->raw_data();
    switch (t->data_type()) {
      case onnx::TensorProto_DataType_FLOAT: {
        if (t->float_data_size() == 1) return t->float_data(0);
        if (raw.size() != 4) return std::nullopt;
        float f;
        std::memcpy(&f, raw.data(), 4);
        return f;
      }
      case onnx::TensorProto_DataType_DOUBLE: {
        if (t->double_data_size() == 1) return t->double_data(0);
        if (raw.size() != 8) return std::nullopt;
        double d;
        std::memcpy(&d, raw.data(), 8);
        return d;
      }
      case onnx::TensorProto_DataType_FLOAT16: {
        uint16_t bits;
        if (t->int32_data_size() == 1) {
          bits = uint16_t(t->int32_data(0));
        } else {
          if (raw.size() != 2) return std::nullopt;
          std::memcpy(&bits, raw.data(), 2);
        }
        return half_to_float(bits);
      }
      default: return std::nullopt;
    }
  }
  // Within float16's rounding (2^-10 relative): fp16 models store sqrt(2) as 1.4140625.
  static bool near(std::optional<double> v, double want) {
    return v && std::fabs(*v - want) <= 1e-3 * std::max(1.0, std::fabs(want));
  }
  // For a two-input node, the input that is not `known` (empty when neither input is `known`).
  static std::string other_input(const onnx::NodeProto& n, const std::string& known) {
    if (n.input_size() != 2) return "";
    if (n.input(0) == known) return n.input(1);
    if (n.input(1) == known) return n.input(0);
    return "";
  }
  // The value of a two-input `op` node other than a constant equal to `c`.
  std::string operand_beside(const onnx::NodeProto& n, const char* op, double c) const {
    if (n.op_type() != op || n.input_size() != 2) return "";
    if (near(scalar(n.input(1)), c)) return n.input(0);
    if (near(scalar(n.input(0)), c)) return n.input(1);
    return "";
  }

  void replace(const std::vector<const onnx::NodeProto*>& nodes, onnx::NodeProto fused) {
    int last = -1;
    for (const onnx::NodeProto* n : nodes) last = std::max(last, index_of(n));
    for (const onnx::NodeProto* n : nodes) rewrites_.skip[size_t(index_of(n))] = true;
    rewrites_.skip[size_t(last)] = false;
    rewrites_.replacement[last] = std::move(fused);
  }

  // Erf at `e`: x / sqrt(2) (or x * (1/sqrt 2)) -> Erf -> + 1 -> times x and 0.5 in any order.
  void match_gelu(int e) {
    const onnx::NodeProto& erf = g_.node(e);
    if (erf.input_size() != 1 || readers(erf.input(0)) != 1) return;
    const onnx::NodeProto* scaled = producer(erf.input(0));
    if (!scaled) return;
    std::string x = operand_beside(*scaled, "Div", M_SQRT2);
    if (x.empty()) x = operand_beside(*scaled, "Mul", M_SQRT1_2);
    if (x.empty() || scaled->input(0) != x) return;
    const onnx::NodeProto* plus_one = only_reader(erf.output(0));
    if (!plus_one || operand_beside(*plus_one, "Add", 1.0) != erf.output(0)) return;
    const onnx::NodeProto* m1 = only_reader(plus_one->output(0));
    if (!m1 || m1->op_type() != "Mul") return;
    const std::string with = other_input(*m1, plus_one->output(0));
    std::vector<const onnx::NodeProto*> nodes = {scaled, &erf, plus_one, m1};
    const onnx::NodeProto* last = nullptr;
    if (with == x) {  // (x * (1 + erf)) * 0.5
      const onnx::NodeProto* m2 = only_reader(m1->output(0));
      if (m2 && operand_beside(*m2, "Mul", 0.5) == m1->output(0)) last = m2;
    } else if (near(scalar(with), 0.5)) {  // x * ((1 + erf) * 0.5)
      const onnx::NodeProto* m2 = only_reader(m1->output(0));
      if (m2 && m2->op_type() == "Mul" && other_input(*m2, m1->output(0)) == x) last = m2;
    } else if (const onnx::NodeProto* half = producer(with);  // (x * 0.5) * (1 + erf)
               half && readers(with) == 1 && operand_beside(*half, "Mul", 0.5) == x) {
      nodes.push_back(half);
      last = m1;
    }
    if (!last) return;
    nodes.push_back(last);
    onnx::NodeProto gelu;
    gelu.set_op_type("Gelu");
    gelu.set_name(erf.name());
    gelu.add_input(x);
    gelu.add_output(last->output(0));
    replace(nodes, std::move(gelu));
  }

  // ReduceMean over axis 1 (channels first) or the last axis (tokens x channels), from its attribute
  // or (opset 18) input, keeping it: the axis, else 0.
  int64_t mean_over_channels(const onnx::NodeProto& n) const {
    if (n.op_type() != "ReduceMean" || n.input_size() < 1) return false;
    std::vector<int64_t> axes;
    int64_t keepdims = 1;
    for (const onnx::AttributeProto& a : n.attribute()) {
      if (a.name() == "axes") axes.assign(a.ints().begin(), a.ints().end());
      if (a.name() == "keepdims") keepdims = a.i();
    }
    if (axes.empty() && n.input_size() > 1) {
      const std::optional<double> axis = scalar(n.input(1));
      if (!axis) return 0;
      axes = {int64_t(*axis)};
    }
    if (keepdims != 1 || axes.size() != 1) return 0;
    return axes[0] == 1 || axes[0] == -3 ? 1 : axes[0] == -1 ? -1 : 0;
  }

  // ReduceMean(x, 1) at `r`: d = x - mean; d / sqrt(ReduceMean(d * d or d ^ 2, 1) + eps).
  void match_channel_norm(int r) {
    const onnx::NodeProto& mean = g_.node(r);
    const int64_t axis = mean_over_channels(mean);
    if (axis == 0) return;
    const std::string x = mean.input(0);
    // The centred values: one Sub (or two, when the exporter did not share it) of x less the mean.
    const std::vector<int>& mean_readers = reader_list(mean.output(0));
    if (mean_readers.empty() || mean_readers.size() > 2) return;
    std::vector<const onnx::NodeProto*> subs;
    for (int i : mean_readers) {
      if (i < 0) return;
      const onnx::NodeProto& n = g_.node(i);
      if (n.op_type() != "Sub" || n.input_size() != 2 || n.input(0) != x || n.input(1) != mean.output(0))
        return;
      subs.push_back(&n);
    }
    const onnx::NodeProto *square = nullptr, *divide = nullptr;
    int sub_reads = 0;
    for (const onnx::NodeProto* sub : subs) {
      const std::string& d = sub->output(0);
      for (int i : reader_list(d)) {
        ++sub_reads;
        if (i < 0) return;
        const onnx::NodeProto& n = g_.node(i);
        if (n.op_type() == "Pow" && n.input_size() == 2 && n.input(0) == d && near(scalar(n.input(1)), 2.0))
          square = &n;
        else if (n.op_type() == "Mul" && n.input_size() == 2 && n.input(0) == d && n.input(1) == d)
          square = &n;
        else if (n.op_type() == "Div" && n.input_size() == 2 && n.input(0) == d)
          divide = &n;
        else
          return;  // the centred values are read outside the pattern
      }
    }
    if (!square || !divide || sub_reads != (square->op_type() == "Mul" ? 3 : 2)) return;
    const onnx::NodeProto* variance = only_reader(square->output(0));
    if (!variance || mean_over_channels(*variance) != axis || variance->input(0) != square->output(0)) return;
    const onnx::NodeProto* plus_eps = only_reader(variance->output(0));
    if (!plus_eps || plus_eps->op_type() != "Add") return;
    const std::optional<double> eps = scalar(other_input(*plus_eps, variance->output(0)));
    if (!eps || !(*eps >= 0) || *eps > 1) return;
    const onnx::NodeProto* root = only_reader(plus_eps->output(0));
    if (!root || root->op_type() != "Sqrt" || divide->input(1) != root->output(0) ||
        readers(root->output(0)) != 1)
      return;
    onnx::NodeProto norm;
    norm.set_op_type("ChannelLayerNorm");
    norm.set_name(mean.name());
    norm.add_input(x);
    norm.add_output(divide->output(0));
    onnx::AttributeProto* a = norm.add_attribute();
    a->set_name("epsilon");
    a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    a->set_f(float(*eps));
    onnx::AttributeProto* along = norm.add_attribute();
    along->set_name("axis");
    along->set_type(onnx::AttributeProto_AttributeType_INT);
    along->set_i(axis);
    std::vector<const onnx::NodeProto*> nodes = {&mean, square, variance, plus_eps, root, divide};
    nodes.insert(nodes.end(), subs.begin(), subs.end());
    replace(nodes, std::move(norm));
  }

  const onnx::GraphProto& g_;
  std::unordered_map<const onnx::NodeProto*, int> index_;
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, std::vector<int>> reader_nodes_;
  std::unordered_map<std::string, const onnx::TensorProto*> initializer_;
  OnnxRewrites rewrites_;
};

}  // namespace

OnnxRewrites find_onnx_patterns(const onnx::GraphProto& graph) {
  return Matcher(graph).run();
}

}  // namespace upres
