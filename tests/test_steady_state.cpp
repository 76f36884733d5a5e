// Steady state: once an Upscaler has seen a frame size, later frames of that size reuse every
// buffer. Video runs hundreds of frames through one Upscaler, so an allocation per frame would
// be a leak of time (and, for big frames, of memory bandwidth).
#include "alloc_counter.hpp"
#include "test_support.hpp"
#include "upres/upscaler.hpp"

namespace upres::test {
namespace {

int64_t large_allocations_while(const std::function<void()>& work, int64_t* count = nullptr) {
  start_counting_allocations();
  work();
  stop_counting_allocations();
  int64_t largest = 0;
  for (const auto& t : allocation_counts()) largest = std::max(largest, t.largest);
  if (count) *count = total_allocations();
  return largest;
}

TEST(SteadyState, UpscaleIntoReusesItsBuffersAndMatchesUpscale) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  auto model = Model::load("realesr-animevideov3-x2");
  for (int scale : {2, 3}) {
    UpscaleOptions options;
    options.scale = scale;
    Upscaler upscaler(model, options);
    Image input = make_test_pattern(67, 41, 3);
    Image out;
    upscaler.upscale_into(input, out);  // warm-up: plans, compiles, sizes the buffers
    const float* buffer = out.data.data();
    Image second = make_test_pattern(67, 41, 4);
    int64_t count = 0;
    const int64_t largest = large_allocations_while([&] { upscaler.upscale_into(second, out); }, &count);
    EXPECT_EQ(out.data.data(), buffer) << "the output buffer was replaced";
    // oneDNN keeps small bookkeeping per primitive call (an argument map); nothing frame-sized
    // may be allocated, and the count must not depend on the frame.
    EXPECT_LT(largest, 4096) << "scale " << scale;
    EXPECT_LT(count, 400) << "scale " << scale;
    RecordProperty("allocations_per_frame_scale_" + std::to_string(scale), std::to_string(count));
    Image expected = Upscaler(model, options).upscale(second);
    ASSERT_EQ(out.width, expected.width);
    EXPECT_EQ(out.data, expected.data);
  }
}

}  // namespace
}  // namespace upres::test
