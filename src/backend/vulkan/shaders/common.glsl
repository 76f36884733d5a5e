// Shared by every upres compute shader. Built twice by CMake: STORAGE_F16=0 keeps activations in
// float32, STORAGE_F16=1 in float16 (arithmetic stays float32 either way: values are widened on
// load and narrowed on store, so only storage rounds).
#extension GL_EXT_shader_16bit_storage : require

#if STORAGE_F16
#define sfloat float16_t
#else
#define sfloat float
#endif

// Elementwise shaders run 64 invocations per group, and spill over into y when one row of groups
// (65535 at most) is not enough: a 4K feature map has hundreds of millions of values.
#define GROUP_SIZE 64
uint linear_id() {
  return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * GROUP_SIZE;
}

// The activations of the graph IR (ops/graph.hpp, enum Activation), in its order.
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LEAKY_RELU 2
#define ACT_CLIP 3
#define ACT_SIGMOID 4
#define ACT_PRELU 5
#define ACT_SWISH 6
#define ACT_TANH 7
#define ACT_MISH 8
#define ACT_GELU 9

// erf(x) to within 1.2e-7 (Numerical Recipes' erfc by Chebyshev fitting): GLSL has no erf.
float erf_approx(float x) {
  float z = abs(x);
  float t = 1.0 / (1.0 + 0.5 * z);
  float r = t * exp(-z * z - 1.26551223 +
                    t * (1.00002368 +
                         t * (0.37409196 +
                              t * (0.09678418 +
                                   t * (-0.18628806 +
                                        t * (0.27886807 +
                                             t * (-1.13520398 +
                                                  t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0.0 ? 1.0 - r : r - 1.0;
}

float activate(float v, int act, float alpha, float beta, float slope) {
  if (act == ACT_RELU) return max(v, 0.0);
  if (act == ACT_LEAKY_RELU) return v > 0.0 ? v : v * alpha;
  if (act == ACT_CLIP) return v < alpha ? alpha : (v > beta ? beta : v);
  if (act == ACT_SIGMOID) return 1.0 / (1.0 + exp(-v));
  if (act == ACT_PRELU) return v > 0.0 ? v : v * slope;
  if (act == ACT_SWISH) return v / (1.0 + exp(-v));
  // GLSL's tanh overflows (exp of large arguments) on some drivers: written out with exp(-2|v|).
  if (act == ACT_TANH || act == ACT_MISH) {
    float t = act == ACT_TANH ? v : (v > 20.0 ? v : log(1.0 + exp(v)));  // softplus
    float e = exp(-2.0 * abs(t));
    float th = sign(t) * (1.0 - e) / (1.0 + e);
    return act == ACT_TANH ? th : v * th;
  }
  if (act == ACT_GELU) return 0.5 * v * (1.0 + erf_approx(v * 0.70710678));
  return v;
}
