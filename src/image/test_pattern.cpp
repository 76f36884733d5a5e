#include <algorithm>
#include <cmath>
#include <random>

#include "image/test_pattern.hpp"

namespace upres {

Image make_test_pattern(int width, int height, uint32_t seed) {
  Image img(width, height, 3);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const float base[3] = {u(rng), u(rng), u(rng)}, tilt[3] = {u(rng) - 0.5f, u(rng) - 0.5f, u(rng) - 0.5f};
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x)
        img.at(c, y, x) = std::clamp(
            base[c] * 0.6f + 0.2f + tilt[c] * 0.5f * (float(x) / width + float(y) / height), 0.f, 1.f);

  // Paints `color` where coverage (0..1, anti-aliased by signed distance) says so.
  auto paint = [&](auto signed_distance, const float color[3]) {
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        const float d = signed_distance(x + 0.5f, y + 0.5f);
        const float cover = std::clamp(0.5f - d, 0.f, 1.f);
        if (cover <= 0) continue;
        for (int c = 0; c < 3; ++c) img.at(c, y, x) = img.at(c, y, x) * (1 - cover) + color[c] * cover;
      }
  };
  const float scale = float(std::min(width, height));
  for (int i = 0; i < 6; ++i) {
    const float color[3] = {u(rng), u(rng), u(rng)};
    const float cx = u(rng) * width, cy = u(rng) * height, r = (0.05f + 0.15f * u(rng)) * scale;
    if (i % 2 == 0) {
      paint([&](float x, float y) { return std::hypot(x - cx, y - cy) - r; }, color);
    } else {
      paint([&](float x, float y) { return std::max(std::fabs(x - cx) - r, std::fabs(y - cy) - 0.6f * r); },
            color);
    }
  }
  for (int i = 0; i < 5; ++i) {  // thin lines, like drawn outlines
    const float color[3] = {0.05f, 0.05f, 0.08f};
    const float x0 = u(rng) * width, y0 = u(rng) * height, angle = u(rng) * 3.14159f;
    const float nx = -std::sin(angle), ny = std::cos(angle), half = 0.6f + u(rng);
    paint([&](float x, float y) { return std::fabs((x - x0) * nx + (y - y0) * ny) - half; }, color);
  }
  std::normal_distribution<float> grain(0.f, 0.015f);  // fine texture
  for (float& v : img.data) v = std::clamp(v + grain(rng), 0.f, 1.f);
  return img;
}

}  // namespace upres
