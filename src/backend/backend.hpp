// Backends execute a graph. A backend compiles a graph for one input shape into an Executor
// that owns every buffer and kernel it needs, so running it allocates nothing.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "model/graph.hpp"
#include "upres/int8.hpp"
#include "upres/upscaler.hpp"

namespace upres {

// Shown a blob's value (plain c x h x w) as soon as a run makes it.
using BlobObserver = std::function<void(int blob, const TensorView& value)>;

class Executor {
 public:
  virtual ~Executor() = default;
  // Reads `input` (plain c x h x w of the compiled shape) and writes the graph's output into
  // `output` (plain, of output_shape()).
  virtual void run(const TensorView& input, const TensorView& output) = 0;
  virtual Shape output_shape() const = 0;
  // Bytes of activation memory the executor holds.
  virtual int64_t memory_bytes() const = 0;
  // Runs like run(), showing `observe` each blob that compile() was asked to let be observed.
  virtual void run_observed(const TensorView& input, const TensorView& output,
                            const BlobObserver& observe) = 0;

  // Frame-wide averages for tiled runs. Squeeze-excitation blocks (Real-CUGAN, waifu2x CUNet)
  // average a feature map over the whole frame, which no tile sees; the runtime gathers those
  // averages from all tiles first (upscaler.cpp) and hands them in. `node` is the index of a
  // global average pooling node (is_global_average_pooling).
  //
  // With means set, that node outputs them instead of the average of its own input; nullptr goes
  // back to computing it.
  void set_pooled_means(int node, const std::vector<float>* means) { pooled_means_[node] = means; }
  // Runs the graph only as far as `node` and shows `visit` the node's input (plain c x h x w)
  // instead of finishing.
  void run_to_pooling(const TensorView& input, int node, const std::function<void(const TensorView&)>& visit);

 protected:
  // For backends, at a global average pooling node: true when a partial run stops here (the
  // input has then been shown to the visitor), else the means to output (nullptr: compute them).
  bool stop_at_pooling(int node, const TensorView& pooling_input);
  const std::vector<float>* pooled_means(int node) const;
  // Runs until stop_at_pooling() says stop; the output is not written.
  virtual void run_partial(const TensorView& input) = 0;

 private:
  std::map<int, const std::vector<float>*> pooled_means_;
  int stop_at_ = -1;
  const std::function<void(const TensorView&)>* visit_ = nullptr;
};

inline bool is_global_average_pooling(const Node& node) {
  return node.type == OpType::pooling && node.p<PoolingParams>().global &&
         node.p<PoolingParams>().kind == PoolKind::average;
}

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // The graph must outlive the executor (weights are read from it, or copied once). `observed`:
  // blobs that run_observed() shows (calibration); they cost a copy each run.
  virtual std::unique_ptr<Executor> compile(const Graph& graph, Shape input,
                                            const std::vector<int>& observed = {}) = 0;
  // The graph this backend prefers to run (after its fusion passes); equal in results.
  virtual std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const;
};

// With an int8 calibration, convolutions the int8 plan picks run in int8 (model/int8_plan.hpp):
// for real on the cpu backend, emulated in float by the reference backend.
std::unique_ptr<Backend> make_reference_backend(std::shared_ptr<const Int8Calibration> int8 = nullptr);
std::unique_ptr<Backend> make_cpu_backend(int threads, std::shared_ptr<const Int8Calibration> int8 = nullptr);
std::unique_ptr<Backend> make_backend(BackendKind kind, int threads,
                                      std::shared_ptr<const Int8Calibration> int8 = nullptr);

// Whether int8 pays on this backend and machine (Precision::automatic asks).
bool backend_runs_int8_fast(BackendKind kind);

// Runs `graph` in float32 with the reference kernels, showing every blob to `observe` as soon as
// it is made (the input first).
void run_reference_observed(const Graph& graph, const TensorView& input, const TensorView& output,
                            const BlobObserver& observe);

// Peak bytes of live blobs when the graph runs op by op, freeing each blob after its last use.
int64_t estimate_activation_bytes(const Graph& graph, Shape input);

}  // namespace upres
