// Quality measures (PSNR and SSIM on Y) and the evaluation loop over a folder of images.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "upres/error.hpp"
#include "upres/quality.hpp"

namespace upres {
namespace {

void check_same(const Image& a, const Image& b, int border) {
  if (a.width != b.width || a.height != b.height || a.channels != 1 || b.channels != 1)
    throw Error(ErrorCode::invalid_argument, "quality measures need two luma images of one size");
  if (2 * border >= a.width || 2 * border >= a.height)
    throw Error(ErrorCode::invalid_argument, "the border leaves nothing to compare");
}

}  // namespace

Image luma_8bit(const Image& rgb) {
  Image y(rgb.width, rgb.height, 1);
  for (int r = 0; r < rgb.height; ++r)
    for (int c = 0; c < rgb.width; ++c) {
      const double R = std::clamp(rgb.at(0, r, c), 0.f, 1.f), G = std::clamp(rgb.at(1, r, c), 0.f, 1.f),
                   B = std::clamp(rgb.at(2, r, c), 0.f, 1.f);
      // Inputs in 8-bit steps as the papers' uint8 images, then MATLAB's rgb2ycbcr.
      const double r8 = std::round(R * 255) / 255, g8 = std::round(G * 255) / 255,
                   b8 = std::round(B * 255) / 255;
      y.at(0, r, c) = float(std::round(16.0 + 65.481 * r8 + 128.553 * g8 + 24.966 * b8));
    }
  return y;
}

double psnr_y(const Image& a, const Image& b, int border) {
  check_same(a, b, border);
  double se = 0;
  int64_t n = 0;
  for (int y = border; y < a.height - border; ++y)
    for (int x = border; x < a.width - border; ++x) {
      const double d = double(a.at(0, y, x)) - b.at(0, y, x);
      se += d * d;
      ++n;
    }
  const double mse = se / double(n);
  return mse <= 0 ? 100.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

double psnr_8bit(const Image& a, const Image& b) {
  if (a.width != b.width || a.height != b.height || a.channels != b.channels || a.data.empty())
    throw Error(ErrorCode::invalid_argument,
                fmt::format("PSNR needs two images of one size ({}x{}x{} and {}x{}x{})", a.width, a.height,
                            a.channels, b.width, b.height, b.channels));
  double se = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d =
        std::round(std::clamp(a.data[i], 0.f, 1.f) * 255) - std::round(std::clamp(b.data[i], 0.f, 1.f) * 255);
    se += d * d;
  }
  const double mse = se / double(a.data.size());
  return mse <= 0 ? 100.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

double ssim_y(const Image& a, const Image& b, int border) {
  check_same(a, b, border);
  constexpr int R = 5;  // 11x11 window
  double g[2 * R + 1], total = 0;
  for (int i = -R; i <= R; ++i) total += g[i + R] = std::exp(-double(i * i) / (2 * 1.5 * 1.5));
  for (double& v : g) v /= total;
  const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255);
  const int x0 = border + R, x1 = a.width - border - R, y0 = border + R, y1 = a.height - border - R;
  if (x1 <= x0 || y1 <= y0) throw Error(ErrorCode::invalid_argument, "the image is too small for SSIM");
  double sum = 0;
  int64_t n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      double ma = 0, mb = 0, aa = 0, bb = 0, ab = 0;
      for (int j = -R; j <= R; ++j)
        for (int i = -R; i <= R; ++i) {
          const double w = g[j + R] * g[i + R], va = a.at(0, y + j, x + i), vb = b.at(0, y + j, x + i);
          ma += w * va;
          mb += w * vb;
          aa += w * va * va;
          bb += w * vb * vb;
          ab += w * va * vb;
        }
      const double sa = aa - ma * ma, sb = bb - mb * mb, sab = ab - ma * mb;
      sum += ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (sa + sb + c2));
      ++n;
    }
  return sum / double(n);
}

QualityReport evaluate_folder(const std::string& folder, const std::string& method, int scale,
                              const UpscaleOptions& options, int limit) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    throw Error(ErrorCode::not_found, fmt::format("{}: not a folder", folder));
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(folder))
    if (e.is_regular_file() && has_image_extension(e.path().string())) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (limit > 0 && int(files.size()) > limit) files.resize(size_t(limit));
  if (files.empty()) throw Error(ErrorCode::not_found, fmt::format("{}: no images to evaluate", folder));

  QualityReport report;
  report.method = method;
  report.scale = scale;
  std::unique_ptr<Upscaler> upscaler;
  if (method != "bicubic") {
    UpscaleOptions o = options;
    o.scale = scale;
    upscaler = std::make_unique<Upscaler>(Model::load(method), o);
  }
  for (const fs::path& path : files) {
    Image hr = read_image(path.string());
    const int min_side = 2 * scale + 11;  // the border on both sides plus one SSIM window
    if (hr.width < min_side || hr.height < min_side)
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{}: {}x{} is too small to evaluate at x{}; images need {} pixels a side",
                              path.string(), hr.width, hr.height, scale, min_side));
    // Crop to a multiple of the scale so the low-resolution image maps back exactly.
    const int w = hr.width / scale * scale, h = hr.height / scale * scale;
    Image crop(w, h, 3);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) crop.at(c, y, x) = hr.at(c, y, x);
    const Image lr = resize_image(crop, w / scale, h / scale, ResampleFilter::bicubic);
    const auto t0 = std::chrono::steady_clock::now();
    const Image sr = upscaler ? upscaler->upscale(lr) : resize_image(lr, w, h, ResampleFilter::bicubic);
    report.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const Image ya = luma_8bit(sr), yb = luma_8bit(crop);
    const QualityRow row{path.filename().string(), psnr_y(ya, yb, scale), ssim_y(ya, yb, scale)};
    report.mean_psnr += row.psnr;
    report.mean_ssim += row.ssim;
    report.rows.push_back(row);
  }
  report.mean_psnr /= double(report.rows.size());
  report.mean_ssim /= double(report.rows.size());
  return report;
}

}  // namespace upres
