// upres: int8 inference and the calibrations it needs.
//
// With UpscaleOptions::precision = Precision::int8 the cpu backend runs a model's wide
// convolutions (16 or more input channels) on 8-bit integers with VNNI instructions, about 3x
// faster than float32. Each activation such a convolution reads is clamped to [-t, t] and rounded
// to one of 255 evenly spaced steps; each output channel's weights get their own step. The
// clamp t of every activation comes from a calibration: the model runs in float32 over sample
// pictures and t is chosen to minimise the squared error that clamping plus rounding adds.
// Narrow convolutions (the first, on RGB) and every other op stay float32, and so does any
// activation something other than an int8 convolution reads.
//
//   auto model = upres::Model::load("realesr-animevideov3-x2");
//   std::vector<upres::Image> pictures = ...;  // a few dozen photos or frames like the inputs
//   upres::Int8Calibration table = upres::calibrate_int8(*model, pictures);
//   upres::write_calibration(table, "realesr-animevideov3-x2.int8.json");
//
// Models in the zoo come with tables (models/int8/, measured on the training photos and compiled
// into the library). Model::load also reads NAME.int8.json beside a model's .param file, which
// takes precedence, so any model can be calibrated by its user (`upres models calibrate`).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "upres/image.hpp"
#include "upres/model.hpp"

namespace upres {

struct Int8Calibration {
  std::string model;           // the model's name when it was measured
  std::string weights_sha256;  // of the model's .bin: a table serves only the weights it was made for
  std::string measured_on;     // what the pictures were, for people reading the file
  int pictures = 0;
  // PSNR (dB, 8-bit RGB) of int8 output against float32 output on pictures that sampling did
  // not use; 0 when not measured. Precision::automatic uses int8 only at
  // kAutoInt8MinFidelity or more.
  double fidelity_db = 0;
  // Activation (blob) name, as the model file names it -> clamp threshold t. Only activations that some
  // convolution with 16 or more input channels reads are listed.
  std::map<std::string, float> thresholds;
  // The same per channel, and how much to even the channels' ranges out (0: not at all, 1: fully)
  // where the plan may (int8 convolution to int8 convolution, through ReLU or PReLU).
  std::map<std::string, std::vector<float>> channel_thresholds;
  double equalization = 0;
  // Y-PSNR (dB) that int8 output loses against float32 output, each against the original, on
  // judging pictures that neither sampling nor tuning saw (the super-resolution protocol of
  // upres/quality.hpp); -1 when not measured. Activations calibration left out of `thresholds` to
  // meet the loss budget are read in float32 (`float_layers` names them, for people reading it).
  double loss_db = -1;
  std::vector<std::string> float_layers;
};

// The fidelity below which Precision::automatic keeps float32: under it, int8's rounding can show
// as fine grain on smooth areas.
constexpr double kAutoInt8MinFidelity = 38.0;

struct CalibrationOptions {
  int crop = 96;            // each picture contributes its centre, this many pixels a side (smaller: whole)
  int max_pictures = 32;    // sampled (tuning pictures come on top)
  std::string measured_on;  // copied into the table
  // Every fourth sampled picture, and half the tuning ones, also go in with Gaussian grain of this
  // standard deviation (0..1 units; 0: none), so that grainy sources stay within the thresholds.
  double grain = 25.0 / 255;
  // The most Y-PSNR (dB) int8 may lose against float32 on the judging pictures: activations
  // whose rounding costs most are kept in float32, one at a time, until the loss is within it.
  double max_loss_db = 0.08;
  int judge_side = 256;  // judging pictures are cropped to their centre, this many pixels a side
};

// Runs `model` in float32 (cpu backend) over the centre crop of each picture, picks every
// threshold, then tunes them (tune_int8) on a share of the pictures that sampling leaves out, and
// meets the loss budget (keep_float_within_budget) on another share that neither saw: of N
// pictures, the last min(16, N / 4) judge (N >= 8), the min(8, rest / 4) before them tune
// (rest >= 4), the others are sampled. Throws Error(invalid_argument) when `pictures` is empty.
Int8Calibration calibrate_int8(const Model& model, const std::vector<Image>& pictures,
                               const CalibrationOptions& options = {});

// How calibrate_int8 splits its pictures (above): the tuning share, or all of them with fewer than
// 4 (then sampled and tuned on alike); and the judging share (empty with fewer than 8).
std::vector<Image> calibration_tuning_pictures(const std::vector<Image>& pictures);
std::vector<Image> calibration_judging_pictures(const std::vector<Image>& pictures);

// Leaves out of `table` (so reads in float32), one at a time, the activation whose int8 rounding
// costs most, until the Y-PSNR loss against float32 on `judges` (high-resolution pictures, shrunk
// by the model's scale and upscaled back as quality.hpp measures) is within max_loss_db; records
// the loss and the layers kept in float32. Judging pictures must not be ones calibration used.
void keep_float_within_budget(const Model& model, Int8Calibration& table, const std::vector<Image>& judges,
                              const CalibrationOptions& options = {});

// How many pictures to pass calibrate_int8 so that it samples `sampled` of them and holds its
// tuning share back on top.
size_t calibration_picture_count(size_t sampled);

// Scales all thresholds of `table` by the one factor (from 0.5 to 1) that brings int8 output
// closest to float32 on the centres of `pictures` (at most 8, 128 pixels a side), and records
// that fidelity. Fast: the cpu backend runs both. Per-activation thresholds minimise each activation's own
// error; errors then add up over many layers, and clamping a little harder usually pays.
void tune_int8(const Model& model, Int8Calibration& table, const std::vector<Image>& pictures,
               const CalibrationOptions& options = {});

// JSON text of a table, and back. calibration_from_json throws Error(invalid_argument) naming
// `source` when the text is not such a table.
std::string calibration_to_json(const Int8Calibration& table);
Int8Calibration calibration_from_json(const std::string& text, const std::string& source);

// Writes the JSON atomically (temporary file, then rename); reads it back (Error(not_found) or
// Error(invalid_argument) naming the file).
void write_calibration(const Int8Calibration& table, const std::string& path);
Int8Calibration read_calibration(const std::string& path);

// Where Model::load looks for a table made by the user: NAME.int8.json beside the .param file.
std::string calibration_path_for(const std::string& param_path);

}  // namespace upres
