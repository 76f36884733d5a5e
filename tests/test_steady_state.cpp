// Steady state: once an Upscaler has seen a frame size, later frames of that size reuse every
// buffer. Video runs hundreds of frames through one Upscaler, so an allocation per frame would
// be a leak of time (and, for big frames, of memory bandwidth).
#include "alloc_counter.hpp"
#include "media/av_common.hpp"
#include "media/color.hpp"
#include "runtime/frame_path.hpp"
#include "test_support.hpp"
#include "upres/upscaler.hpp"
#include "upres/video.hpp"

#include <algorithm>
#include <filesystem>
#include <tuple>

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

// The Vulkan backend after warm-up: each frame is one submission of a command buffer recorded at
// compile time, into buffers reserved then: no device memory is allocated, and the host side
// allocates nothing frame-sized. (lavapipe itself mallocs a few bytes of bookkeeping per
// workgroup it runs, so the count of small allocations follows the frame size there.)
TEST(SteadyState, VulkanFramesAllocateNoDeviceMemory) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
#if UPRES_WITH_VULKAN
  auto model = Model::load("realesr-animevideov3-x2");
  UpscaleOptions options;
  options.backend = "vulkan";
  options.precision = Precision::f16;
  Upscaler upscaler(model, options);
  Image out;
  upscaler.upscale_into(make_test_pattern(37, 29, 3), out);  // warm-up
  const int64_t device_allocations = vulkan::Context::get(0)->allocations();
  const Image second = make_test_pattern(37, 29, 4);
  int64_t count = 0;
  // The smallest of three frames' largest allocations: one upres made per frame shows in every
  // frame, while lavapipe now and then grows its own pools when its threads contend on a busy
  // machine (141 KB seen once under load).
  int64_t largest = INT64_MAX;
  for (int frame = 0; frame < 3; ++frame)
    largest = std::min(largest, large_allocations_while([&] { upscaler.upscale_into(second, out); }, &count));
  EXPECT_EQ(vulkan::Context::get(0)->allocations(), device_allocations);
  EXPECT_LT(largest, 4096);
  RecordProperty("host_allocations_per_frame", std::to_string(count));
  expect_no_validation_messages();
#endif
}

// Whole video frames on the device (runtime/frame_path.hpp): after the first two frames (one per
// slot), a frame allocates no device memory and nothing frame-sized on the host.
TEST(SteadyState, VulkanFramePathAllocatesNothingPerFrame) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
#if UPRES_WITH_VULKAN
  auto model = Model::load("realesr-animevideov3-x2");
  UpscaleOptions options;
  options.backend = "vulkan";
  options.precision = Precision::f16;
  Upscaler upscaler(model, options);
  const ColorSpec color{AVCOL_SPC_BT709, AVCOL_RANGE_MPEG, AVCHROMA_LOC_LEFT};
  auto path = FramePath::make(upscaler, plane_format(AV_PIX_FMT_YUV420P10LE, 37, 29, color),
                              plane_format(AV_PIX_FMT_YUV420P10LE, 74, 58, color));
  ASSERT_NE(path, nullptr);
  FramePtr in = make_frame(), out = make_frame();
  for (auto& [f, w, h] : {std::tuple{in.get(), 37, 29}, std::tuple{out.get(), 74, 58}}) {
    f->format = AV_PIX_FMT_YUV420P10LE;
    f->width = w;
    f->height = h;
    ASSERT_GE(av_frame_get_buffer(f, 0), 0);
  }
  std::vector<float> scratch;
  image_to_frame(make_test_pattern(37, 29, 3), color, *in, scratch);
  const Planes pin = planes_of(*in), pout = planes_of(*out);
  for (int warm = 0; warm < 2; ++warm) path->submit(pin, pout).wait();
  const int64_t device_allocations = vulkan::Context::get(0)->allocations();
  int64_t count = 0;
  const int64_t largest = large_allocations_while(
      [&] {
        Ticket a = path->submit(pin, pout);
        Ticket b = path->submit(pin, pout);
        b.wait();
        a.wait();
      },
      &count);
  EXPECT_EQ(vulkan::Context::get(0)->allocations(), device_allocations);
  EXPECT_LT(largest, 4096);
  expect_no_validation_messages();
#endif
}

// Weights live on the device once however many executors use them: a second tile shape of the
// same model allocates its activations, not the model again.
TEST(SteadyState, VulkanExecutorsShareTheirWeights) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
#if UPRES_WITH_VULKAN
  auto model = Model::load("realesr-animevideov3-x2");
  auto backend = make_backend("vulkan");
  auto graph = backend->prepare(model->graph(), {3, 32, 32});
  auto context = vulkan::Context::get(0);
  const int64_t before = context->allocations();
  auto first = backend->compile(*graph, {3, 24, 20});
  const int64_t first_allocations = context->allocations() - before;
  auto second = backend->compile(*graph, {3, 17, 29});
  const int64_t second_allocations = context->allocations() - before - first_allocations;
  int convolutions = 0;
  for (const Node& n : graph->nodes) convolutions += n.type == OpType::convolution;
  // Each convolution has a weight and a parameter buffer; the second executor makes neither.
  EXPECT_LE(second_allocations + 2 * convolutions, first_allocations);
  Tensor x = random_tensor({3, 17, 29}, 1);
  EXPECT_LE(
      max_relative_error(run_graph(*backend, *graph, x), run_graph(*make_reference_backend(), *graph, x)),
      1e-4);
  expect_no_validation_messages();
#endif
}

}  // namespace
}  // namespace upres::test

namespace upres::test {
namespace {

// The video pipeline over 140 frames: between frame 20 and frame 120 the stages we own
// (conversions, queues, the upscaler's buffers) allocate nothing at all; the threads that run
// FFmpeg or oneDNN see only those libraries' small per-call bookkeeping, never a frame buffer.
TEST(SteadyState, VideoPipelineAllocatesNoFrameMemoryPerFrame) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x2");
  char tmpl[] = "/tmp/upres-alloc-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  TestVideoSpec spec;
  spec.width = 64;
  spec.height = 48;
  spec.frames = 140;
  spec.audio = true;
  write_test_video(dir + "/in.mkv", spec);
  VideoOptions o;
  o.input = dir + "/in.mkv";
  o.output = dir + "/out.mkv";
  o.preset = "ultrafast";
  o.engine.threads = 2;
  std::vector<ThreadAllocations> counts;
  const VideoStats stats = VideoJob(o).run([&](const VideoProgress& p) {
    if (p.phase != VideoPhase::upscaling) return;
    if (p.frames_done == 20) start_counting_allocations();
    if (p.frames_done == 120) {
      stop_counting_allocations();
      counts = allocation_counts();
    }
  });
  std::filesystem::remove_all(dir);
  ASSERT_EQ(stats.frames, 140);
  ASSERT_FALSE(counts.empty());
  const int64_t frame_bytes = int64_t(128) * 96 * 3 * sizeof(float);  // one output frame as the model sees it
  bool saw_infer = false;
  for (const ThreadAllocations& t : counts) {
    RecordProperty("allocations_" + t.thread,
                   std::to_string(t.count) + " (" + std::to_string(t.bytes) + " bytes)");
    if (t.thread == "upres-conv-in" || t.thread == "upres-conv-out") {
      EXPECT_EQ(t.count, 0) << t.thread << " allocated " << t.bytes << " bytes";
    }
    if (t.thread == "upres-infer") {
      saw_infer = true;
      EXPECT_LT(t.count, 100 * 300) << "oneDNN's bookkeeping grew";
    }
    // Decode and encode run FFmpeg, which allocates each compressed packet and grows its
    // muxer's buffers; everything else (oneDNN's workers included) may only keep small books.
    if (t.thread == "upres-decode" || t.thread == "upres-encode")
      EXPECT_LT(t.largest, frame_bytes) << t.thread << " allocated a frame-sized block";
    else
      EXPECT_LT(t.largest, 4096) << t.thread;
  }
  EXPECT_TRUE(saw_infer) << "the allocation counter did not see the pipeline's threads";
}

}  // namespace
}  // namespace upres::test
