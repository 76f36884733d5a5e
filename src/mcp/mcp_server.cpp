// `upres mcp`: the Model Context Protocol over stdio, for AI agents.
//
// Messages are JSON-RPC 2.0, one per line, in both directions. Tool calls run on their own
// threads so the reader keeps listening: a notifications/cancelled for a running call stops its
// job, and progress notifications flow while it runs. Everything an agent can do goes through
// the same JobManager as the HTTP server, with the same root confinement and limits.
#include <fmt/format.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <istream>
#include <map>
#include <mutex>
#include <ostream>
#include <thread>

#include "service/status_json.hpp"
#include "upres/error.hpp"
#include "upres/server.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace upres {
namespace {

constexpr const char* kProtocolVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05", nullptr};

// JSON-RPC error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;

json text_content(const std::string& text) {
  return json::array({{{"type", "text"}, {"text", text}}});
}

json tool_definitions() {
  json video = {
      {"name", "video_upscale"},
      {"title", "Upscale a video"},
      {"description",
       "Upscales a video file with a super-resolution model, keeping audio, subtitles, metadata, rotation, "
       "bit "
       "depth and timing. Paths are relative to the server's root folder. Reports progress; can be "
       "cancelled."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"input", {{"type", "string"}, {"description", "video file, relative to the root"}}},
          {"output",
           {{"type", "string"},
            {"description",
             "where to write (default: beside the input, named <name>-upres-x<scale>.<ext>)"}}},
          {"model", {{"type", "string"}, {"description", "model name from list_models (default: by scale)"}}},
          {"scale", {{"type", "integer"}, {"minimum", 1}, {"maximum", 16}, {"description", "output scale"}}},
          {"overwrite", {{"type", "boolean"}, {"description", "replace an existing output"}}},
          {"options",
           {{"type", "object"},
            {"description",
             "more `upres video` options by long name: crf, c:v, preset, pix_fmt, crop, rotate, ss, t, fps, "
             "c:a, b:a, no_audio, ..."}}}}},
        {"required", json::array({"input"})}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties",
         {{"output", {{"type", "string"}}},
          {"width", {{"type", "integer"}}},
          {"height", {{"type", "integer"}}},
          {"frames", {{"type", "integer"}}},
          {"seconds", {{"type", "number"}}},
          {"fps", {{"type", "number"}}},
          {"bytes", {{"type", "integer"}}},
          {"model", {{"type", "string"}}}}},
        {"required", json::array({"output", "width", "height", "frames", "seconds"})}}}};
  json image = {
      {"name", "image_upscale"},
      {"title", "Upscale an image"},
      {"description",
       "Upscales a PNG, JPEG or WebP image with a super-resolution model. Paths are relative to the server's "
       "root."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"input", {{"type", "string"}, {"description", "image file, relative to the root"}}},
          {"output",
           {{"type", "string"},
            {"description",
             "where to write; the extension picks the format (default: <name>-upres-x<scale>.png)"}}},
          {"model", {{"type", "string"}, {"description", "model name from list_models (default: by scale)"}}},
          {"scale", {{"type", "integer"}, {"minimum", 1}, {"maximum", 16}}},
          {"overwrite", {{"type", "boolean"}}}}},
        {"required", json::array({"input"})}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties",
         {{"output", {{"type", "string"}}},
          {"width", {{"type", "integer"}}},
          {"height", {{"type", "integer"}}},
          {"seconds", {{"type", "number"}}},
          {"model", {{"type", "string"}}}}},
        {"required", json::array({"output", "width", "height"})}}}};
  json models = {
      {"name", "list_models"},
      {"title", "List models"},
      {"description", "The super-resolution models upres knows, their scale, license and whether installed."},
      {"inputSchema", {{"type", "object"}, {"properties", json::object()}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties", {{"models", {{"type", "array"}, {"items", {{"type", "object"}}}}}}},
        {"required", json::array({"models"})}}}};
  return json::array({video, image, models});
}

class McpServer {
 public:
  McpServer(std::ostream& out, std::ostream& log, const ServiceOptions& options)
      : out_(out), log_(log), jobs_(options) {}

  // stdin closed: calls still running finish and send their results (a script that pipes in a
  // few requests and closes stdin gets its answers); a stop request cancels them instead.
  ~McpServer() {
    {
      std::unique_lock lock(calls_mutex_);
      calls_changed_.wait(lock, [&] { return calls_.empty(); });
    }
    server_done_ = true;
    if (stop_watch_.joinable()) stop_watch_.join();
    for (auto& t : finished_threads_)
      if (t.joinable()) t.join();
    if (stop_) stop_->jobs_stopped = true;  // nothing runs any more: a late signal need not wait
  }

  // Watches for a stop request (a signal in the CLI) for as long as the server lives, also while
  // it finishes calls after stdin closed, and then cancels every running call.
  void watch(McpStop* stop) {
    if (!stop) return;
    stop_ = stop;
    stop_watch_ = std::thread([this, stop] {
      while (!server_done_) {
        if (stop->requested.cancelled()) {
          stop_all_calls();
          stop->jobs_stopped = true;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }

  // Cancels every call and waits until all have ended. Video jobs stop between frames and remove
  // their partial output; image calls are short and write atomically, so they are let finish.
  void stop_all_calls() {
    {
      std::lock_guard lock(calls_mutex_);
      for (auto& [id, call] : calls_) call.cancelled = true;
    }
    jobs_.cancel_all_and_wait();  // also refuses jobs that have not started yet
    std::unique_lock lock(calls_mutex_);
    calls_changed_.wait(lock, [&] { return calls_.empty(); });
  }

  void handle_line(const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    json message = json::parse(line, nullptr, false);
    if (message.is_discarded()) return send_error(nullptr, kParseError, "the line is not valid JSON");
    if (message.is_array()) {
      for (const json& m : message) handle_message(m);
      return;
    }
    handle_message(message);
  }

 private:
  struct Call {
    std::thread thread;
    std::string job_id;  // a video job running for this call
    bool cancelled = false;
  };

  void send(const json& message) {
    std::lock_guard lock(out_mutex_);
    out_ << message.dump() << '\n';
    out_.flush();
  }
  void send_result(const json& id, const json& result) {
    send({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
  }
  void send_error(const json& id, int code, const std::string& message) {
    send({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
  }

  void handle_message(const json& m) {
    if (!m.is_object() || m.value("jsonrpc", "") != "2.0" || !m.contains("method") ||
        !m["method"].is_string())
      return send_error(m.is_object() && m.contains("id") ? m["id"] : json(nullptr), kInvalidRequest,
                        "not a JSON-RPC 2.0 request");
    const std::string method = m["method"];
    const json params = m.value("params", json::object());
    if (!m.contains("id")) return handle_notification(method, params);
    const json& id = m["id"];
    if (method == "initialize") return initialize(id, params);
    if (method == "ping") return send_result(id, json::object());
    if (method == "tools/list") return send_result(id, {{"tools", tool_definitions()}});
    if (method == "tools/call") return call_tool(id, params);
    send_error(id, kMethodNotFound, fmt::format("method '{}' is not supported", method));
  }

  void handle_notification(const std::string& method, const json& params) {
    if (method == "notifications/cancelled" && params.contains("requestId")) {
      std::lock_guard lock(calls_mutex_);
      auto it = calls_.find(params["requestId"].dump());
      if (it == calls_.end()) return;
      it->second.cancelled = true;
      if (!it->second.job_id.empty()) jobs_.cancel(it->second.job_id);
    }
    // notifications/initialized and others need no answer.
  }

  void initialize(const json& id, const json& params) {
    std::string requested = params.value("protocolVersion", "");
    std::string version = kProtocolVersions[0];
    for (const char* const* v = kProtocolVersions; *v; ++v)
      if (requested == *v) version = requested;
    send_result(
        id, {{"protocolVersion", version},
             {"capabilities", {{"tools", {{"listChanged", false}}}}},
             {"serverInfo",
              {{"name", "upres"}, {"title", "upres video and image upscaler"}, {"version", "0.1.0"}}},
             {"instructions",
              fmt::format("Upscales videos and images with neural super-resolution models. File paths are "
                          "relative to {}. Call list_models to see what is installed.",
                          jobs_.root().string())}});
  }

  void call_tool(const json& id, const json& params) {
    std::string name = params.value("name", "");
    json arguments = params.value("arguments", json::object());
    if (name != "video_upscale" && name != "image_upscale" && name != "list_models")
      return send_error(id, kInvalidParams, fmt::format("unknown tool '{}'", name));
    if (!arguments.is_object()) return send_error(id, kInvalidParams, "arguments must be an object");
    json progress_token =
        params.contains("_meta") ? params["_meta"].value("progressToken", json(nullptr)) : nullptr;
    std::string key = id.dump();
    std::lock_guard lock(calls_mutex_);
    reap_finished_locked();
    if (calls_.count(key)) return send_error(id, kInvalidRequest, "a call with this id is already running");
    Call& call = calls_[key];
    call.thread = std::thread([this, id, key, name, arguments, progress_token] {
      json result;
      try {
        if (name == "video_upscale")
          result = video_upscale(key, arguments, progress_token);
        else if (name == "image_upscale")
          result = image_upscale(key, arguments);
        else
          result = list_models();
      } catch (const Error& e) {
        result = {{"content", text_content(fmt::format("{}: {}", error_code_key(e.code()), e.what()))},
                  {"isError", true}};
      } catch (const std::exception& e) {
        result = {{"content", text_content(std::string("internal: ") + e.what())}, {"isError", true}};
      }
      bool cancelled = false;
      {
        std::lock_guard lock(calls_mutex_);
        auto it = calls_.find(key);
        if (it != calls_.end()) {
          cancelled = it->second.cancelled;
          finished_threads_.push_back(std::move(it->second.thread));
          calls_.erase(it);
          calls_changed_.notify_all();
        }
      }
      // A cancelled request gets no response (the client has stopped waiting for it).
      if (!cancelled) send_result(id, result);
    });
  }

  void reap_finished_locked() {
    for (auto& t : finished_threads_)
      if (t.joinable()) t.join();
    finished_threads_.clear();
  }

  bool call_cancelled(const std::string& key) {
    std::lock_guard lock(calls_mutex_);
    auto it = calls_.find(key);
    return it == calls_.end() || it->second.cancelled;
  }

  // Agents do not retry on "busy" well: a call waits its turn for a slot instead.
  JobSlot wait_for_slot(const std::string& key) {
    for (;;) {
      try {
        return jobs_.acquire_slot();
      } catch (const Error& e) {
        if (e.code() != ErrorCode::busy) throw;
      }
      if (call_cancelled(key)) throw Error(ErrorCode::cancelled, "cancelled");
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  std::string default_output(const std::string& input, int scale, const std::string& ext) {
    fs::path in(input);
    return (in.parent_path() / fmt::format("{}-upres-x{}{}", in.stem().string(), scale, ext)).string();
  }

  json video_upscale(const std::string& key, const json& args, const json& progress_token) {
    json options = args.value("options", json::object());
    if (!options.is_object()) throw Error(ErrorCode::invalid_argument, "\"options\" must be an object");
    if (!args.contains("input") || !args["input"].is_string())
      throw Error(ErrorCode::invalid_argument, "\"input\" (a video path under the root) is required");
    for (const char* k : {"input", "output", "model", "scale", "overwrite"})
      if (args.contains(k)) options[k] = args[k];
    if (!options.contains("output")) {
      int scale = options.value("scale", 2);
      std::string ext = fs::path(options["input"].get<std::string>()).extension().string();
      if (ext != ".mp4" && ext != ".mkv" && ext != ".webm" && ext != ".mov") ext = ".mp4";
      options["output"] = default_output(options["input"], scale, ext);
    }
    JobSlot slot = wait_for_slot(key);
    JobStatus st = jobs_.start_video(options.dump(), {}, {}, std::move(slot));
    {
      std::lock_guard lock(calls_mutex_);
      auto it = calls_.find(key);
      if (it != calls_.end()) {
        it->second.job_id = st.id;
        if (it->second.cancelled) jobs_.cancel(st.id);
      }
    }
    double last_percent = -1;
    auto last_sent = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    while (!st.finished()) {
      auto next = jobs_.wait_for_update(st.id, st.version,
                                        std::chrono::steady_clock::now() + std::chrono::seconds(5));
      if (!next) throw Error(ErrorCode::cancelled, "the job was removed");
      st = *next;
      double percent = std::floor(st.progress.fraction * 1000) / 10;
      auto now = std::chrono::steady_clock::now();
      if (!progress_token.is_null() && !st.finished() && percent > last_percent &&
          now - last_sent >= std::chrono::milliseconds(500)) {
        std::string message =
            st.progress.frames_total
                ? fmt::format("{}: frame {}/{}, {:.1f} fps", video_phase_name(st.progress.phase),
                              st.progress.frames_done, st.progress.frames_total, st.progress.fps)
                : fmt::format("{}: frame {}", video_phase_name(st.progress.phase), st.progress.frames_done);
        send({{"jsonrpc", "2.0"},
              {"method", "notifications/progress"},
              {"params",
               {{"progressToken", progress_token},
                {"progress", percent},
                {"total", 100},
                {"message", message}}}});
        last_percent = percent;
        last_sent = now;
      }
    }
    jobs_.forget(st.id);  // the output is the client's file now; the record is not needed
    if (st.state != JobState::succeeded)
      return {{"content", text_content(fmt::format("{}: {}", st.error_code, st.error_message))},
              {"isError", true}};
    json structured = {{"output", st.output_name},         {"width", st.stats.output_width},
                       {"height", st.stats.output_height}, {"frames", st.stats.frames},
                       {"seconds", st.stats.seconds},      {"fps", st.stats.fps},
                       {"bytes", st.stats.output_bytes},   {"model", st.plan.model}};
    std::string text =
        fmt::format("Wrote {} ({}x{}, {} frames, {:.1f} s, {:.2f} fps, model {}).", st.output_name,
                    st.stats.output_width, st.stats.output_height, st.stats.frames, st.stats.seconds,
                    st.stats.fps, st.plan.model.empty() ? "none" : st.plan.model);
    for (const auto& w : st.stats.warnings) text += "\nwarning: " + w;
    return {{"content", text_content(text)}, {"structuredContent", structured}, {"isError", false}};
  }

  json image_upscale(const std::string& key, const json& args) {
    for (auto it = args.begin(); it != args.end(); ++it)
      if (it.key() != "input" && it.key() != "output" && it.key() != "model" && it.key() != "scale" &&
          it.key() != "overwrite")
        throw Error(ErrorCode::invalid_argument, fmt::format("image_upscale has no argument '{}'", it.key()));
    if (!args.contains("input") || !args["input"].is_string())
      throw Error(ErrorCode::invalid_argument, "\"input\" (an image path under the root) is required");
    ImageRequest request;
    if (args.contains("model")) {
      if (!args["model"].is_string()) throw Error(ErrorCode::invalid_argument, "\"model\" must be a string");
      request.model = args["model"];
    }
    if (args.contains("scale")) {
      if (!args["scale"].is_number_integer())
        throw Error(ErrorCode::invalid_argument, "\"scale\" must be an integer");
      request.scale = args["scale"];
    }
    std::string input = args["input"];
    std::string output = args.contains("output") && args["output"].is_string()
                             ? args["output"].get<std::string>()
                             : default_output(input, request.scale ? request.scale : 2, ".png");
    fs::path in = jobs_.resolve_input(input);
    fs::path out = jobs_.resolve_output(output);
    image_format_from_path(out.string());  // an unknown extension fails before any work
    if (fs::exists(out) && !args.value("overwrite", false))
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("output '{}' exists; pass \"overwrite\": true to replace it", output));
    auto start = std::chrono::steady_clock::now();
    JobSlot slot = wait_for_slot(key);
    Image result = jobs_.upscale_image(read_image(in.string(), jobs_.options().max_input_pixels), request);
    write_image(result, out.string());
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string model_name = jobs_.model(request.model, request.scale ? request.scale : 2)->name();
    std::string shown = fs::relative(out, jobs_.root()).string();
    json structured = {{"output", shown},
                       {"width", result.width},
                       {"height", result.height},
                       {"seconds", seconds},
                       {"model", model_name}};
    return {{"content", text_content(fmt::format("Wrote {} ({}x{}, {:.2f} s, model {}).", shown, result.width,
                                                 result.height, seconds, model_name))},
            {"structuredContent", structured},
            {"isError", false}};
  }

  json list_models() {
    json models = models_json();
    std::string text;
    for (const json& m : models)
      text +=
          fmt::format("{} ({}x, {}{})\n", m["name"].get<std::string>(), m["scale"].get<int>(),
                      m["license"].get<std::string>(), m["installed"].get<bool>() ? "" : ", not installed");
    return {{"content", text_content(text)}, {"structuredContent", {{"models", models}}}, {"isError", false}};
  }

  std::ostream& out_;
  std::ostream& log_;
  std::mutex out_mutex_;
  JobManager jobs_;
  std::mutex calls_mutex_;
  std::condition_variable calls_changed_;  // a call ended
  std::map<std::string, Call> calls_;      // by the request id's JSON text
  std::vector<std::thread> finished_threads_;
  McpStop* stop_ = nullptr;
  std::thread stop_watch_;
  std::atomic<bool> server_done_{false};
};

}  // namespace

const char* const* mcp_protocol_versions() {
  return kProtocolVersions;
}

int run_mcp_server(std::istream& in, std::ostream& out, std::ostream& log, const ServiceOptions& options,
                   McpStop* stop) {
  McpServer server(out, log, options);
  server.watch(stop);
  log << "upres mcp: ready (root " << fs::canonical(options.root).string() << ")" << std::endl;
  std::string line;
  while (std::getline(in, line)) server.handle_line(line);
  return 0;
}

}  // namespace upres
