// Help texts of the engine options every subcommand shares, written once.
#pragma once

namespace upres::cli {

inline constexpr const char* kBackendHelp =
    "auto (a GPU through Vulkan when there is one, else cpu), cpu (oneDNN), vulkan (compute shaders on a "
    "GPU; "
    "Mesa's lavapipe runs them on the CPU, slowly) or reference (plain loops, slow)";
inline constexpr const char* kDeviceHelp = "which of the backend's devices to run on (see `upres devices`)";
inline constexpr const char* kPrecisionHelp =
    "auto (int8 where the model has a calibration and the CPU has VNNI/AMX; f16 on GPUs with fast 16-bit "
    "floats; else f32), f32 (exact), f16 (GPUs: half the memory, within 40 dB of f32) or int8 (CPUs: 3-7x "
    "faster convolutions; see `upres models calibrate`)";

}  // namespace upres::cli
