#include "video_cli.hpp"
#include "engine_help.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/parse_fields.hpp"
#include "core/shell_quote.hpp"
#include "folders.hpp"
#include "progress.hpp"
#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/segments.hpp"
#include "upres/video.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace upres::cli {
namespace {

// Every video option as a string, with whether the user typed it; typed ones override presets.
struct Flags {
  std::string input, output, preset, format, progress = "auto";
  bool json_output = false;
  std::map<std::string, std::string> values;  // JSON key -> text as typed
  std::vector<std::string> flags_set;         // boolean JSON keys that were given
  std::string audio_tracks;
  std::string work_dir;        // segmented and resumable when set
  double segment_seconds = 0;  // 0: the plan's, else 60
  bool plan_only = false;      // with --work-dir: write the plan, run nothing
  cli::FolderSettings folder;  // a folder of videos
};

Flags g_flags;
CancelToken g_cancel;

// JSON text that cannot throw: file names need not be UTF-8 (bad bytes become U+FFFD).
std::string to_text(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

void on_interrupt(int) {
  g_cancel.cancel();
}

struct OptionSpec {
  const char* cli;  // CLI11 names
  const char* key;  // JSON key
  const char* help;
  enum Kind { text, integer, number, seconds, boolean } kind;
};

const std::vector<OptionSpec>& option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"-m,--model", "model",
       "model name or .param path (default: upres-compact-x2, realesr-animevideov3-x3/x4 by -s)",
       OptionSpec::text},
      {"--mode", "mode", "Frame's modes: none | esrgan-2x | esrgan-4x", OptionSpec::text},
      {"-s,--scale", "scale",
       "output scale, 1.5 too (default: the model's own); one that is not whole is an output size",
       OptionSpec::number},
      {"--tta", "tta",
       "self-ensemble: each frame upscaled in its 8 flips and turns and averaged (slightly truer, 8x the "
       "time)",
       OptionSpec::boolean},
      {"--resolution", "resolution",
       "output size: 720p, 1080p, 1440p, 2160p, 4k (the short side) or WxH; the model whose scale reaches it "
       "runs, then a Lanczos resample gives the exact size (even sides)",
       OptionSpec::text},
      {"-w,--width", "width", "output width (alone: the height keeps the aspect)", OptionSpec::integer},
      {"-h,--height", "height", "output height (alone: the width keeps the aspect)", OptionSpec::integer},
      {"--backend", "backend", cli::kBackendHelp, OptionSpec::text},
      {"--device", "device", cli::kDeviceHelp, OptionSpec::integer},
      {"--precision", "precision", cli::kPrecisionHelp, OptionSpec::text},
      {"--threads", "threads", "inference threads (0: all cores)", OptionSpec::integer},
      {"--tile", "tile", "tile side in input pixels (0: full frame when memory allows)", OptionSpec::integer},
      {"--max-memory", "max_memory", "activation memory budget, e.g. 2G", OptionSpec::text},
      {"--max-size", "max_size", "refuse outputs over this many pixels a side (default 4096)",
       OptionSpec::integer},
      {"--crop", "crop", "crop before upscaling: WxH+X+Y", OptionSpec::text},
      {"--rotate", "rotate", "rotate clockwise: 90, 180 or 270", OptionSpec::integer},
      {"--hflip", "hflip", "mirror left-right", OptionSpec::boolean},
      {"--vflip", "vflip", "mirror top-bottom", OptionSpec::boolean},
      {"--ss", "ss", "start at this time (seconds or HH:MM:SS.ms)", OptionSpec::seconds},
      {"-t,--duration", "t", "keep this much time", OptionSpec::seconds},
      {"--frames", "frames", "stop after this many frames", OptionSpec::integer},
      {"--fps", "fps", "constant output frame rate", OptionSpec::number},
      {"--cfr", "cfr", "constant frame rate at the source's average rate", OptionSpec::boolean},
      {"--hwaccel", "hwaccel", "hardware decoding: none, auto, cuda, vaapi", OptionSpec::text},
      {"--video-codec", "c:v",
       "video encoder (-c:v): libx264, libx265, libvpx-vp9, libaom-av1, libsvtav1, *_nvenc",
       OptionSpec::text},
      {"--crf", "crf", "constant quality (-crf); lower is better", OptionSpec::integer},
      {"--video-bitrate", "b:v", "video bit rate (-b:v), e.g. 8M", OptionSpec::text},
      {"--encoder-preset", "preset", "encoder speed preset (-preset), e.g. slow", OptionSpec::text},
      {"--pix-fmt", "pix_fmt", "output pixel format (-pix_fmt), e.g. yuv420p10le", OptionSpec::text},
      {"--gop", "g", "key frame interval in frames (-g)", OptionSpec::integer},
      {"--audio-codec", "c:a", "audio: copy (default) or an encoder (-c:a aac, libopus)", OptionSpec::text},
      {"--audio-bitrate", "b:a", "audio bit rate (-b:a), e.g. 192k", OptionSpec::text},
      {"--volume", "volume", "audio volume in percent, applied after --normalize (needs -c:a)",
       OptionSpec::number},
      {"--normalize", "normalize",
       "loudness normalisation to -16 LUFS integrated, true peak -1.5 dBTP (EBU R128; needs -c:a)",
       OptionSpec::boolean},
      {"--no-audio", "no_audio", "drop all audio", OptionSpec::boolean},
      {"--no-subtitles", "no_subtitles", "drop all subtitles", OptionSpec::boolean},
      {"--overwrite", "overwrite", "replace existing outputs", OptionSpec::boolean},
  };
  return specs;
}

void add_options(CLI::App* cmd) {
  cmd->set_help_flag("--help", "Print this help message and exit");  // -h is the height
  for (const OptionSpec& s : option_specs()) {
    if (s.kind == OptionSpec::boolean) {
      cmd->add_flag_callback(
          s.cli, [key = std::string(s.key)] { g_flags.flags_set.push_back(key); }, s.help);
    } else {
      cmd->add_option_function<std::string>(
          s.cli, [key = std::string(s.key)](const std::string& v) { g_flags.values[key] = v; }, s.help);
    }
  }
  cmd->add_option("--audio-tracks", g_flags.audio_tracks, "audio tracks to keep, e.g. 0,2 (0 is the first)");
  cmd->add_option("--preset", g_flags.preset, "a named option set, or a .json file of options");
}

json typed_options() {
  json j = json::object();
  for (const OptionSpec& s : option_specs()) {
    const auto it = g_flags.values.find(s.key);
    if (s.kind == OptionSpec::boolean) {
      if (std::find(g_flags.flags_set.begin(), g_flags.flags_set.end(), s.key) != g_flags.flags_set.end())
        j[s.key] = true;
      continue;
    }
    if (it == g_flags.values.end()) continue;
    const std::string& v = it->second;
    try {
      switch (s.kind) {
        case OptionSpec::integer: {
          size_t used = 0;
          j[s.key] = std::stoll(v, &used);
          if (used != v.size()) throw std::invalid_argument(v);
          break;
        }
        case OptionSpec::number: {
          size_t used = 0;
          j[s.key] = std::stod(v, &used);
          if (used != v.size()) throw std::invalid_argument(v);
          break;
        }
        default: j[s.key] = v;
      }
    } catch (const std::logic_error&) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("{} '{}' is not {}", s.cli, v,
                              s.kind == OptionSpec::integer ? "a whole number" : "a number"));
    }
  }
  if (!g_flags.audio_tracks.empty()) {
    if (g_flags.audio_tracks == "none") {
      j["no_audio"] = true;
    } else {
      json tracks = json::array();
      std::string item;
      for (size_t i = 0; i <= g_flags.audio_tracks.size(); ++i) {
        const char c = i < g_flags.audio_tracks.size() ? g_flags.audio_tracks[i] : ',';
        if (c != ',') {
          item += c;
          continue;
        }
        const auto track = parse_whole_number(item, kMaxAudioTrack);
        if (!track)
          throw Error(
              ErrorCode::invalid_argument,
              fmt::format("--audio-tracks '{}' is not a list like 0,2 (or none) of track numbers 0..{}",
                          g_flags.audio_tracks, kMaxAudioTrack));
        tracks.push_back(int(*track));
        item.clear();
      }
      j["audio_tracks"] = tracks;
    }
  }
  return j;
}

VideoOptions build_options(const std::string& input, const std::string& output) {
  VideoOptions o;
  o.engine.precision = Precision::automatic;  // int8 where it pays; --precision f32 for exact
  if (!g_flags.preset.empty())
    o = video_options_from_json(video_preset_json(g_flags.preset), o,
                                fmt::format("preset '{}'", g_flags.preset));
  o = video_options_from_json(to_text(typed_options()), o, "the command line");
  o.input = input;
  o.output = output;
  return o;
}

// The JSON progress line that says how a run ended well.
json result_json(const VideoOptions& o, const VideoStats& s) {
  return {
      {"file", o.input},         {"output", o.output},        {"phase", "result"},    {"frames", s.frames},
      {"width", s.output_width}, {"height", s.output_height}, {"seconds", s.seconds}, {"fps", s.fps},
      {"bytes", s.output_bytes}};
}

// A segmented run (--work-dir): plan or pick up the plan, the missing segments, the join.
int run_segmented_one(const VideoOptions& o) {
  if (g_flags.plan_only) {
    const SegmentManifest m = prepare_segments(o, g_flags.work_dir, g_flags.segment_seconds);
    std::printf(
        "%s: %zu segments planned in %s; run each with `upres segment run %s --index N`, then "
        "`upres segment join %s`\n",
        o.input.c_str(), m.segments.size(), m.work_dir.c_str(), shell_quote(m.work_dir).c_str(),
        shell_quote(m.work_dir).c_str());
    return 0;
  }
  ProgressPrinter printer(g_flags.progress, o.input);
  const SegmentedStats r = run_segmented(
      o, g_flags.work_dir, g_flags.segment_seconds, {}, [&](const VideoProgress& p) { printer(p); },
      &g_cancel);
  const VideoStats& s = r.stats;
  if (printer.is_json()) {
    json j = result_json(o, s);
    j["segments"] = r.segments;
    j["segments_reused"] = r.reused;
    std::printf("%s\n", to_text(j).c_str());
  } else {
    std::printf("%s -> %s: %lld frames at %dx%d in %.1f s (%.2f fps); %d segments, %d reused from %s\n",
                o.input.c_str(), o.output.c_str(), (long long)s.frames, s.output_width, s.output_height,
                s.seconds, s.fps, r.segments, r.reused, g_flags.work_dir.c_str());
  }
  return 0;
}

// `incomplete`, when given, is set to what was wrong with an input that still gave an output.
int run_one(const VideoOptions& o, std::string* incomplete = nullptr) {
  if (!g_flags.work_dir.empty()) return run_segmented_one(o);
  ProgressPrinter printer(g_flags.progress, o.input);
  VideoJob job(o);
  VideoStats s;
  try {
    s = job.run([&](const VideoProgress& p) { printer(p); }, &g_cancel);
  } catch (const Error& e) {
    // A program reading the JSON lines learns how the job ended, whatever the ending.
    if (printer.is_json()) {
      const bool cancelled = e.code() == ErrorCode::cancelled;
      const json j{{"file", o.input},
                   {"output", o.output},
                   {"phase", cancelled ? "cancelled" : "failed"},
                   {"error", e.what()},
                   {"code", error_code_name(e.code())}};
      std::printf("%s\n", to_text(j).c_str());
      std::fflush(stdout);
    }
    throw;
  }
  for (const auto& w : s.warnings) std::fprintf(stderr, "upres: warning: %s\n", w.c_str());
  if (incomplete && s.input_incomplete) {
    *incomplete = "damaged";
    for (const auto& w : s.warnings)
      if (w.find("ended early") != std::string::npos || w.find("cut short") != std::string::npos)
        *incomplete = w;
  }
  if (printer.is_json()) {
    json j = result_json(o, s);
    j["warnings"] = s.warnings;
    j["input_incomplete"] = s.input_incomplete;
    std::printf("%s\n", to_text(j).c_str());
  } else {
    std::printf("%s -> %s: %lld frames at %dx%d in %.1f s (%.2f fps; model %.1f s)\n", o.input.c_str(),
                o.output.c_str(), (long long)s.frames, s.output_width, s.output_height, s.seconds, s.fps,
                s.inference_seconds);
  }
  return 0;
}

int run_video() {
  // A closed terminal (SIGHUP) stops the job as Ctrl-C does: the partial output is removed.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_interrupt);
  std::error_code ec;
  if (!fs::exists(g_flags.input, ec))
    throw Error(ErrorCode::not_found, fmt::format("{}: no such file or folder", g_flags.input));
  if (g_flags.plan_only && g_flags.work_dir.empty())
    throw Error(ErrorCode::invalid_argument, "--plan-only plans segments: give --work-dir DIR too");
  if (!fs::is_directory(g_flags.input)) return run_one(build_options(g_flags.input, g_flags.output));
  if (!g_flags.work_dir.empty())
    throw Error(ErrorCode::invalid_argument,
                "--work-dir takes one video, not a folder; run each video with its own work folder");

  // A folder: every video in it, into the output folder, same names.
  const cli::FolderPlan plan = cli::plan_folder(
      g_flags.input, g_flags.output, [](const fs::path& p) { return is_video_input_path(p.string()); },
      "video files",
      [](const std::string& in, const std::string& dir) {
        return video_folder_output_path(in, dir, g_flags.format);
      },
      g_flags.folder);
  return cli::run_folder(plan, g_flags.folder, "videos", [](const cli::FolderJob& job) {
    std::string incomplete;
    run_one(build_options(job.input.string(), job.output.string()), &incomplete);
    return incomplete;
  });
}

int run_presets() {
  for (const std::string& name : video_preset_names()) {
    std::printf("%-14s %s\n", name.c_str(), video_preset_description(name).c_str());
    // The options it sets, as typed on the command line would set them.
    const json options = json::parse(video_preset_json(name), nullptr, false);
    std::string line;
    if (options.is_object())
      for (const auto& [key, value] : options.items())
        line += fmt::format(" {}={}", key, value.is_string() ? value.get<std::string>() : value.dump());
    std::printf("%-14s%s\n", "", line.c_str());
  }
  std::printf("\nYour own: JSON files of the same keys in $UPRES_PRESET_DIR or ~/.config/upres/presets.\n");
  return 0;
}

int run_probe() {
  const std::string ext = g_flags.format.empty() ? "mp4" : g_flags.format;
  std::string output = g_flags.output;
  if (output.empty()) output = (fs::temp_directory_path() / ("upres-probe." + ext)).string();
  VideoOptions o = build_options(g_flags.input, output);
  o.overwrite = true;  // probing writes nothing; the destination only names the container
  VideoJob job(o);
  VideoPlan p;
  try {
    p = job.validate();
  } catch (const Error& e) {
    // A plan refused (over --max-size, a bad option) still shows what the file holds.
    std::vector<StreamPlan> streams;
    try {
      streams = list_streams(o.input);
    } catch (const Error&) {
      throw e;  // not a video at all: the plan's own message says so
    }
    std::printf("%s\n  streams:\n", o.input.c_str());
    for (const auto& s : streams)
      std::printf("    #%d %-9s %-10s %s\n", s.index, s.type.c_str(), s.codec.c_str(), s.note.c_str());
    std::fflush(stdout);
    throw;
  }
  if (g_flags.json_output) {
    const json j = json::parse(video_plan_json(p));  // the schema the service and MCP use too
    std::printf("%s\n", to_text(j, 2).c_str());
    return 0;
  }
  std::printf("%s\n", o.input.c_str());
  std::printf("  duration %.2f s, ~%lld frames at %.3f fps\n", p.duration_seconds, (long long)p.frames,
              p.frame_rate);
  std::printf("  streams:\n");
  for (const auto& s : p.streams)
    std::printf("    #%d %-9s %-10s %-12s %s\n", s.index, s.type.c_str(), s.codec.c_str(), s.action.c_str(),
                s.note.c_str());
  std::printf("  plan: %dx%d", p.input_width, p.input_height);
  if (p.filters != "null")
    std::printf(" -> [%s] -> %dx%d", p.filters.c_str(), p.filtered_width, p.filtered_height);
  const std::string model =
      p.model.empty() ? "no model" : p.model + " (" + p.precision + " on " + p.backend + ")";
  std::printf(" -> %s x%d", model.c_str(), p.scale);
  // A target size: the model's own output, then the resample to the size asked for.
  const int native_w = p.filtered_width * p.scale, native_h = p.filtered_height * p.scale;
  if (!p.model.empty() && (native_w != p.output_width || native_h != p.output_height))
    std::printf(" -> %dx%d -> resampled (Lanczos)", native_w, native_h);
  std::printf(" -> %dx%d %s %s in %s\n", p.output_width, p.output_height, p.encoder.c_str(),
              p.pixel_format.c_str(), p.container.c_str());
  if (p.estimated_seconds > 0) {
    const auto clock = [](double seconds) {
      const int64_t s = std::llround(seconds);
      return fmt::format("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    };
    const double frames = double(std::max<int64_t>(p.frames, 1));
    std::printf("  estimated time: %s for the model (%.3f s per frame; timed runs gave %.3f..%.3f s)\n",
                clock(p.estimated_seconds).c_str(), p.estimated_seconds / frames,
                p.estimated_seconds_low / frames, p.estimated_seconds_high / frames);
  }
  for (const auto& w : p.warnings) std::printf("  warning: %s\n", w.c_str());
  return 0;
}

}  // namespace

void add_video_job_options(CLI::App* cmd) {
  add_options(cmd);
}

VideoOptions video_options_from_flags(const std::string& input, const std::string& output) {
  return build_options(input, output);
}

std::vector<std::string> translate_ffmpeg_style(int argc, char** argv) {
  static const std::map<std::string, std::string> aliases = {{"-c:v", "--video-codec"},
                                                             {"-vcodec", "--video-codec"},
                                                             {"-c:a", "--audio-codec"},
                                                             {"-acodec", "--audio-codec"},
                                                             {"-b:v", "--video-bitrate"},
                                                             {"-b:a", "--audio-bitrate"},
                                                             {"-crf", "--crf"},
                                                             {"-preset", "--encoder-preset"},
                                                             {"-pix_fmt", "--pix-fmt"},
                                                             {"-g", "--gop"},
                                                             {"-ss", "--ss"},
                                                             {"-an", "--no-audio"},
                                                             {"-sn", "--no-subtitles"},
                                                             {"-y", "--overwrite"}};
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const auto it = aliases.find(argv[i]);
    args.push_back(it == aliases.end() ? argv[i] : it->second);
  }
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  return args;
}

VideoCommand add_video_commands(CLI::App& app) {
  VideoCommand c;
  c.video = app.add_subcommand("video", "upscale a video, or every video in a folder");
  c.video->add_option("input", g_flags.input, "video file or folder")->required();
  c.video->add_option("-o,--output", g_flags.output, "output file (.mp4 .mkv .webm .mov), or folder")
      ->required();
  c.video->add_option("--format", g_flags.format, "container for folder outputs: mp4, mkv, webm or mov")
      ->check(CLI::IsMember(video_format_names()));
  c.video->add_flag("--recursive", g_flags.folder.recursive,
                    "a folder's subfolders too, mirrored under the output folder");
  c.video->add_flag("--skip-existing", g_flags.folder.skip_existing,
                    "in a folder, leave outputs that are already there (to finish an interrupted run)");
  c.video->add_option("--progress", g_flags.progress, "auto (a bar on terminals), bar, json or none")
      ->capture_default_str();
  c.video->add_option("--work-dir", g_flags.work_dir,
                      "upscale in segments kept in this folder: rerun the same command after a crash and it "
                      "goes on (`upres segment` runs one segment, for clusters)");
  c.video->add_option(
      "--segment-seconds", g_flags.segment_seconds,
      "segment length with --work-dir, cut at the source's keyframes (default: 60, or what the "
      "work folder's plan has)");
  c.video->add_flag("--plan-only", g_flags.plan_only,
                    "with --work-dir: write the plan and stop (a scheduler then runs `upres segment run`)");
  add_options(c.video);
  c.video->footer(
      "FFmpeg spellings work too: -c:v -crf -preset -b:v -pix_fmt -g -c:a -b:a -ss -an -sn -y.\n"
      "Presets: " +
      [] {
        std::string s;
        for (const auto& n : video_preset_names()) s += (s.empty() ? "" : ", ") + n;
        return s;
      }() +
      " (--preset NAME or a .json file; typed options override the preset).");

  c.presets = app.add_subcommand("presets", "list the named option sets for `upres video --preset NAME`");
  c.probe =
      app.add_subcommand("probe", "show a video's streams and the plan upres would run, with estimated time");
  c.probe->add_option("input", g_flags.input, "video file")->required();
  c.probe->add_option("-o,--output", g_flags.output, "planned output file (names the container)");
  c.probe->add_option("--format", g_flags.format, "planned container: mp4, mkv, webm or mov")
      ->check(CLI::IsMember(video_format_names()));
  c.probe->add_flag("--json", g_flags.json_output, "machine-readable output");
  add_options(c.probe);
  return c;
}

int VideoCommand::run() {
  if (video->parsed()) {
    try {
      return run_video();
    } catch (const Error& e) {
      if (e.code() != ErrorCode::cancelled) throw;
      if (!g_flags.work_dir.empty())
        std::fprintf(stderr,
                     "\nupres: cancelled; finished segments are kept in %s: run the same command to go on\n",
                     g_flags.work_dir.c_str());
      else
        std::fprintf(stderr, "\nupres: cancelled; the partial output was removed\n");
      return 130;
    }
  }
  if (presets->parsed()) return run_presets();
  return run_probe();
}

}  // namespace upres::cli
