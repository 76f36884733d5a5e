#include "backend/vulkan/vulkan_context.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "backend/vulkan/vulkan_shaders.hpp"
#include "core/assert.hpp"
#include "upres/error.hpp"

namespace upres::vulkan {
namespace {

std::atomic<int64_t> validation_messages{0};

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT type,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data,
                                                     void*) {
  if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
    // Counted: the validation layer's findings; shown only: the loader's and drivers' notes.
    if (type & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT) ++validation_messages;
    std::fprintf(stderr, "upres: Vulkan validation: %s\n", data && data->pMessage ? data->pMessage : "?");
  }
  return VK_FALSE;
}

bool validation_wanted() {
  const char* v = std::getenv("UPRES_VULKAN_VALIDATION");
  return v && std::strcmp(v, "1") == 0;
}

bool has_layer(const char* name) {
  uint32_t count = 0;
  if (vkEnumerateInstanceLayerProperties(&count, nullptr) != VK_SUCCESS) return false;
  std::vector<VkLayerProperties> layers(count);
  vkEnumerateInstanceLayerProperties(&count, layers.data());
  for (const VkLayerProperties& l : layers)
    if (std::strcmp(l.layerName, name) == 0) return true;
  return false;
}

bool has_device_extension(VkPhysicalDevice device, const char* name) {
  uint32_t count = 0;
  vkEnumerateDeviceExtensionProperties(device, nullptr, &count, nullptr);
  std::vector<VkExtensionProperties> extensions(count);
  vkEnumerateDeviceExtensionProperties(device, nullptr, &count, extensions.data());
  for (const VkExtensionProperties& e : extensions)
    if (std::strcmp(e.extensionName, name) == 0) return true;
  return false;
}

// The process's instance and what it found. Never destroyed: contexts may outlive static
// destruction order (a service's pooled upscalers), and the driver frees everything at exit.
struct Instance {
  VkInstance handle = VK_NULL_HANDLE;
  std::vector<PhysicalDevice> devices;

  Instance() {
    VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "upres";
    app.apiVersion = VK_API_VERSION_1_2;
    std::vector<const char*> layers, extensions;
    const bool validate = validation_wanted();
    if (validate) {
      if (has_layer("VK_LAYER_KHRONOS_validation")) {
        layers.push_back("VK_LAYER_KHRONOS_validation");
        extensions.push_back(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
      } else {
        std::fprintf(stderr,
                     "upres: UPRES_VULKAN_VALIDATION=1 but the Khronos validation layer is not installed "
                     "(Debian: vulkan-validationlayers)\n");
        ++validation_messages;  // a test that asks for validation must not pass without it
      }
    }
    VkInstanceCreateInfo info{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    info.pApplicationInfo = &app;
    info.enabledLayerCount = uint32_t(layers.size());
    info.ppEnabledLayerNames = layers.data();
    info.enabledExtensionCount = uint32_t(extensions.size());
    info.ppEnabledExtensionNames = extensions.data();
    if (vkCreateInstance(&info, nullptr, &handle) != VK_SUCCESS) {
      handle = VK_NULL_HANDLE;
      return;
    }
    if (!extensions.empty()) {
      auto create = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
          vkGetInstanceProcAddr(handle, "vkCreateDebugUtilsMessengerEXT"));
      VkDebugUtilsMessengerCreateInfoEXT m{VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
      m.messageSeverity =
          VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
      m.messageType =
          VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT;
      m.pfnUserCallback = on_validation_message;
      VkDebugUtilsMessengerEXT messenger;
      if (create) create(handle, &m, nullptr, &messenger);
    }
    uint32_t count = 0;
    vkEnumeratePhysicalDevices(handle, &count, nullptr);
    std::vector<VkPhysicalDevice> handles(count);
    vkEnumeratePhysicalDevices(handle, &count, handles.data());
    for (VkPhysicalDevice h : handles) describe(h);
  }

  void describe(VkPhysicalDevice h) {
    VkPhysicalDeviceSubgroupProperties subgroup{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &subgroup};
    vkGetPhysicalDeviceProperties2(h, &props);
    if (props.properties.apiVersion < VK_API_VERSION_1_2) return;
    uint32_t families = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(h, &families, nullptr);
    std::vector<VkQueueFamilyProperties> fam(families);
    vkGetPhysicalDeviceQueueFamilyProperties(h, &families, fam.data());
    bool compute = false;
    for (const auto& f : fam) compute = compute || (f.queueFlags & VK_QUEUE_COMPUTE_BIT);
    if (!compute) return;
    VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, &f11};
    VkPhysicalDeviceFeatures2 features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &f12};
    vkGetPhysicalDeviceFeatures2(h, &features);
    VkPhysicalDeviceMemoryProperties memory;
    vkGetPhysicalDeviceMemoryProperties(h, &memory);

    PhysicalDevice d;
    d.index = int(devices.size());
    d.handle = h;
    d.name = props.properties.deviceName;
    d.type = props.properties.deviceType;
    d.software = d.type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    d.api_version = props.properties.apiVersion;
    for (uint32_t i = 0; i < memory.memoryHeapCount; ++i)
      if (memory.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
        d.memory_bytes += int64_t(memory.memoryHeaps[i].size);
    d.max_storage_range = props.properties.limits.maxStorageBufferRange;
    d.subgroup_size = subgroup.subgroupSize;
    d.storage_f16 = f11.storageBuffer16BitAccess;
    d.arithmetic_f16 = f12.shaderFloat16;
    d.cooperative_matrix = has_device_extension(h, "VK_NV_cooperative_matrix") ||
                           has_device_extension(h, "VK_KHR_cooperative_matrix");
    d.memory_budget_ext = has_device_extension(h, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    d.max_shared_bytes = props.properties.limits.maxComputeSharedMemorySize;
    if (props.properties.limits.timestampComputeAndGraphics)
      d.timestamp_period = props.properties.limits.timestampPeriod;
    d.coopmat_f16 = d.storage_f16 && d.arithmetic_f16 && f12.vulkanMemoryModel && d.subgroup_size == 32 &&
                    d.max_shared_bytes >= 32 * 1024 && has_coopmat_f16(h);
    devices.push_back(d);
  }

  // Whether the device's VK_NV_cooperative_matrix offers the one shape the shader uses.
  bool has_coopmat_f16(VkPhysicalDevice h) const {
    if (!has_device_extension(h, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME)) return false;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceFeatures2 features{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &coop};
    vkGetPhysicalDeviceFeatures2(h, &features);
    auto properties = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
        vkGetInstanceProcAddr(handle, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
    VkPhysicalDeviceCooperativeMatrixPropertiesNV stages{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, &stages};
    vkGetPhysicalDeviceProperties2(h, &props);
    if (!coop.cooperativeMatrix || !properties ||
        !(stages.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT))
      return false;
    uint32_t count = 0;
    properties(h, &count, nullptr);
    std::vector<VkCooperativeMatrixPropertiesNV> shapes(count,
                                                        {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
    properties(h, &count, shapes.data());
    for (const VkCooperativeMatrixPropertiesNV& s : shapes)
      if (s.MSize == 16 && s.NSize == 16 && s.KSize == 16 && s.AType == VK_COMPONENT_TYPE_FLOAT16_NV &&
          s.BType == VK_COMPONENT_TYPE_FLOAT16_NV && s.CType == VK_COMPONENT_TYPE_FLOAT32_NV &&
          s.DType == VK_COMPONENT_TYPE_FLOAT32_NV && s.scope == VK_SCOPE_SUBGROUP_NV)
        return true;
    return false;
  }
};

Instance& instance() {
  static Instance* i = new Instance();
  return *i;
}

uint32_t find_memory_type(const VkPhysicalDeviceMemoryProperties& memory, uint32_t allowed,
                          std::initializer_list<VkMemoryPropertyFlags> preferences) {
  for (VkMemoryPropertyFlags want : preferences)
    for (uint32_t i = 0; i < memory.memoryTypeCount; ++i)
      if ((allowed & (1u << i)) && (memory.memoryTypes[i].propertyFlags & want) == want) return i;
  throw Error(ErrorCode::backend_failure, "the Vulkan device offers no suitable memory type for a buffer");
}

}  // namespace

void check(VkResult result, const char* what) {
  if (result == VK_SUCCESS) return;
  const bool memory = result == VK_ERROR_OUT_OF_DEVICE_MEMORY || result == VK_ERROR_OUT_OF_HOST_MEMORY;
  throw Error(memory ? ErrorCode::limit_exceeded : ErrorCode::backend_failure,
              fmt::format("Vulkan: {} failed ({}){}", what, int(result),
                          memory ? ": out of memory; lower --max-memory or --tile" : ""));
}

uint64_t hash_values(const std::vector<float>& values, uint64_t hash) {
  const auto* p = reinterpret_cast<const unsigned char*>(values.data());
  for (size_t i = 0; i < values.size() * sizeof(float); ++i) hash = (hash ^ p[i]) * 1099511628211ull;
  return hash;
}

const std::vector<PhysicalDevice>& physical_devices() {
  return instance().devices;
}

int64_t vulkan_validation_messages() {
  return validation_messages;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    reset();
    handle = std::exchange(o.handle, VK_NULL_HANDLE);
    bytes = std::exchange(o.bytes, 0);
    mapped = std::exchange(o.mapped, nullptr);
    device_ = std::exchange(o.device_, VK_NULL_HANDLE);
    memory_ = std::exchange(o.memory_, VK_NULL_HANDLE);
  }
  return *this;
}

void Buffer::reset() {
  if (handle) vkDestroyBuffer(device_, handle, nullptr);
  if (memory_) vkFreeMemory(device_, memory_, nullptr);  // unmaps too
  handle = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped = nullptr;
  bytes = 0;
}

std::shared_ptr<Context> Context::get(int index) {
  const std::vector<PhysicalDevice>& devices = physical_devices();
  if (devices.empty())
    throw Error(ErrorCode::unsupported,
                "no Vulkan device found: install your GPU's Vulkan driver (NVIDIA: the proprietary driver "
                "with its Vulkan ICD; AMD and Intel: Debian's mesa-vulkan-drivers, which also has the "
                "lavapipe software device) and the loader libvulkan1, or use --backend cpu");
  if (index < 0 || index >= int(devices.size()))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("there is no Vulkan device {}: this machine has {} (see `upres devices`)", index,
                            devices.size()));
  static std::mutex mutex;
  static std::map<int, std::weak_ptr<Context>> contexts;
  std::lock_guard lock(mutex);
  std::shared_ptr<Context> c = contexts[index].lock();
  if (!c) {
    c.reset(new Context(devices[size_t(index)]));
    contexts[index] = c;
  }
  return c;
}

Context::Context(const PhysicalDevice& info) : info_(info) {
  uint32_t families = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(info_.handle, &families, nullptr);
  std::vector<VkQueueFamilyProperties> fam(families);
  vkGetPhysicalDeviceQueueFamilyProperties(info_.handle, &families, fam.data());
  // A compute-only family first: on discrete GPUs it runs beside the graphics work of a desktop.
  queue_family_ = UINT32_MAX;
  for (uint32_t i = 0; i < families && queue_family_ == UINT32_MAX; ++i)
    if ((fam[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && !(fam[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
      queue_family_ = i;
  for (uint32_t i = 0; i < families && queue_family_ == UINT32_MAX; ++i)
    if (fam[i].queueFlags & VK_QUEUE_COMPUTE_BIT) queue_family_ = i;
  timestamp_bits_ = info_.timestamp_period > 0 ? fam[queue_family_].timestampValidBits : 0;

  const float priority = 1;
  VkDeviceQueueCreateInfo queue{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  queue.queueFamilyIndex = queue_family_;
  queue.queueCount = 1;
  queue.pQueuePriorities = &priority;
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.storageBuffer16BitAccess = info_.storage_f16;
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, &f11};
  f12.shaderFloat16 = info_.arithmetic_f16;
  std::vector<const char*> extensions;
  if (info_.memory_budget_ext) extensions.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
  VkPhysicalDeviceCooperativeMatrixFeaturesNV coop{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  if (info_.coopmat_f16) {
    extensions.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    coop.cooperativeMatrix = VK_TRUE;
    f11.pNext = &coop;
    f12.vulkanMemoryModel = VK_TRUE;
  }
  VkDeviceCreateInfo create{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, &f12};
  create.queueCreateInfoCount = 1;
  create.pQueueCreateInfos = &queue;
  create.enabledExtensionCount = uint32_t(extensions.size());
  create.ppEnabledExtensionNames = extensions.data();
  check(vkCreateDevice(info_.handle, &create, nullptr, &device_), "creating the device");
  vkGetDeviceQueue(device_, queue_family_, 0, &queue_);
  vkGetPhysicalDeviceMemoryProperties(info_.handle, &memory_);
  VkCommandPoolCreateInfo pool{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pool.queueFamilyIndex = queue_family_;
  check(vkCreateCommandPool(device_, &pool, nullptr, &command_pool_), "creating a command pool");
}

Context::~Context() {
  vkDeviceWaitIdle(device_);
  for (auto& [key, p] : pipelines_) {
    vkDestroyPipeline(device_, p.pipeline, nullptr);
    vkDestroyPipelineLayout(device_, p.layout, nullptr);
    vkDestroyDescriptorSetLayout(device_, p.set_layout, nullptr);
  }
  vkDestroyCommandPool(device_, command_pool_, nullptr);
  vkDestroyDevice(device_, nullptr);
}

int64_t Context::memory_budget() const {
  if (info_.memory_budget_ext) {
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, &budget};
    vkGetPhysicalDeviceMemoryProperties2(info_.handle, &props);
    int64_t free = 0;
    for (uint32_t i = 0; i < props.memoryProperties.memoryHeapCount; ++i)
      if (props.memoryProperties.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
        free += int64_t(budget.heapBudget[i]) - int64_t(budget.heapUsage[i]);
    if (free > 0) return free * 9 / 10;
  }
  return info_.memory_bytes * 4 / 5;
}

Buffer Context::make_buffer(VkDeviceSize bytes, Memory where) {
  Buffer b;
  b.device_ = device_;
  b.bytes = (std::max<VkDeviceSize>(bytes, 16) + 15) / 16 * 16;
  VkBufferCreateInfo info{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  info.size = b.bytes;
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
               VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(vkCreateBuffer(device_, &info, nullptr, &b.handle), "creating a buffer");
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device_, b.handle, &req);
  constexpr VkMemoryPropertyFlags local = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                  host = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                         VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                  cached = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
  uint32_t type = 0;
  switch (where) {
    case Memory::device:
      // Integrated and software devices share memory with the host: map it and skip staging.
      // A discrete GPU's host-visible device memory is a small window (256 MiB without resizable
      // BAR): keep activations and weights out of it.
      type = info_.type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
                 ? find_memory_type(memory_, req.memoryTypeBits, {local})
                 : find_memory_type(memory_, req.memoryTypeBits, {local | host, local});
      break;
    case Memory::upload: type = find_memory_type(memory_, req.memoryTypeBits, {host}); break;
    case Memory::readback: type = find_memory_type(memory_, req.memoryTypeBits, {host | cached, host}); break;
  }
  VkMemoryAllocateInfo alloc{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  alloc.allocationSize = req.size;
  alloc.memoryTypeIndex = type;
  check(vkAllocateMemory(device_, &alloc, nullptr, &b.memory_),
        fmt::format("allocating {} MiB of device memory", (req.size + (1 << 20) - 1) >> 20).c_str());
  ++allocations_;
  check(vkBindBufferMemory(device_, b.handle, b.memory_, 0), "binding buffer memory");
  if ((memory_.memoryTypes[type].propertyFlags & host) == host)
    check(vkMapMemory(device_, b.memory_, 0, VK_WHOLE_SIZE, 0, &b.mapped), "mapping a buffer");
  return b;
}

void Context::upload(Buffer& buffer, const void* data, size_t bytes) {
  UPRES_ASSERT(bytes <= buffer.bytes);
  if (buffer.mapped) {
    std::memcpy(buffer.mapped, data, bytes);
    return;
  }
  Buffer staging = make_buffer(bytes, Memory::upload);
  std::memcpy(staging.mapped, data, bytes);
  std::lock_guard lock(upload_mutex_);
  VkCommandBufferAllocateInfo alloc{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  alloc.commandPool = command_pool_;
  alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  alloc.commandBufferCount = 1;
  VkCommandBuffer cmd;
  check(vkAllocateCommandBuffers(device_, &alloc, &cmd), "allocating a command buffer");
  VkCommandBufferBeginInfo begin{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  vkBeginCommandBuffer(cmd, &begin);
  VkBufferCopy region{0, 0, bytes};
  vkCmdCopyBuffer(cmd, staging.handle, buffer.handle, 1, &region);
  VkMemoryBarrier copied{VK_STRUCTURE_TYPE_MEMORY_BARRIER};  // for the shaders of later submissions
  copied.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
  copied.dstAccessMask = VK_ACCESS_SHADER_READ_BIT;
  vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &copied,
                       0, nullptr, 0, nullptr);
  vkEndCommandBuffer(cmd);
  VkFenceCreateInfo fence_info{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  VkFence fence;
  check(vkCreateFence(device_, &fence_info, nullptr, &fence), "creating a fence");
  submit(cmd, fence);
  const VkResult waited = vkWaitForFences(device_, 1, &fence, VK_TRUE, UINT64_MAX);
  vkDestroyFence(device_, fence, nullptr);
  vkFreeCommandBuffers(device_, command_pool_, 1, &cmd);
  check(waited, "uploading weights");
}

std::shared_ptr<const Buffer> Context::constant_buffer(const std::vector<float>& values) {
  const size_t bytes = values.size() * sizeof(float);
  const uint64_t hash = hash_values(values);
  std::lock_guard lock(constants_mutex_);
  if (constants_.size() > 4096)  // a long-lived service loading many models: forget freed ones
    std::erase_if(constants_, [](const auto& entry) { return entry.second.expired(); });
  std::weak_ptr<const Buffer>& slot = constants_[{hash, bytes}];
  if (auto held = slot.lock()) return held;
  auto buffer = std::make_shared<Buffer>(make_buffer(bytes, Memory::device));
  upload(*buffer, values.data(), bytes);
  slot = buffer;
  return buffer;
}

const Pipeline& Context::pipeline(const std::string& name, bool f16, const std::vector<int32_t>& constants,
                                  uint32_t bindings, uint32_t push_bytes) {
  std::lock_guard lock(pipeline_mutex_);
  auto key = std::make_tuple(name, f16, constants);
  if (auto it = pipelines_.find(key); it != pipelines_.end()) return it->second;
  const ShaderCode* code = nullptr;
  for (const ShaderCode* s = embedded_shaders; s->name; ++s)
    if (name == s->name && s->f16 == f16) code = s;
  UPRES_ASSERT(code);
  Pipeline p;
  p.bindings = bindings;
  p.push_bytes = push_bytes;
  std::vector<VkDescriptorSetLayoutBinding> b(bindings);
  for (uint32_t i = 0; i < bindings; ++i)
    b[i] = {i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr};
  VkDescriptorSetLayoutCreateInfo set{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  set.bindingCount = bindings;
  set.pBindings = b.data();
  check(vkCreateDescriptorSetLayout(device_, &set, nullptr, &p.set_layout),
        "creating a descriptor set layout");
  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes};
  VkPipelineLayoutCreateInfo layout{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  layout.setLayoutCount = 1;
  layout.pSetLayouts = &p.set_layout;
  layout.pushConstantRangeCount = push_bytes ? 1 : 0;
  layout.pPushConstantRanges = &range;
  check(vkCreatePipelineLayout(device_, &layout, nullptr, &p.layout), "creating a pipeline layout");
  VkShaderModuleCreateInfo module_info{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  module_info.codeSize = code->bytes;
  module_info.pCode = code->words;
  VkShaderModule module;
  check(vkCreateShaderModule(device_, &module_info, nullptr, &module), "loading a shader");
  std::vector<VkSpecializationMapEntry> entries(constants.size());
  for (size_t i = 0; i < constants.size(); ++i) entries[i] = {uint32_t(i), uint32_t(i * 4), 4};
  VkSpecializationInfo spec{uint32_t(entries.size()), entries.data(), constants.size() * 4, constants.data()};
  VkComputePipelineCreateInfo info{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  info.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  info.stage.module = module;
  info.stage.pName = "main";
  info.stage.pSpecializationInfo = constants.empty() ? nullptr : &spec;
  info.layout = p.layout;
  const VkResult made = vkCreateComputePipelines(device_, VK_NULL_HANDLE, 1, &info, nullptr, &p.pipeline);
  vkDestroyShaderModule(device_, module, nullptr);
  check(made, fmt::format("building the {} shader", name).c_str());
  return pipelines_[key] = p;
}

int Context::remembered(const std::string& key) {
  std::lock_guard lock(choices_mutex_);
  auto it = choices_.find(key);
  return it == choices_.end() ? -1 : it->second;
}

void Context::remember(const std::string& key, int value) {
  std::lock_guard lock(choices_mutex_);
  choices_[key] = value;
}

void Context::submit(VkCommandBuffer commands, VkFence fence) {
  VkSubmitInfo info{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  info.commandBufferCount = 1;
  info.pCommandBuffers = &commands;
  std::lock_guard lock(queue_mutex_);
  check(vkQueueSubmit(queue_, 1, &info, fence), "submitting work");
}

}  // namespace upres::vulkan
