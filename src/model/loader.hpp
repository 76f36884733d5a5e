// Model formats: a table of loaders, each turning a format's files into the graph IR.
//
// Adding a format: a loader file under src/model/ (like ncnn_loader.cpp) with a `ModelLoader`
// entry (sniff + load) and one line in src/model/loader.cpp's table; a program or test can add
// one at run time with `ModelLoaderRegistrar`. Nothing above this layer knows a format's names:
// the graph carries op types, weights in one layout (ops/graph.hpp) and blob names from the
// model file (the keys of int8 tables).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ops/graph.hpp"
#include "upres/model.hpp"

namespace upres {

struct ModelLoader {
  std::string format;      // "ncnn"
  std::string files_hint;  // for messages: "a .param file with its .bin beside it"
  // When `path` is a file of this format (`head`: its first bytes, up to 4 KiB), the model's
  // files (companions found beside it, the weights last); nullopt when it is not.
  std::function<std::optional<ModelSource>(const std::string& path, const std::string& head)> sniff;
  // Reads the files; throws Error(invalid_model) naming the file and place for anything
  // malformed, Error(not_found / io_failure) when a file cannot be read.
  std::function<std::unique_ptr<Graph>(const ModelSource& source)> load;
};

// Adds a loader (replacing one of that format). Thread-safe.
void register_model_loader(ModelLoader loader);
struct ModelLoaderRegistrar {
  explicit ModelLoaderRegistrar(ModelLoader loader) { register_model_loader(std::move(loader)); }
};

// The source of the model file at `path`, by asking each loader in turn; throws Error(not_found)
// when it cannot be read and Error(invalid_model) naming the formats when no loader takes it.
ModelSource sniff_model_file(const std::string& path);
// The graph of a source, by its format's loader.
std::unique_ptr<Graph> load_graph(const ModelSource& source);

// The built-in loaders.
ModelLoader ncnn_model_loader();
ModelLoader onnx_model_loader();

}  // namespace upres
