// The model zoo: models/manifest.json, compiled in (see CMakeLists.txt), plus the cache layout
// that fetch_models (fetch.cpp) fills.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>

#include "upres/files.hpp"

#include "upres/error.hpp"
#include "upres/model.hpp"

namespace upres {

extern const char* const embedded_manifest_json;  // generated from models/manifest.json

namespace {

BorderMode border_from_name(const std::string& s) {
  if (s == "zero") return BorderMode::zero;
  if (s == "reflect") return BorderMode::reflect;
  return BorderMode::replicate;
}

std::vector<ModelInfo> parse_manifest() {
  auto json = nlohmann::json::parse(embedded_manifest_json);
  std::vector<ModelInfo> zoo;
  for (const auto& m : json.at("models")) {
    ModelInfo info;
    info.name = m.at("name");
    info.family = m.at("family");
    info.scale = m.at("scale");
    info.description = m.at("description");
    info.license = m.at("license");
    info.package = m.at("package");
    info.source = {m.value("format", "ncnn"), {m.at("param"), m.at("bin")}};
    info.sha256 = {m.at("param_sha256"), m.at("bin_sha256")};
    info.size_bytes = m.at("bin_size");
    info.border = border_from_name(m.at("border"));
    info.output_adds_input = m.value("output_adds_input", "") == "nearest";
    zoo.push_back(std::move(info));
  }
  return zoo;
}

bool is_file(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

const std::vector<ModelInfo>& model_zoo() {
  static const std::vector<ModelInfo> zoo = parse_manifest();
  return zoo;
}

const ModelInfo* find_model_info(const std::string& name) {
  for (const ModelInfo& m : model_zoo())
    if (m.name == name) return &m;
  return nullptr;
}

std::string model_cache_dir() {
  if (const char* dir = std::getenv("UPRES_MODEL_DIR"); dir && *dir) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return fmt::format("{}/upres/models", xdg);
  const char* home = std::getenv("HOME");
  return fmt::format("{}/.cache/upres/models", home && *home ? home : ".");
}

// Our own models ship in the repository under models/; UPRES_REPO_MODELS_DIR (set at build
// time) says where that folder is.
ModelSource model_source(const ModelInfo& info) {
  std::string base = info.package == "repo" ? std::string(UPRES_REPO_MODELS_DIR)
                                            : fmt::format("{}/{}", model_cache_dir(), info.package);
  ModelSource source = info.source;
  for (std::string& f : source.files) f = fmt::format("{}/{}", base, f);
  return source;
}

const char* default_model_for_scale(int scale) {
  switch (scale) {
    case 3: return "realesr-animevideov3-x3";
    case 4: return "realesr-animevideov3-x4";
    // Ours: native 2x, the most faithful to the source (bsd68 Y-PSNR, docs/BENCHMARKS.md) and the
    // fastest; it ships in the repository, so the default needs no download.
    default: return "upres-compact-x2";
  }
}

std::string zoo_model_at_scale(const std::string& name, int scale) {
  if (find_model_info(name)) return name;
  const std::string member = fmt::format("{}-x{}", name, scale);
  return find_model_info(member) ? member : name;
}

bool model_installed(const ModelInfo& info) {
  for (const std::string& f : model_source(info).files)
    if (!is_file(f)) return false;
  return true;
}

std::string file_sha256(const std::string& path) {
  // In chunks, any size: it hashes models, and the sources and segments of video jobs too.
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::io_failure, fmt::format("{}: cannot open", path));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || !EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr))
    throw Error(ErrorCode::io_failure, fmt::format("{}: sha256 failed", path));
  std::vector<char> chunk(size_t(1) << 20);
  while (in) {
    in.read(chunk.data(), std::streamsize(chunk.size()));
    if (in.gcount() > 0 && !EVP_DigestUpdate(ctx.get(), chunk.data(), size_t(in.gcount())))
      throw Error(ErrorCode::io_failure, fmt::format("{}: sha256 failed", path));
  }
  if (in.bad()) throw Error(ErrorCode::io_failure, fmt::format("{}: read failed", path));
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!EVP_DigestFinal_ex(ctx.get(), digest, &length))
    throw Error(ErrorCode::io_failure, fmt::format("{}: sha256 failed", path));
  std::string hex;
  for (unsigned i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace upres
