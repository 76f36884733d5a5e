// The backend registry: the built-in backends, one line each, and any a program adds.
#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "backend/backend.hpp"
#include "upres/error.hpp"

namespace upres {
namespace {

struct Registry {
  std::mutex mutex;
  std::vector<BackendEntry> entries;
};

Registry& registry() {
  static Registry r{{},
                    {
                        cpu_backend_entry(),
                        reference_backend_entry(),
#if UPRES_WITH_VULKAN
                        vulkan_backend_entry(),
#endif
                    }};
  return r;
}

std::string known_backends(const std::vector<BackendEntry>& entries) {
  std::string list;
  for (size_t i = 0; i < entries.size(); ++i)
    list += fmt::format("{}{} ({})",
                        i == 0                    ? ""
                        : i + 1 == entries.size() ? " or "
                                                  : ", ",
                        entries[i].name, entries[i].summary);
  return list;
}

}  // namespace

void register_backend(BackendEntry entry) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = std::find_if(r.entries.begin(), r.entries.end(),
                         [&](const BackendEntry& e) { return e.name == entry.name; });
  if (it != r.entries.end())
    *it = std::move(entry);
  else
    r.entries.push_back(std::move(entry));
}

BackendEntry find_backend(const std::string& name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  for (const BackendEntry& e : r.entries)
    if (e.name == name) return e;
  throw Error(ErrorCode::invalid_argument,
              fmt::format("unknown backend '{}': use {}", name, known_backends(r.entries)));
}

std::unique_ptr<Backend> make_backend(const std::string& name, const BackendConfig& config) {
  return find_backend(name).make(config);
}

std::vector<std::string> backend_names() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const BackendEntry& e : r.entries) names.push_back(e.name);
  return names;
}

void check_backend_name(const std::string& name) {
  if (name != "auto") find_backend(name);
}

std::string resolve_backend_name(const std::string& name) {
  if (name != "auto") return name;
  for (const DeviceInfo& d : list_devices())
    if (d.kind == DeviceKind::gpu) return d.backend;
  return "cpu";
}

std::vector<DeviceInfo> list_devices() {
  std::vector<std::function<std::vector<DeviceInfo>()>> listers;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    for (const BackendEntry& e : r.entries) listers.push_back(e.devices);
  }
  std::vector<DeviceInfo> all;
  for (const auto& list : listers)
    for (DeviceInfo& d : list()) all.push_back(std::move(d));
  return all;
}

}  // namespace upres
