// Pieces of the job service shared by its source files, not part of the public API.
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "upres/model.hpp"

namespace upres {

struct UpscalerPool;
std::shared_ptr<UpscalerPool> make_upscaler_pool(size_t capacity);
// Destroys pooled Upscalers idle for `keep` or longer.
void release_idle_upscalers(UpscalerPool& pool, std::chrono::steady_clock::duration keep);

// Loaded models by zoo name or .param path, least recently used first; models no job holds are
// unloaded when more than `capacity` are loaded, or when unused for the keep-warm time.
struct ModelCache {
  struct Entry {
    std::string key;
    std::shared_ptr<const Model> model;
    std::chrono::steady_clock::time_point used;
  };
  std::mutex mutex;
  size_t capacity = 4;
  std::list<Entry> loaded;
};
std::shared_ptr<const Model> load_shared_model(ModelCache& cache, const std::string& name_or_path);
void release_idle_models(ModelCache& cache, std::chrono::steady_clock::duration keep);

}  // namespace upres
