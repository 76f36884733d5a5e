// Graph rewrites that keep results equal (within float rounding) and make execution cheaper.
#pragma once

#include "model/graph.hpp"

namespace upres {

// Folds into each convolution/deconvolution the activation that alone consumes it (PReLU,
// ReLU, Sigmoid, Clip) and then the residual add that alone consumes that (Eltwise sum or
// BinaryOp add of a same-shaped tensor computed earlier), so a backend can run
// conv + bias + activation + residual as one kernel. `probe` is an input shape the graph
// accepts; shapes at it decide whether an add broadcasts (then it is not folded).
void fuse_conv_epilogues(Graph& graph, Shape probe);

}  // namespace upres
