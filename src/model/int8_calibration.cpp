// int8 calibration tables: JSON in and out, the sidecar file name, the tables shipped for the zoo.
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/json_input.hpp"
#include "model/int8_tables.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/int8.hpp"

namespace upres {

struct EmbeddedInt8Table {
  const char* model;
  const char* json;
};
extern const EmbeddedInt8Table embedded_int8_tables[];  // generated from models/int8/*.json

namespace {
constexpr int kFormatVersion = 1;
}

std::string calibration_to_json(const Int8Calibration& table) {
  nlohmann::ordered_json j;
  j["format"] = "upres-int8-calibration";
  j["version"] = kFormatVersion;
  j["model"] = table.model;
  j["weights_sha256"] = table.weights_sha256;
  j["measured_on"] = table.measured_on;
  j["pictures"] = table.pictures;
  j["fidelity_db"] = table.fidelity_db;
  nlohmann::ordered_json thresholds = nlohmann::ordered_json::object();
  for (const auto& [blob, t] : table.thresholds) thresholds[blob] = t;
  j["thresholds"] = thresholds;
  j["equalization"] = table.equalization;
  nlohmann::ordered_json channels = nlohmann::ordered_json::object();
  for (const auto& [blob, t] : table.channel_thresholds) channels[blob] = t;
  j["channel_thresholds"] = channels;
  if (table.loss_db >= 0) j["loss_db"] = table.loss_db;
  if (!table.float_layers.empty()) j["float_layers"] = table.float_layers;
  return j.dump(1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
         "\n";  // folder names need not be UTF-8
}

Int8Calibration calibration_from_json(const std::string& text, const std::string& source) {
  auto fail = [&](const std::string& problem) {
    return Error(ErrorCode::invalid_argument,
                 fmt::format("{}: not an int8 calibration table: {}", source, problem));
  };
  nlohmann::json j;
  try {
    j = parse_outside_json(text, "the table");
  } catch (const Error& e) {
    throw fail(e.what());
  }
  if (!j.is_object()) throw fail("not a JSON object");
  // Every field is read with its type checked: a table is a user's file, and a wrong type must be
  // a message, not a JSON library exception.
  auto field = [&](const char* key, bool (nlohmann::json::*is)() const noexcept, const char* what,
                   bool required) -> const nlohmann::json* {
    if (!j.contains(key)) {
      if (required) throw fail(fmt::format("\"{}\" is missing", key));
      return nullptr;
    }
    if (!(j[key].*is)()) throw fail(fmt::format("\"{}\" must be {}", key, what));
    return &j[key];
  };
  auto positive = [&](const nlohmann::json& v, const std::string& blob) {
    const double t = v.is_number() ? v.get<double>() : -1;
    if (!(t > 0) || !std::isfinite(t) || t > 1e30)
      throw fail(fmt::format("a threshold of '{}' is not a positive number", blob));
    return float(t);
  };
  if (*field("format", &nlohmann::json::is_string, "a string", true) != "upres-int8-calibration")
    throw fail("\"format\" is not \"upres-int8-calibration\"");
  const nlohmann::json& version = *field("version", &nlohmann::json::is_number_integer, "an integer", true);
  if (version != kFormatVersion)
    throw fail(fmt::format("version {} is not {}", json_brief(version), kFormatVersion));
  Int8Calibration table;
  table.model = field("model", &nlohmann::json::is_string, "a string", true)->get<std::string>();
  table.weights_sha256 =
      field("weights_sha256", &nlohmann::json::is_string, "a string", true)->get<std::string>();
  if (auto* v = field("measured_on", &nlohmann::json::is_string, "a string", false)) table.measured_on = *v;
  if (auto* v = field("pictures", &nlohmann::json::is_number_integer, "an integer", false)) {
    if (*v < 0 || *v > 1000000) throw fail("\"pictures\" is out of range");
    table.pictures = v->get<int>();
  }
  if (auto* v = field("fidelity_db", &nlohmann::json::is_number, "a number", false)) table.fidelity_db = *v;
  if (auto* v = field("equalization", &nlohmann::json::is_number, "a number", false)) table.equalization = *v;
  if (auto* v = field("loss_db", &nlohmann::json::is_number, "a number", false)) table.loss_db = *v;
  if (auto* v = field("float_layers", &nlohmann::json::is_array, "an array", false))
    for (const auto& name : *v) {
      if (!name.is_string()) throw fail("\"float_layers\" must list activation names");
      table.float_layers.push_back(name.get<std::string>());
    }
  for (const auto& [blob, t] : field("thresholds", &nlohmann::json::is_object, "an object", true)->items())
    table.thresholds[blob] = positive(t, blob);
  if (auto* channels = field("channel_thresholds", &nlohmann::json::is_object, "an object", false))
    for (const auto& [blob, list] : channels->items()) {
      if (!list.is_array()) throw fail(fmt::format("the channel thresholds of '{}' must be an array", blob));
      std::vector<float>& out = table.channel_thresholds[blob];
      for (const auto& t : list) out.push_back(positive(t, blob));
    }
  return table;
}

void write_calibration(const Int8Calibration& table, const std::string& path) {
  const std::string text = calibration_to_json(table);
  write_file_atomically(path, std::vector<uint8_t>(text.begin(), text.end()));
}

Int8Calibration read_calibration(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path, 64 << 20);
  return calibration_from_json(std::string(bytes.begin(), bytes.end()), path);
}

std::string calibration_path_for(const std::string& param_path) {
  std::string stem = param_path;
  for (const std::string suffix : {".param", ".onnx"})
    if (stem.size() > suffix.size() && stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
      stem.resize(stem.size() - suffix.size());
  return stem + ".int8.json";
}

std::shared_ptr<const Int8Calibration> shipped_int8_calibration(const std::string& model_name) {
  // Parsed once, on first use.
  static std::once_flag parsed;
  static std::map<std::string, std::shared_ptr<const Int8Calibration>> tables;
  std::call_once(parsed, [] {
    for (const EmbeddedInt8Table* t = embedded_int8_tables; t->model; ++t)
      tables[t->model] = std::make_shared<const Int8Calibration>(
          calibration_from_json(t->json, fmt::format("models/int8/{}.json", t->model)));
  });
  auto it = tables.find(model_name);
  return it == tables.end() ? nullptr : it->second;
}

}  // namespace upres
