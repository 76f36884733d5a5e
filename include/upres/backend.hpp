// upres: the backends that run models, and the devices they run on.
//
//   for (const upres::DeviceInfo& d : upres::list_devices()) std::puts(d.name.c_str());
//   upres::UpscaleOptions o;
//   o.backend = "cpu";  // a name from backend_names()
//
// Backends are registered by name (src/backend/registry.cpp lists the built-in ones; a program
// may add its own, see src/backend/backend.hpp). Every backend runs every op the loaders
// produce; one that cannot is refused with a message naming the op before any work starts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace upres {

// Arithmetic of the model's wide convolutions. int8 needs the model's calibration (upres/int8.hpp)
// and is 3-7x faster on CPUs with VNNI or AMX; the reference backend emulates it, for tests.
// f16 stores activations in 16 bits and computes in 32 (GPU backends; within 40 dB of f32).
// automatic picks int8 where that holds (a backend that runs int8 fast, a calibration), else f16 on
// devices with fast 16-bit storage and arithmetic, else f32.
enum class Precision { f32, int8, automatic, f16 };
Precision precision_from_name(
    const std::string& name);  // f32, f16, int8, auto; throws Error(invalid_argument)
const char* precision_name(Precision precision);

// Where tensors live and run.
enum class DeviceKind { host, gpu, software_gpu };
const char* device_kind_name(DeviceKind kind);

struct DeviceInfo {
  std::string backend;  // the backend that drives it: cpu, reference, ...
  int index = 0;        // --device N among the backend's devices
  std::string name;     // "Intel(R) Xeon(R) ...", "NVIDIA H200", "llvmpipe"
  DeviceKind kind = DeviceKind::host;
  int64_t memory_bytes = 0;         // what the device has; 0 unknown
  int threads = 0;                  // host backends: the cores they use by default
  bool fast_int8 = false;           // Precision::automatic picks int8 here
  bool fast_f16 = false;            // 16-bit storage and arithmetic: automatic picks f16 here
  int subgroup_size = 0;            // GPUs: invocations that run in lockstep
  bool cooperative_matrix = false;  // GPUs: tensor-core matrix instructions are exposed
};

// The registered backends, built-in ones first ("cpu", "reference").
std::vector<std::string> backend_names();
// Throws Error(invalid_argument) listing the known backends when `name` is neither one of them
// nor "auto".
void check_backend_name(const std::string& name);
// "auto": the first backend with a hardware GPU (software drivers such as lavapipe are slower than
// the cpu backend, so never chosen), else "cpu"; any other name unchanged.
std::string resolve_backend_name(const std::string& name);
// Every device of every registered backend.
std::vector<DeviceInfo> list_devices();

}  // namespace upres
