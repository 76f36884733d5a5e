// int8 calibration tables: JSON in and out, the sidecar file name, the tables shipped for the zoo.
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "model/int8_tables.hpp"
#include "upres/error.hpp"
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
  return j.dump(1) + "\n";
}

Int8Calibration calibration_from_json(const std::string& text, const std::string& source) {
  auto fail = [&](const std::string& problem) {
    return Error(ErrorCode::invalid_argument,
                 fmt::format("{}: not an int8 calibration table: {}", source, problem));
  };
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw fail("not valid JSON");
  if (j.value("format", "") != "upres-int8-calibration")
    throw fail("\"format\" is not \"upres-int8-calibration\"");
  if (j.value("version", 0) != kFormatVersion)
    throw fail(fmt::format("version {} is not {}", j.value("version", 0), kFormatVersion));
  Int8Calibration table;
  try {
    table.model = j.at("model").get<std::string>();
    table.weights_sha256 = j.at("weights_sha256").get<std::string>();
    table.measured_on = j.value("measured_on", "");
    table.pictures = j.value("pictures", 0);
    table.fidelity_db = j.value("fidelity_db", 0.0);
    for (const auto& [blob, t] : j.at("thresholds").items()) {
      const float v = t.get<float>();
      if (!(v > 0) || !std::isfinite(v))
        throw fail(fmt::format("threshold of '{}' is not a positive number", blob));
      table.thresholds[blob] = v;
    }
    table.equalization = j.value("equalization", 0.0);
    if (j.contains("channel_thresholds"))
      for (const auto& [blob, t] : j.at("channel_thresholds").items())
        table.channel_thresholds[blob] = t.get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    throw fail(e.what());
  }
  return table;
}

void write_calibration(const Int8Calibration& table, const std::string& path) {
  const std::string text = calibration_to_json(table);
  write_file_atomically(path, std::vector<uint8_t>(text.begin(), text.end()));
}

Int8Calibration read_calibration(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::not_found, fmt::format("cannot open calibration table {}", path));
  std::ostringstream text;
  text << in.rdbuf();
  return calibration_from_json(text.str(), path);
}

std::string calibration_path_for(const std::string& param_path) {
  const std::string suffix = ".param";
  std::string stem = param_path;
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
