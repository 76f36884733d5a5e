#version 450
// Convolution on tensor cores through VK_NV_cooperative_matrix (NVIDIA), as a sum of matrix
// products: for each kernel tap, [pixels x input channels] times [input channels x output
// channels], in 16 x 16 x 16 float16 products accumulated in float32.
//
// A workgroup is four subgroups of 32 and makes 4 rows of 16 output pixels for 64 output
// channels, one row per subgroup (four 16 x 16 accumulators each). Per chunk of 16 input channels
// it copies the input window those pixels see into shared memory as float16, pixel by pixel with
// the 16 channels together: then each tap's [16 pixels x 16 channels] operand is a plain
// row-major matrix in that window (stride 16), loaded without any copy. Per tap it copies that
// tap's [16 channels x 64 outputs] weights next to it. At the end the accumulators go through
// shared memory so every invocation can apply the epilogue of conv_layout.glsl (bias, activation,
// residual) to its own values. Stride 1, dilation 1, kernels up to 3 x 3; the host uses it only
// where the device offers this product shape (PhysicalDevice::coopmat_f16), with float16
// storage, and after checking it against convolution.comp on the device.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define COOPMAT_NV 1
#include "convolution_coopmat.glsl"
