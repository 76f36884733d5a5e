// The progress display of the video commands: a bar on a terminal, or JSON lines for programs.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/video.hpp"

namespace upres::cli {

// Draws progress on a terminal, or JSON lines for programs, at most a few times a second.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(const std::string& mode, const std::string& name) : name_(name) {
    if (mode == "auto")
      mode_ = isatty(STDERR_FILENO) ? "bar" : "none";
    else if (mode == "bar" || mode == "json" || mode == "none")
      mode_ = mode;
    else
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("--progress '{}': use auto, bar, json or none", mode));
    // JSON lines are reports like the service's; a bar on a terminal redraws more often.
    throttle_ = ProgressThrottle(mode_ == "json" ? kProgressInterval : kBarInterval);
  }
  void operator()(const VideoProgress& p) {
    if (!throttle_.pass(p.phase == VideoPhase::done || p.phase != last_phase_)) return;
    last_phase_ = p.phase;
    if (mode_ == "json") {
      nlohmann::json j{{"file", name_},
                       {"phase", video_phase_name(p.phase)},
                       {"frame", p.frames_done},
                       {"frames", p.frames_total},
                       {"fps", p.fps},
                       {"eta", p.eta_seconds},
                       {"elapsed", p.elapsed_seconds},
                       {"progress", p.fraction}};
      if (p.segments_total > 0) {
        j["segments"] = p.segments_total;
        j["segments_done"] = p.segments_done;
        j["segments_reused"] = p.segments_reused;
      }
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      std::fflush(stdout);
    } else if (mode_ == "bar") {
      const int width = 30, filled = int(p.fraction * width + 0.5);
      std::string bar(size_t(filled), '#');
      bar.resize(size_t(width), '-');
      std::string eta = p.eta_seconds >= 0
                            ? fmt::format("{:02}:{:02}", int(p.eta_seconds) / 60, int(p.eta_seconds) % 60)
                            : "--:--";
      std::fprintf(stderr, "\r[%s] %3d%% %-9s %lld/%lld frames %5.2f fps ETA %s ", bar.c_str(),
                   int(p.fraction * 100 + 0.5), video_phase_name(p.phase), (long long)p.frames_done,
                   (long long)p.frames_total, p.fps, eta.c_str());
      if (p.segments_total > 0)
        std::fprintf(stderr, "segments %d/%d (%d reused) ", p.segments_done, p.segments_total,
                     p.segments_reused);
      if (p.phase == VideoPhase::done) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    }
  }
  bool is_json() const { return mode_ == "json"; }

 private:
  static constexpr std::chrono::milliseconds kBarInterval{200};
  std::string mode_, name_;
  ProgressThrottle throttle_;
  VideoPhase last_phase_ = VideoPhase::done;
};

}  // namespace upres::cli
