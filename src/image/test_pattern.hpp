// A synthetic picture for the things that need one without a file: `upres sample`, the time
// estimate of a video plan, the tests, benchmarks and fuzz seeds. Not public API.
#pragma once

#include <cstdint>

#include "upres/image.hpp"

namespace upres {

// An RGB picture with smooth gradients, anti-aliased shapes, thin lines and fine texture; the same
// seed gives the same picture.
Image make_test_pattern(int width, int height, uint32_t seed = 1);

}  // namespace upres
