// A resize plan for one (input size, output size, filter): the filter taps are computed once and
// the intermediate buffer is kept, so resizing a stream of same-sized frames allocates nothing.
#pragma once

#include <vector>

#include "upres/image.hpp"

// Transitional: src/pipeline/video_job.cpp (its time estimate) finds make_test_pattern through this
// header since the declaration left upres/image.hpp; once it includes image/test_pattern.hpp itself,
// drop this line.
#include "image/test_pattern.hpp"

namespace upres {

class Resizer {
 public:
  Resizer() = default;
  Resizer(int in_width, int in_height, int out_width, int out_height, ResampleFilter filter);

  bool matches(int in_width, int in_height, int out_width, int out_height, ResampleFilter filter) const;
  // `out` is reshaped only when its size differs; the bit depth follows the input.
  void run(const Image& in, Image& out);

  struct Taps {
    std::vector<int> index;
    std::vector<float> weight;
  };

 private:
  int in_w_ = 0, in_h_ = 0, out_w_ = 0, out_h_ = 0;
  ResampleFilter filter_ = ResampleFilter::bicubic;
  std::vector<Taps> taps_x_, taps_y_;
  Image tmp_;  // the horizontal pass: out_w x in_h
};

// Makes `image` a width x height x channels image, keeping its buffer when the shape already
// matches (the contents are then stale, to be overwritten).
void reshape_image(Image& image, int width, int height, int channels, int bit_depth);

}  // namespace upres
