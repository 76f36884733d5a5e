// The Vulkan side of the Vulkan backend: one instance per process, one logical device per
// physical device in use, buffers, and compute pipelines built once per (shader, storage type,
// specialisation) and shared by every executor on that device.
//
// Plain Vulkan 1.2 through the system loader (libvulkan), so it reaches NVIDIA, AMD, Intel and
// Apple (MoltenVK) GPUs alike, and Mesa's lavapipe on machines without one, which is how the
// tests run everywhere. Setting UPRES_VULKAN_VALIDATION=1 turns on the Khronos validation layer;
// every message it gives is printed and counted (vulkan_validation_messages()), and the tests
// require the count to stay zero.
#pragma once

#include <vulkan/vulkan.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace upres::vulkan {

// Throws Error(backend_failure) naming `what` and the result when `result` is not VK_SUCCESS.
void check(VkResult result, const char* what);

// A 64-bit hash (FNV-1a) of the values' bytes: how weights are recognised across executors.
uint64_t hash_values(const std::vector<float>& values, uint64_t hash = 1469598103934665603ull);

// What `upres devices` shows and the backend decides by.
struct PhysicalDevice {
  int index = 0;
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  std::string name;
  VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
  bool software = false;  // lavapipe/llvmpipe, SwiftShader: runs on the CPU
  uint32_t api_version = 0;
  int64_t memory_bytes = 0;       // the device-local heaps
  int64_t max_storage_range = 0;  // the largest buffer one binding may cover
  uint32_t subgroup_size = 0;
  bool storage_f16 = false;         // 16-bit values in storage buffers
  bool arithmetic_f16 = false;      // shaderFloat16
  bool cooperative_matrix = false;  // VK_NV_cooperative_matrix / VK_KHR_cooperative_matrix
  // What shaders/convolution_coopmat.comp needs: VK_NV_cooperative_matrix with a 16 x 16 x 16
  // subgroup product of float16 into float32, the Vulkan memory model, 16-bit arithmetic and
  // storage, subgroups of 32 and 32 KiB of shared memory (NVIDIA's tensor cores, through Vulkan).
  bool coopmat_f16 = false;
  uint32_t max_shared_bytes = 0;   // maxComputeSharedMemorySize
  float timestamp_period = 0;      // nanoseconds per timestamp tick; 0: compute timestamps unsupported
  bool memory_budget_ext = false;  // VK_EXT_memory_budget
};

// Every physical device that offers a compute queue and Vulkan 1.2; empty (never throws) when
// there is no loader, no driver or no such device.
const std::vector<PhysicalDevice>& physical_devices();

// Messages the validation layer gave since the process started (0 when it is off).
int64_t vulkan_validation_messages();

// One buffer and its memory, freed with it. Host-visible buffers stay mapped.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { reset(); }
  void reset();

  VkBuffer handle = VK_NULL_HANDLE;
  VkDeviceSize bytes = 0;
  void* mapped = nullptr;  // host-visible buffers only

 private:
  friend class Context;
  VkDevice device_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
};

// A compute pipeline: its layout and the descriptor set layout of its bindings.
struct Pipeline {
  VkPipeline pipeline = VK_NULL_HANDLE;
  VkPipelineLayout layout = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout = VK_NULL_HANDLE;
  uint32_t bindings = 0;
  uint32_t push_bytes = 0;
};

class Context {
 public:
  // The context of device `index` (physical_devices() order), made on first use and shared while
  // anyone holds it. Throws Error(unsupported) saying what to install when there is no such device.
  static std::shared_ptr<Context> get(int index);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const PhysicalDevice& info() const { return info_; }
  VkDevice device() const { return device_; }
  // Bytes of device memory this process may use now (VK_EXT_memory_budget where present, else
  // the device-local heaps less a fifth for the driver and other programs).
  int64_t memory_budget() const;

  enum class Memory { device, upload, readback };
  // A storage buffer of `bytes` (rounded up to 16). device: device-local, preferring memory the
  // host can also map (integrated GPUs, lavapipe); upload/readback: host-visible and coherent.
  Buffer make_buffer(VkDeviceSize bytes, Memory where);
  // Copies bytes into a buffer, through a staging buffer when it is not host-visible.
  void upload(Buffer& buffer, const void* data, size_t bytes);
  // A device buffer holding `values`, shared by every caller asking for the same values while
  // any of them holds it (keyed by a 64-bit hash of the bytes and their count).
  std::shared_ptr<const Buffer> constant_buffer(const std::vector<float>& values);
  // Memory allocations made so far: steady-state runs must not add any.
  int64_t allocations() const { return allocations_; }

  // The pipeline of shader `name` (vulkan_shaders.hpp) for `f16` storage with these
  // specialisation constants (constant_id 0, 1, ... in order), built on first request.
  const Pipeline& pipeline(const std::string& name, bool f16, const std::vector<int32_t>& constants,
                           uint32_t bindings, uint32_t push_bytes);

  // Choices measured on this device (a convolution's kernel for a layer and shape), so that each
  // is measured once per process: -1 when `key` has none yet.
  int remembered(const std::string& key);
  void remember(const std::string& key, int value);
  std::map<std::string, int> choices() {
    std::lock_guard lock(choices_mutex_);
    return choices_;
  }

  uint32_t queue_family() const { return queue_family_; }
  // Valid bits of the queue's timestamps: 0 when it writes none.
  uint32_t timestamp_bits() const { return timestamp_bits_; }
  // Submits under the queue's lock (vkQueueSubmit needs it held by one thread at a time).
  void submit(VkCommandBuffer commands, VkFence fence);

 private:
  explicit Context(const PhysicalDevice& info);

  PhysicalDevice info_;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  uint32_t timestamp_bits_ = 0;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties memory_{};
  std::mutex queue_mutex_, pipeline_mutex_, upload_mutex_, constants_mutex_, choices_mutex_;
  std::map<std::string, int> choices_;
  std::map<std::pair<uint64_t, size_t>, std::weak_ptr<const Buffer>> constants_;
  std::map<std::tuple<std::string, bool, std::vector<int32_t>>, Pipeline> pipelines_;
  std::atomic<int64_t> allocations_{0};
};

}  // namespace upres::vulkan
