// Graph rewrites that keep results equal (within float rounding) and make execution cheaper.
#pragma once

#include "ops/graph.hpp"

namespace upres {

// Folds into each convolution/deconvolution the activation that alone consumes it (PReLU,
// ReLU, Sigmoid, Clip) and then the residual add that alone consumes that (Eltwise sum or
// BinaryOp add of a same-shaped tensor computed earlier), so a backend can run
// conv + bias + activation + residual as one kernel. `probe` is an input shape the graph
// accepts; shapes at it decide whether an add broadcasts (then it is not folded).
void fuse_conv_epilogues(Graph& graph, Shape probe);

// Rewrites x * sigmoid(x) (how exporters write SiLU/Swish) as one Swish op, where the sigmoid's
// output is read only by that product, so that it folds into a convolution like ncnn's Swish.
void fold_written_out_swish(Graph& graph);

// Folds a per-channel scale (and shift) that alone reads a LayerNorm or GroupNorm into that
// norm's own scale and shift (exporters write a norm's affine step as Mul and Add).
void fold_scales_into_norms(Graph& graph);

// Folds a per-channel scale (and shift) that alone reads a convolution with no activation into its
// weights and bias (a linear layer's bias, which exporters write as an Add after the MatMul), so
// that the activation after it fuses into the convolution too.
void fold_scales_into_convs(Graph& graph);

// The part of the graph that computes `blob`, which becomes the output: nodes it does not need
// are dropped (blob numbering and names stay, so int8 tables still apply).
Graph graph_until(const Graph& graph, int blob);

// The graph with the global average poolings at `nodes` (indices into graph.nodes) replaced by
// Given nodes reading values[k] for nodes[k]: a tiled run hands in frame-wide means that no
// single tile could compute. `values` must outlive the graph.
Graph graph_with_given_poolings(const Graph& graph, const std::vector<int>& nodes,
                                const std::vector<std::vector<float>>& values, Shape probe);

}  // namespace upres
