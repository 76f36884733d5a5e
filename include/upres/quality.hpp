// upres: image quality measures as super-resolution papers report them.
//
// The protocol: shrink a high-resolution image by the scale with MATLAB-style antialiased
// bicubic, upscale it back, and compare with the original on the luma (Y) channel of BT.601
// YCbCr in 8-bit steps, ignoring a border of `scale` pixels.
#pragma once

#include <string>
#include <vector>

#include "upres/image.hpp"
#include "upres/upscaler.hpp"

namespace upres {

// Y of BT.601 YCbCr on the 16..235 scale, as MATLAB's rgb2ycbcr, rounded to 8-bit steps.
Image luma_8bit(const Image& rgb);

// PSNR (dB, peak 255) and SSIM (Gaussian 11x11, sigma 1.5) between two luma images, `border`
// pixels cropped on each side.
double psnr_y(const Image& a, const Image& b, int border);
double ssim_y(const Image& a, const Image& b, int border);

// PSNR (dB, peak 255) of two images of one size over every channel after rounding to 8 bits:
// the difference users can see. 100 for identical images.
double psnr_8bit(const Image& a, const Image& b);

struct QualityRow {
  std::string image;
  double psnr = 0, ssim = 0;
};

struct QualityReport {
  std::string method;  // a model name, or "bicubic"
  int scale = 2;
  std::vector<QualityRow> rows;
  double mean_psnr = 0, mean_ssim = 0;
  double seconds = 0;  // upscaling time, summed
};

// Evaluates `method` ("bicubic" or a model name/path) on every .png/.jpg/.webp in `folder`.
QualityReport evaluate_folder(const std::string& folder, const std::string& method, int scale,
                              const UpscaleOptions& options = {}, int limit = 0);

}  // namespace upres
