#version 450
// convolution_coopmat.comp's kernel with its matrix products written out as loops, for testing it
// on any device (see convolution_coopmat.glsl).
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_control_flow_attributes : require
#define COOPMAT_NV 0
#include "convolution_coopmat.glsl"
