// The `upres video` and `upres probe` subcommands.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace upres::cli {

// FFmpeg-style spellings (-c:v, -crf, -b:a, -pix_fmt, ...) rewritten to the long options CLI11
// understands, so users can type what they know from ffmpeg.
std::vector<std::string> translate_ffmpeg_style(int argc, char** argv);

struct VideoCommand {
  CLI::App* video = nullptr;
  CLI::App* probe = nullptr;
  int run();  // for whichever was parsed
};

VideoCommand add_video_commands(CLI::App& app);

}  // namespace upres::cli
