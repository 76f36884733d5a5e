// Patterns exporters write out op by op, recognised in an ONNX graph before import so that each
// becomes one IR op with a fast kernel:
//   - GELU through Erf: x * 0.5 * (1 + erf(x / sqrt 2)), in any of its association orders;
//   - LayerNorm over channels written out (SAFMN, ConvNeXt's "channels first" LayerNorm):
//     d = x - ReduceMean(x, axis 1); d / sqrt(ReduceMean(d^2, axis 1) + eps); or over the last axis
//     (a transformer's tokens x channels, as exporters before opset 17 write LayerNorm).
// A match is replaced by one node the importer reads like any other ("Gelu", the ONNX op of
// opset 20, and "ChannelLayerNorm", upres's own name with `epsilon` and `axis`, 1 or -1, attributes), placed
// where the pattern's last node was; the pattern's other nodes are skipped. Only nodes whose outputs nothing
// outside the pattern reads are folded.
#pragma once

#include <map>
#include <vector>

#include <onnx/onnx_pb.h>

namespace upres {

struct OnnxRewrites {
  std::vector<bool> skip;                      // per node of the graph
  std::map<int, onnx::NodeProto> replacement;  // node index -> the node imported in its place
};

OnnxRewrites find_onnx_patterns(const onnx::GraphProto& graph);

}  // namespace upres
