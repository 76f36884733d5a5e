// End-to-end video throughput beside inference alone, on the same frames in the same run:
//
//   video_bench CLIP [--frames 60] [--model NAME] [--threads 2] [--precision f32|int8|auto]
//
// 1. The whole job (decode, convert, model, convert back, x264, mux) on the first N frames, its
//    fps and the process's peak RSS.
// 2. The same N frames decoded into memory first, then only Upscaler::upscale_into timed.
// The pipeline hides everything but the model when end-to-end fps is close to inference fps.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "media/color.hpp"
#include "media/video_filter.hpp"
#include "media/video_input.hpp"
#include "upres/error.hpp"
#include "upres/video.hpp"

using namespace upres;

namespace {

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;
}

std::vector<Image> decode_frames(const std::string& path, int count) {
  VideoInput input(path);
  FramePtr frame = make_frame(), out = make_frame();
  PacketPtr packet = make_packet();
  std::vector<Image> images;
  bool eof = false;
  while (int(images.size()) < count) {
    if (input.receive(frame.get())) {
      Image img;
      frame_to_image(*frame, resolve_color(*frame), img);
      images.push_back(std::move(img));
      av_frame_unref(frame.get());
      continue;
    }
    if (input.drained()) break;
    if (eof) {
      input.send(nullptr);
      continue;
    }
    if (!input.read_packet(packet.get())) {
      eof = true;
      continue;
    }
    if (packet->stream_index == input.video_index()) input.send(packet.get());
    av_packet_unref(packet.get());
  }
  return images;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: video_bench CLIP [--frames N] [--model NAME] [--threads N] [--precision P]\n");
    return 2;
  }
  const std::string clip = argv[1];
  int frames = 60, threads = 2;
  std::string model_name = "realesr-animevideov3-x2", precision = "f32";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--frames")
      frames = std::atoi(argv[i + 1]);
    else if (flag == "--model")
      model_name = argv[i + 1];
    else if (flag == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (flag == "--precision")
      precision = argv[i + 1];
  }
  try {
    auto model = Model::load(model_name);
    char tmpl[] = "/tmp/upres-video-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    VideoOptions o;
    o.input = clip;
    o.output = dir + "/out.mp4";
    o.model = model_name;
    o.max_frames = frames;
    o.engine.threads = threads;
    o.engine.precision = precision_from_name(precision);
    VideoJob job(o, model);
    const std::string ran_at = job.validate().precision;
    const VideoStats s = job.run();
    const double rss = peak_rss_mib();
    std::remove(o.output.c_str());
    rmdir(dir.c_str());

    const std::vector<Image> images = decode_frames(clip, frames);
    UpscaleOptions uo;
    uo.threads = threads;
    uo.precision = o.engine.precision;
    Upscaler up(model, uo);
    Image out;
    up.upscale_into(images[0], out);  // warm-up: compile, size the buffers
    const auto t0 = std::chrono::steady_clock::now();
    for (const Image& img : images) up.upscale_into(img, out);
    const double infer_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double infer_fps = double(images.size()) / infer_s;
    std::printf(
        "precision=%s frames=%lld e2e_fps=%.3f inference_fps=%.3f e2e_over_inference=%.1f%% "
        "peak_rss_mib=%.0f "
        "output=%dx%d\n",
        ran_at.c_str(), (long long)s.frames, s.fps, infer_fps, 100.0 * s.fps / infer_fps, rss, s.output_width,
        s.output_height);
  } catch (const Error& e) {
    std::fprintf(stderr, "video_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
