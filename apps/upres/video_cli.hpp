// The `upres video` and `upres probe` subcommands.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "upres/video.hpp"

namespace upres::cli {

// FFmpeg-style spellings (-c:v, -crf, -b:a, -pix_fmt, ...) rewritten to the long options CLI11
// understands, so users can type what they know from ffmpeg.
std::vector<std::string> translate_ffmpeg_style(int argc, char** argv);

struct VideoCommand {
  CLI::App* video = nullptr;
  CLI::App* probe = nullptr;
  CLI::App* presets = nullptr;
  int run();  // for whichever was parsed
};

VideoCommand add_video_commands(CLI::App& app);

// Every option of `upres video` that shapes the job (model, encoder, filters, audio, preset...),
// for other commands that plan video jobs (`upres cluster slurm`), and the options they give.
void add_video_job_options(CLI::App* cmd);
VideoOptions video_options_from_flags(const std::string& input, const std::string& output);

}  // namespace upres::cli
