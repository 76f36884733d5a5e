#include "model/passes.hpp"

#include <algorithm>

namespace upres {
namespace {

// How many nodes read each blob.
std::vector<int> reader_counts(const Graph& g) {
  std::vector<int> n(g.blob_names.size(), 0);
  for (const Node& node : g.nodes)
    for (int b : node.inputs) ++n[size_t(b)];
  return n;
}

bool is_conv(const Node& n) {
  return n.type == OpType::convolution || n.type == OpType::deconvolution;
}

// Who reads and writes each blob, kept up to date while nodes are folded into others. Folded nodes
// are only marked and removed together at the end, so node indices never move and every pass
// stays linear in the graph's size (a 100,000-node chain folds in milliseconds).
struct Folding {
  explicit Folding(const Graph& g)
      : readers(reader_counts(g)),
        reader(g.blob_names.size(), -1),
        producer(g.blob_names.size(), -1),
        dropped(g.nodes.size(), 0) {
    for (size_t k = 0; k < g.nodes.size(); ++k) {
      for (int b : g.nodes[k].inputs) reader[size_t(b)] = int(k);
      for (int b : g.nodes[k].outputs) producer[size_t(b)] = int(k);
    }
  }
  std::vector<int> readers;   // how many nodes read each blob
  std::vector<int> reader;    // a node that reads it (the only one where readers is 1)
  std::vector<int> producer;  // the node that writes it
  std::vector<char> dropped;  // folded into another node

  // Moves `absorbed`'s output onto `node` and drops `absorbed`.
  void take_output(Graph& g, size_t node, size_t absorbed) {
    g.nodes[node].outputs = g.nodes[absorbed].outputs;
    for (int b : g.nodes[node].outputs) producer[size_t(b)] = int(node);
    dropped[absorbed] = 1;
  }
  void remove_dropped(Graph& g) const {
    size_t kept = 0;
    for (size_t k = 0; k < g.nodes.size(); ++k)
      if (!dropped[k]) {
        if (kept != k) g.nodes[kept] = std::move(g.nodes[k]);
        ++kept;
      }
    g.nodes.resize(kept);
  }
};

bool fold_activation(Graph& g, size_t i, Folding& f) {
  Node& conv = g.nodes[i];
  int out = conv.outputs[0];
  if (conv.p<ConvParams>().activation.type != Activation::none || conv.inputs.size() != 1 ||
      f.readers[size_t(out)] != 1 || out == g.output_blob)
    return false;
  const int j = f.reader[size_t(out)];
  Node& act = g.nodes[size_t(j)];
  ActivationParams a;
  switch (act.type) {
    case OpType::prelu:
      if (act.weights[0].values.size() != 1 &&
          int(act.weights[0].values.size()) != conv.p<ConvParams>().out_channels)
        return false;
      a.type = Activation::prelu;
      break;
    case OpType::relu:
      a.type = act.p<ReluParams>().slope == 0 ? Activation::relu : Activation::leaky_relu;
      a.alpha = act.p<ReluParams>().slope;
      break;
    case OpType::sigmoid: a.type = Activation::sigmoid; break;
    case OpType::swish: a.type = Activation::swish; break;
    case OpType::tanh: a.type = Activation::tanh; break;
    case OpType::mish: a.type = Activation::mish; break;
    case OpType::gelu: a.type = Activation::gelu; break;
    case OpType::clip:
      a.type = Activation::clip;
      a.alpha = act.p<ClipParams>().min;
      a.beta = act.p<ClipParams>().max;
      break;
    default: return false;
  }
  auto& p = conv.p<ConvParams>();
  p.activation = a;
  if (a.type == Activation::prelu) {
    if (!p.bias)
      conv.weights.emplace_back(Shape{p.out_channels, 1, 1}, std::vector<float>(size_t(p.out_channels), 0.f));
    p.bias = true;  // the slopes sit at weights[2], so weights[1] must exist
    conv.weights.push_back(act.weights[0]);
  }
  f.readers[size_t(out)] = 0;
  f.take_output(g, i, size_t(j));
  return true;
}

bool fold_residual(Graph& g, size_t i, Folding& f, const std::vector<Shape>& shapes) {
  Node& conv = g.nodes[i];
  int out = conv.outputs[0];
  if (conv.inputs.size() != 1 || f.readers[size_t(out)] != 1 || out == g.output_blob) return false;
  const int j = f.reader[size_t(out)];
  const Node& add = g.nodes[size_t(j)];
  if (add.inputs.size() != 2 || add.inputs[0] == add.inputs[1]) return false;
  float self_scale = 1, other_scale = 1;
  int side = add.inputs[0] == out ? 0 : 1;
  if (add.type == OpType::eltwise && add.p<EltwiseParams>().kind == EltwiseKind::sum) {
    const auto& c = add.p<EltwiseParams>().coeffs;
    if (!c.empty()) {
      self_scale = c[size_t(side)];
      other_scale = c[size_t(1 - side)];
    }
  } else if (add.type == OpType::binary_op && add.p<BinaryOpParams>().kind == BinaryOpKind::add &&
             !add.p<BinaryOpParams>().with_scalar) {
  } else {
    return false;
  }
  int other = add.inputs[size_t(1 - side)];
  // The residual must exist when the convolution runs and must not broadcast.
  if (f.producer[size_t(other)] > int(i) || shapes[size_t(other)] != shapes[size_t(out)]) return false;
  auto& p = conv.p<ConvParams>();
  p.residual_scale_self = self_scale;
  p.residual_scale_other = other_scale;
  conv.inputs.push_back(other);
  f.readers[size_t(out)] = 0;
  if (f.reader[size_t(other)] == j) f.reader[size_t(other)] = int(i);  // the add's read is now the conv's
  f.take_output(g, i, size_t(j));
  return true;
}

}  // namespace

void fuse_conv_epilogues(Graph& g, Shape probe) {
  const std::vector<Shape> shapes = g.infer_shapes(probe);
  Folding f(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (f.dropped[i] || !is_conv(g.nodes[i])) continue;
    fold_activation(g, i, f);
    fold_residual(g, i, f, shapes);
  }
  f.remove_dropped(g);
}

void fold_written_out_swish(Graph& g) {
  Folding f(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& mul = g.nodes[i];
    if (mul.type != OpType::binary_op || mul.p<BinaryOpParams>().kind != BinaryOpKind::mul ||
        mul.p<BinaryOpParams>().with_scalar || mul.inputs.size() != 2)
      continue;
    for (int side = 0; side < 2; ++side) {
      const int s = mul.inputs[size_t(side)], x = mul.inputs[size_t(1 - side)];
      const int k = f.producer[size_t(s)];
      if (k < 0 || f.dropped[size_t(k)] || g.nodes[size_t(k)].type != OpType::sigmoid ||
          g.nodes[size_t(k)].inputs[0] != x || f.readers[size_t(s)] != 1 || s == g.output_blob)
        continue;
      mul.type = OpType::swish;
      mul.params = NoParams{};
      mul.inputs = {x};
      f.dropped[size_t(k)] = 1;
      f.readers[size_t(s)] = 0;
      --f.readers[size_t(x)];  // the sigmoid's read of x is gone; the swish keeps the product's
      break;
    }
  }
  f.remove_dropped(g);
}

// The node whose output only the per-channel scale at `i` reads (and not the graph's output),
// or -1: what a scale may fold into.
int sole_producer_of_scale(const Graph& g, const Folding& f, size_t i) {
  const Node& scale = g.nodes[i];
  if (scale.type != OpType::scale || scale.p<ScaleParams>().from_input) return -1;
  const int x = scale.inputs[0];
  const int k = f.producer[size_t(x)];
  if (k < 0 || f.dropped[size_t(k)] || f.readers[size_t(x)] != 1 || x == g.output_blob) return -1;
  return k;
}

void fold_scales_into_norms(Graph& g) {
  Folding f(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const int k = sole_producer_of_scale(g, f, i);
    if (k < 0) continue;
    const Node& scale = g.nodes[i];
    Node& norm = g.nodes[size_t(k)];
    bool* affine = norm.type == OpType::channel_norm ? &norm.p<ChannelNormParams>().affine
                   : norm.type == OpType::group_norm ? &norm.p<GroupNormParams>().affine
                                                     : nullptr;
    if (!affine) continue;
    const std::vector<float>& factor = scale.weights[0].values;
    const size_t channels = factor.size();
    if (!*affine) {
      norm.weights = {Tensor(Shape{int(channels), 1, 1}, std::vector<float>(channels, 1.f)),
                      Tensor(Shape{int(channels), 1, 1}, std::vector<float>(channels, 0.f))};
      *affine = true;
    }
    if (norm.weights[0].values.size() != channels) continue;
    // norm * gamma + beta, then * factor + bias: gamma * factor and beta * factor + bias.
    for (size_t c = 0; c < channels; ++c) {
      norm.weights[0].values[c] *= factor[c];
      norm.weights[1].values[c] = norm.weights[1].values[c] * factor[c] +
                                  (scale.p<ScaleParams>().bias ? scale.weights[1].values[c] : 0.f);
    }
    f.readers[size_t(scale.inputs[0])] = 0;
    f.take_output(g, size_t(k), i);
  }
  f.remove_dropped(g);
}

void fold_scales_into_convs(Graph& g) {
  Folding f(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const int k = sole_producer_of_scale(g, f, i);
    if (k < 0) continue;
    const Node& scale = g.nodes[i];
    Node& conv = g.nodes[size_t(k)];
    if (conv.type != OpType::convolution || conv.inputs.size() != 1) continue;
    auto& p = conv.p<ConvParams>();
    const std::vector<float>& factor = scale.weights[0].values;
    if (p.activation.type != Activation::none || int(factor.size()) != p.out_channels) continue;
    // (W x + b) * f + c = (f W) x + (f b + c), output channel by output channel.
    std::vector<float>& w = conv.weights[0].values;
    const size_t per_output = w.size() / factor.size();
    for (size_t o = 0; o < factor.size(); ++o)
      for (size_t e = 0; e < per_output; ++e) w[o * per_output + e] *= factor[o];
    if (!p.bias) {
      conv.weights.insert(conv.weights.begin() + 1,
                          Tensor(Shape{p.out_channels, 1, 1}, std::vector<float>(factor.size(), 0.f)));
      p.bias = true;
    }
    for (size_t o = 0; o < factor.size(); ++o)
      conv.weights[1].values[o] = conv.weights[1].values[o] * factor[o] +
                                  (scale.p<ScaleParams>().bias ? scale.weights[1].values[o] : 0.f);
    f.readers[size_t(scale.inputs[0])] = 0;
    f.take_output(g, size_t(k), i);
  }
  f.remove_dropped(g);
}

Graph graph_until(const Graph& graph, int blob) {
  std::vector<bool> needed(graph.blob_names.size(), false);
  needed[size_t(blob)] = true;
  std::vector<bool> keep(graph.nodes.size(), false);
  for (size_t i = graph.nodes.size(); i-- > 0;) {
    const Node& n = graph.nodes[i];
    for (int b : n.outputs) keep[i] = keep[i] || needed[size_t(b)];
    if (keep[i])
      for (int b : n.inputs) needed[size_t(b)] = true;
  }
  Graph part;  // the metadata alone: copying every node's weights only to drop them is costly
  part.source = graph.source;
  part.blob_names = graph.blob_names;
  part.input_blob = graph.input_blob;
  part.input_alignment = graph.input_alignment;
  part.input_pad_mode = graph.input_pad_mode;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (keep[i]) part.nodes.push_back(graph.nodes[i]);
  part.output_blob = blob;
  part.validate();
  return part;
}

Graph graph_with_given_poolings(const Graph& graph, const std::vector<int>& nodes,
                                const std::vector<std::vector<float>>& values, Shape probe) {
  UPRES_ASSERT(nodes.size() == values.size());
  const std::vector<Shape> shapes = graph.infer_shapes(probe);
  Graph g = graph;
  for (size_t k = 0; k < nodes.size(); ++k) {
    Node& n = g.nodes[size_t(nodes[k])];
    UPRES_ASSERT(is_global_average_pooling(n));
    n.type = OpType::given;
    // The input stays, unread: the graph keeps its readers, so every plan made from it (int8
    // storage, buffer lifetimes) is the untiled graph's.
    n.params = GivenParams{shapes[size_t(n.outputs[0])].c, &values[k]};
    n.weights.clear();
  }
  g.validate();
  return g;
}

}  // namespace upres
