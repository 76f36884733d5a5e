// The loader table: the built-in formats, one line each, and any a program adds.
#include "model/loader.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "upres/error.hpp"
#include "upres/files.hpp"

namespace upres {
namespace {

struct Loaders {
  std::mutex mutex;
  std::vector<ModelLoader> table;
};

Loaders& loaders() {
  static Loaders l{{},
                   {
                       ncnn_model_loader(),
                       onnx_model_loader(),
                   }};
  return l;
}

std::vector<ModelLoader> snapshot() {
  Loaders& l = loaders();
  std::lock_guard lock(l.mutex);
  return l.table;
}

}  // namespace

void register_model_loader(ModelLoader loader) {
  Loaders& l = loaders();
  std::lock_guard lock(l.mutex);
  for (ModelLoader& existing : l.table)
    if (existing.format == loader.format) {
      existing = std::move(loader);
      return;
    }
  l.table.push_back(std::move(loader));
}

ModelSource sniff_model_file(const std::string& path) {
  require_regular_file(path);
  std::ifstream file(path, std::ios::binary);
  if (!file)
    throw Error(ErrorCode::not_found,
                fmt::format("cannot open the model file {}: {}", path, std::strerror(errno)));
  std::string head(4096, '\0');
  file.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(file.gcount()));
  std::string formats;
  for (const ModelLoader& loader : snapshot()) {
    if (std::optional<ModelSource> source = loader.sniff(path, head)) return *source;
    formats += fmt::format("{}{} ({})", formats.empty() ? "" : ", ", loader.format, loader.files_hint);
  }
  throw Error(ErrorCode::invalid_model,
              fmt::format("{} is not a model file upres reads; it reads {}", path, formats));
}

std::unique_ptr<Graph> load_graph(const ModelSource& source) {
  for (const ModelLoader& loader : snapshot())
    if (loader.format == source.format) return loader.load(source);
  throw Error(ErrorCode::invalid_model, fmt::format("no loader for model format '{}'", source.format));
}

}  // namespace upres
