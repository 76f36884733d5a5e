// Models users register (`upres models add`): each in model_cache_dir()/user/NAME/, the model's files
// copied there under the new name plus upres-model.json, the record. A model is added into a
// hidden folder first and renamed into place, so a failed or interrupted add leaves nothing.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/loader.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/int8.hpp"
#include "upres/model.hpp"

namespace upres {
namespace {

namespace fs = std::filesystem;

constexpr const char* kRecord = "upres-model.json";

fs::path user_dir() {
  return fs::path(model_cache_dir()) / "user";
}

void copy_model_file(const fs::path& from, const fs::path& to) {
  require_regular_file(from.string());  // never a device or a pipe: copying one may not end
  std::error_code ec;
  if (const auto size = fs::file_size(from, ec); !ec && int64_t(size) > kMaxModelFileBytes)
    throw Error(ErrorCode::limit_exceeded,
                fmt::format("{} is {} bytes, over the limit of {} bytes for a model file", from.string(),
                            size, kMaxModelFileBytes));
  if (!fs::copy_file(from, to, ec))
    throw Error(ErrorCode::io_failure,
                fmt::format("cannot copy {} to {}: {}", from.string(), to.string(), ec.message()));
}

bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 100 && name[0] != '.' && name[0] != '-' &&
         std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::unique_ptr<UserModel> read_record(const fs::path& folder) {
  try {
    std::ifstream in(folder / kRecord);
    if (!in) return nullptr;
    const nlohmann::json j = nlohmann::json::parse(in);
    auto m = std::make_unique<UserModel>();
    m->name = j.at("name").get<std::string>();
    m->source.format = j.at("format").get<std::string>();
    for (const auto& f : j.at("files")) m->source.files.push_back((folder / f.get<std::string>()).string());
    m->sha256 = j.at("sha256").get<std::string>();
    m->scale = j.at("scale").get<int>();
    m->border = j.at("border").get<int>();
    m->alignment = j.value("alignment", 1);
    m->added_from = j.value("added_from", "");
    if (m->name != folder.filename().string() || m->source.files.empty()) return nullptr;
    return m;
  } catch (const std::exception&) {
    return nullptr;  // a damaged record: the model is not listed (add it again)
  }
}

// Staging folders of adds whose process is gone (killed mid-copy): removed, so that an interrupted
// add leaves nothing behind for long.
void sweep_abandoned_adds() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(user_dir(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(".adding-", 0) != 0) continue;
    const pid_t pid = pid_t(std::strtol(name.substr(name.rfind('-') + 1).c_str(), nullptr, 10));
    if (pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
}

}  // namespace

std::vector<UserModel> user_models() {
  std::vector<UserModel> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(user_dir(), ec)) {
    if (!e.is_directory() || e.path().filename().string()[0] == '.') continue;
    if (auto m = read_record(e.path())) found.push_back(std::move(*m));
  }
  std::sort(found.begin(), found.end(),
            [](const UserModel& a, const UserModel& b) { return a.name < b.name; });
  return found;
}

std::unique_ptr<UserModel> find_user_model(const std::string& name) {
  if (!valid_name(name)) return nullptr;
  return read_record(user_dir() / name);
}

UserModel add_user_model(const std::string& path, const std::string& name_in, bool replace) {
  const ModelSource source = sniff_model_file(path);
  const std::string name = name_in.empty() ? fs::path(source.files.front()).stem().string() : name_in;
  if (!valid_name(name))
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("'{}' cannot name a model: use letters, digits, '.', '_' and '-' (--name NAME)", name));
  if (find_model_info(name))
    throw Error(ErrorCode::invalid_argument,
                fmt::format("'{}' is the name of a zoo model; choose another with --name NAME", name));
  const fs::path dest = user_dir() / name;
  if (fs::exists(dest) && !replace)
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("a model named '{}' is already added; use --replace to replace it, or --name", name));

  fs::create_directories(user_dir());
  sweep_abandoned_adds();
  const fs::path staging = user_dir() / fmt::format(".adding-{}-{}", name, getpid());
  fs::remove_all(staging);
  fs::create_directories(staging);
  try {
    // The files under the new name, keeping their suffixes (.param/.bin, .onnx).
    ModelSource copied{source.format, {}};
    nlohmann::json files = nlohmann::json::array();
    for (const std::string& f : source.files) {
      const std::string file = name + fs::path(f).extension().string();
      copy_model_file(f, staging / file);
      copied.files.push_back((staging / file).string());
      files.push_back(file);
    }
    // A calibration table the user made for it comes along.
    const std::string table = calibration_path_for(source.files.front());
    if (fs::exists(table)) copy_model_file(table, calibration_path_for(copied.files.front()));
    // Loading it checks that upres runs it and gives its geometry by shape inference.
    std::shared_ptr<const Model> model = Model::load_source(copied, name, BorderMode::replicate);
    UserModel m;
    m.name = name;
    m.sha256 = file_sha256(copied.weights_file());
    m.scale = model->geometry().scale;
    m.border = model->geometry().border;
    m.alignment = model->geometry().alignment;
    m.added_from = fs::absolute(path).lexically_normal().string();
    const nlohmann::json record{{"name", name},
                                {"format", source.format},
                                {"files", files},
                                {"sha256", m.sha256},
                                {"scale", m.scale},
                                {"border", m.border},
                                {"alignment", m.alignment},
                                {"added_from", m.added_from}};
    std::ofstream out(staging / kRecord);
    out << record.dump(2) << "\n";
    out.close();
    if (!out)
      throw Error(ErrorCode::io_failure, fmt::format("cannot write {}", (staging / kRecord).string()));
    if (fs::exists(dest)) fs::remove_all(dest);
    fs::rename(staging, dest);
    for (const auto& f : files) m.source.files.push_back((dest / f.get<std::string>()).string());
    m.source.format = source.format;
    return m;
  } catch (...) {
    std::error_code ec;
    fs::remove_all(staging, ec);
    throw;
  }
}

}  // namespace upres
