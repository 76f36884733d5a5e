// Pieces of the job service shared by its source files, not part of the public API.
#pragma once

#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "upres/model.hpp"

namespace upres {

struct UpscalerPool;
std::shared_ptr<UpscalerPool> make_upscaler_pool(size_t capacity);

// Loaded models by zoo name or .param path, least recently used first; models no job holds are
// unloaded when more than `capacity` are loaded.
struct ModelCache {
  std::mutex mutex;
  size_t capacity = 4;
  std::list<std::pair<std::string, std::shared_ptr<const Model>>> loaded;
};
std::shared_ptr<const Model> load_shared_model(ModelCache& cache, const std::string& name_or_path);

}  // namespace upres
