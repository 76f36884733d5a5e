// Models and Upscalers kept warm between requests.
//
// Weights are loaded once per model and shared (Model is immutable). Upscalers are not
// thread-safe but are expensive to make cold (kernels are compiled and scratch allocated on the
// first frame of each size), so idle ones wait in a pool keyed by model and scale, and a request
// borrows one. The pool is capped so an idle server does not hold scratch for every model ever
// asked for.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <mutex>

#include "core/check_range.hpp"
#include "service/service_internal.hpp"
#include "upres/error.hpp"
#include "upres/service.hpp"

namespace upres {

struct UpscalerPool {
  std::mutex mutex;
  size_t capacity = 4;
  struct Idle {
    std::string key;
    std::unique_ptr<Upscaler> upscaler;
    std::chrono::steady_clock::time_point since;
  };
  std::deque<Idle> idle;  // most recently returned at the back

  std::unique_ptr<Upscaler> take(const std::string& key) {
    std::lock_guard lock(mutex);
    for (auto it = idle.rbegin(); it != idle.rend(); ++it) {
      if (it->key != key) continue;
      auto upscaler = std::move(it->upscaler);
      idle.erase(std::next(it).base());
      return upscaler;
    }
    return nullptr;
  }

  void give_back(std::string key, std::unique_ptr<Upscaler> upscaler) {
    std::unique_ptr<Upscaler> evicted;  // destroyed outside the lock
    std::lock_guard lock(mutex);
    idle.push_back({std::move(key), std::move(upscaler), std::chrono::steady_clock::now()});
    if (idle.size() > capacity) {
      evicted = std::move(idle.front().upscaler);
      idle.pop_front();
    }
  }
};

void release_idle_upscalers(UpscalerPool& pool, std::chrono::steady_clock::duration keep) {
  std::vector<std::unique_ptr<Upscaler>> released;  // destroyed outside the lock
  std::lock_guard lock(pool.mutex);
  const auto now = std::chrono::steady_clock::now();
  while (!pool.idle.empty() && now - pool.idle.front().since >= keep) {  // oldest first
    released.push_back(std::move(pool.idle.front().upscaler));
    pool.idle.pop_front();
  }
}

size_t JobManager::warm_upscalers() const {
  std::lock_guard lock(pool_->mutex);
  return pool_->idle.size();
}

std::shared_ptr<UpscalerPool> make_upscaler_pool(size_t capacity) {
  auto pool = std::make_shared<UpscalerPool>();
  pool->capacity = std::max<size_t>(1, capacity);
  return pool;
}

UpscalerLease::UpscalerLease(std::shared_ptr<UpscalerPool> pool, std::string key,
                             std::unique_ptr<Upscaler> upscaler)
    : pool_(std::move(pool)), key_(std::move(key)), upscaler_(std::move(upscaler)) {}
UpscalerLease::UpscalerLease(UpscalerLease&&) noexcept = default;
UpscalerLease::~UpscalerLease() {
  if (pool_ && upscaler_) pool_->give_back(std::move(key_), std::move(upscaler_));
}

std::shared_ptr<const Model> JobManager::model(const std::string& requested, int scale) {
  std::string name = requested.empty() ? default_model_for_scale(scale) : requested;
  // Zoo names and the names of models added on this machine (`upres models add`) load from the
  // model cache; anything else is a model file that must be under the root like every other path a
  // request names.
  std::string key = find_model_info(name) || find_user_model(name) ? name : resolve_input(name).string();
  return load_shared_model(*models_, key);
}

UpscalerLease JobManager::lease_upscaler(const ImageRequest& request) {
  check_range("scale", request.scale, 0, kMaxScale, " (0: the model's own)");
  auto shared_model = model(request.model, request.scale);
  std::string key = fmt::format("{}@{}", shared_model->name(), request.scale);
  auto upscaler = pool_->take(key);
  if (!upscaler) {
    UpscaleOptions engine = options_.engine;
    engine.scale = request.scale;
    engine.max_output_side = options_.max_output_side;
    upscaler = std::make_unique<Upscaler>(shared_model, engine);
  }
  return UpscalerLease(pool_, std::move(key), std::move(upscaler));
}

}  // namespace upres
