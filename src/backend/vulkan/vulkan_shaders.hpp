// The compute shaders (shaders/*.comp), compiled to SPIR-V by glslc at build time, validated by
// spirv-val and embedded here by CMake: each in a float32-storage and a float16-storage variant.
#pragma once

#include <cstddef>
#include <cstdint>

namespace upres::vulkan {

struct ShaderCode {
  const char* name;  // the file name without .comp
  bool f16;          // STORAGE_F16
  const uint32_t* words;
  size_t bytes;
};

// The embedded shaders, ending with an entry whose name is nullptr.
extern const ShaderCode embedded_shaders[];

}  // namespace upres::vulkan
