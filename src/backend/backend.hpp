// Backends execute a graph. A backend compiles a graph for one input shape into an Executor
// that owns every buffer and kernel it needs, so running it allocates nothing.
#pragma once

#include <memory>

#include "model/graph.hpp"
#include "upres/upscaler.hpp"

namespace upres {

class Executor {
 public:
  virtual ~Executor() = default;
  // Reads `input` (plain c x h x w of the compiled shape) and writes the graph's output into
  // `output` (plain, of output_shape()).
  virtual void run(const TensorView& input, const TensorView& output) = 0;
  virtual Shape output_shape() const = 0;
  // Bytes of activation memory the executor holds.
  virtual int64_t memory_bytes() const = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // The graph must outlive the executor (weights are read from it, or copied once).
  virtual std::unique_ptr<Executor> compile(const Graph& graph, Shape input) = 0;
  // The graph this backend prefers to run (after its fusion passes); equal in results.
  virtual std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const;
};

std::unique_ptr<Backend> make_reference_backend();
std::unique_ptr<Backend> make_cpu_backend(int threads);
std::unique_ptr<Backend> make_backend(BackendKind kind, int threads);

// Peak bytes of live blobs when the graph runs op by op, freeing each blob after its last use.
int64_t estimate_activation_bytes(const Graph& graph, Shape input);

}  // namespace upres
