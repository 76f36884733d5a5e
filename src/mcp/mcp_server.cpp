// `upres mcp`: the Model Context Protocol over stdio, for AI agents.
//
// Messages are JSON-RPC 2.0, one per line, in both directions. Tool calls run on their own
// threads so the reader keeps listening: a notifications/cancelled for a running call stops its
// job, and progress notifications flow while it runs. Everything an agent can do goes through
// the same JobManager as the HTTP server, with the same root confinement and limits.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <istream>
#include <map>
#include <mutex>
#include <ostream>
#include <thread>

#include "core/check_range.hpp"
#include "core/json_input.hpp"
#include "service/status_json.hpp"
#include "upres/error.hpp"
#include "upres/policy.hpp"
#include "upres/server.hpp"
#include "upres/version.hpp"

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
constexpr int kInternalError = -32603;

// The longest message line read; a longer one is answered with an error and skipped.
constexpr size_t kMaxMessageBytes = size_t(16) << 20;

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

// Arguments of a tool call, read with their types checked: a wrong type is a message for the
// agent ("argument 'scale' must be an integer (got "two")"), never a JSON library exception.
class Arguments {
 public:
  Arguments(const json& args, const char* tool, std::initializer_list<const char*> known) : args_(args) {
    for (auto it = args.begin(); it != args.end(); ++it)
      if (std::find_if(known.begin(), known.end(), [&](const char* k) { return it.key() == k; }) ==
          known.end()) {
        std::string names;
        for (const char* k : known) names += (names.empty() ? "" : ", ") + std::string(k);
        throw Error(ErrorCode::invalid_argument, fmt::format("{} has no argument '{}'; it takes {}", tool,
                                                             json_brief(it.key(), 40), names));
      }
  }
  bool has(const char* key) const { return args_.contains(key); }
  std::string text(const char* key, const std::string& fallback = "") const {
    return get(key, &json::is_string, "a string", json(fallback)).get<std::string>();
  }
  int64_t integer(const char* key, int64_t fallback, int64_t lowest, int64_t highest) const {
    if (!has(key)) return fallback;
    const int64_t v = get(key, &json::is_number_integer, "an integer", json(fallback)).get<int64_t>();
    check_range(fmt::format("argument '{}'", key), v, lowest, highest);
    return v;
  }
  bool boolean(const char* key) const {
    return get(key, &json::is_boolean, "true or false", json(false)).get<bool>();
  }
  json object(const char* key) const { return get(key, &json::is_object, "an object", json::object()); }

 private:
  json get(const char* key, bool (json::*is)() const noexcept, const char* what, json fallback) const {
    if (!args_.contains(key)) return fallback;
    const json& v = args_[key];
    if (!(v.*is)())
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("argument '{}' must be {} (got {})", key, what, json_brief(v)));
    return v;
  }
  const json& args_;
};

class McpServer {
 public:
  McpServer(std::ostream& out, const ServiceOptions& options) : out_(out), jobs_(options) {}

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
      for (auto& [id, call] : calls_) call.cancel.cancel();
    }
    jobs_.cancel_all_and_wait();  // also refuses jobs that have not started yet
    std::unique_lock lock(calls_mutex_);
    calls_changed_.wait(lock, [&] { return calls_.empty(); });
  }

  void handle_line(const std::string& line) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) return;
    if (json_nesting_depth(line) > kMaxJsonDepth)
      return send(
          error_message(nullptr, kInvalidRequest,
                        fmt::format("the message nests arrays or objects deeper than {} levels, the limit",
                                    kMaxJsonDepth)));
    json message = json::parse(line, nullptr, false);
    if (message.is_discarded())
      return send(error_message(nullptr, kParseError, "the line is not valid JSON"));
    if (!message.is_array()) return handle_message(message, nullptr);
    // A batch: one array of responses once every request in it is answered (JSON-RPC 2.0).
    if (message.empty())
      return send(error_message(nullptr, kInvalidRequest, "an empty batch is not a request"));
    auto batch = std::make_shared<Batch>();
    for (const json& m : message) handle_message(m, batch);
    settle(batch);
  }

  void refuse_line(size_t max_bytes) {
    send(error_message(nullptr, kInvalidRequest,
                       fmt::format("the message is longer than {} bytes, the limit", max_bytes)));
  }

 private:
  struct Call {
    std::thread thread;
    std::string job_id;  // a video job running for this call
    CancelToken cancel;
  };
  // The responses to a batch's requests, sent together when the last one is in.
  struct Batch {
    std::mutex mutex;
    int pending = 1;  // the requests not yet answered, plus one while the batch is being read
    json responses = json::array();
  };

  void send(const json& message) {
    std::lock_guard lock(out_mutex_);
    out_ << json_text(message) << '\n';
    out_.flush();
  }
  static json error_message(const json& id, int code, const std::string& message) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
  }

  // A request will be answered later (answer) or not at all (settle).
  void expect(const std::shared_ptr<Batch>& batch) {
    if (!batch) return;
    std::lock_guard lock(batch->mutex);
    ++batch->pending;
  }
  void answer(const std::shared_ptr<Batch>& batch, const json& response) {
    if (!batch) return send(response);
    {
      std::lock_guard lock(batch->mutex);
      batch->responses.push_back(response);
    }
    settle(batch);
  }
  void settle(const std::shared_ptr<Batch>& batch) {
    if (!batch) return;
    json ready;
    {
      std::lock_guard lock(batch->mutex);
      if (--batch->pending > 0 || batch->responses.empty()) return;
      ready = std::move(batch->responses);
    }
    send(ready);
  }
  void reply(const std::shared_ptr<Batch>& batch, const json& response) {
    expect(batch);
    answer(batch, response);
  }
  void reply_result(const std::shared_ptr<Batch>& batch, const json& id, const json& result) {
    reply(batch, {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
  }
  void reply_error(const std::shared_ptr<Batch>& batch, const json& id, int code,
                   const std::string& message) {
    reply(batch, error_message(id, code, message));
  }

  void handle_message(const json& m, const std::shared_ptr<Batch>& batch) {
    if (!m.is_object())
      return reply_error(batch, nullptr, kInvalidRequest, "a JSON-RPC message must be an object");
    json id = nullptr;
    const bool has_id = m.contains("id");
    if (has_id) {
      if (!m["id"].is_string() && !m["id"].is_number_integer())
        return reply_error(batch, nullptr, kInvalidRequest, "\"id\" must be a string or an integer");
      id = m["id"];
    }
    try {
      if (!m.contains("jsonrpc") || m["jsonrpc"] != "2.0")
        return reply_error(batch, id, kInvalidRequest,
                           "not a JSON-RPC 2.0 request: \"jsonrpc\" must be \"2.0\"");
      if (!m.contains("method") || !m["method"].is_string()) {
        if (!has_id || m.contains("result") || m.contains("error")) return;  // a response from the client
        return reply_error(batch, id, kInvalidRequest, "\"method\" must be a string");
      }
      const std::string method = m["method"];
      json params = json::object();
      if (m.contains("params")) {
        params = m["params"];
        if (!params.is_object() && !params.is_array())
          return reply_error(batch, id, kInvalidRequest, "\"params\" must be an object or an array");
      }
      if (!has_id) return handle_notification(method, params);
      if (method == "initialize") return initialize(batch, id, params);
      if (method == "ping") return reply_result(batch, id, json::object());
      if (method == "tools/list") return reply_result(batch, id, {{"tools", tool_definitions()}});
      if (method == "tools/call") return call_tool(batch, id, params);
      reply_error(batch, id, kMethodNotFound,
                  fmt::format("method '{}' is not supported", json_brief(json(method), 60)));
    } catch (const std::exception& e) {
      // A bug, not the client's fault; the session goes on.
      reply_error(batch, id, kInternalError, std::string("internal error: ") + e.what());
    }
  }

  void handle_notification(const std::string& method, const json& params) {
    if (method != "notifications/cancelled" || !params.is_object() || !params.contains("requestId")) return;
    const json& request = params["requestId"];
    if (!request.is_string() && !request.is_number_integer()) return;
    std::lock_guard lock(calls_mutex_);
    auto it = calls_.find(json_text(request));
    if (it == calls_.end()) return;
    it->second.cancel.cancel();
    if (!it->second.job_id.empty()) jobs_.cancel(it->second.job_id);
    // notifications/initialized and others need no answer.
  }

  void initialize(const std::shared_ptr<Batch>& batch, const json& id, const json& params) {
    if (!params.is_object())
      return reply_error(batch, id, kInvalidParams, "initialize takes an object of params");
    if (params.contains("protocolVersion") && !params["protocolVersion"].is_string())
      return reply_error(batch, id, kInvalidParams, "\"protocolVersion\" must be a string");
    const std::string requested = params.value("protocolVersion", "");
    std::string version = kProtocolVersions[0];
    for (const char* const* v = kProtocolVersions; *v; ++v)
      if (requested == *v) version = requested;
    reply_result(
        batch, id,
        {{"protocolVersion", version},
         {"capabilities", {{"tools", {{"listChanged", false}}}}},
         {"serverInfo",
          {{"name", "upres"}, {"title", "upres video and image upscaler"}, {"version", upres_version()}}},
         {"instructions",
          fmt::format("Upscales videos and images with neural super-resolution models. File paths are "
                      "relative to {}. Call list_models to see what is installed.",
                      jobs_.root().string())}});
  }

  void call_tool(const std::shared_ptr<Batch>& batch, const json& id, const json& params) {
    if (!params.is_object())
      return reply_error(batch, id, kInvalidParams, "tools/call takes an object of params");
    if (!params.contains("name") || !params["name"].is_string())
      return reply_error(batch, id, kInvalidParams, "\"name\" must be the name of a tool (a string)");
    const std::string name = params["name"];
    if (name != "video_upscale" && name != "image_upscale" && name != "list_models")
      return reply_error(batch, id, kInvalidParams,
                         fmt::format("unknown tool '{}'", json_brief(json(name), 60)));
    const json arguments = params.contains("arguments") ? params["arguments"] : json::object();
    if (!arguments.is_object())
      return reply_error(batch, id, kInvalidParams, "\"arguments\" must be an object");
    json progress_token = nullptr;
    if (params.contains("_meta")) {
      const json& meta = params["_meta"];
      if (!meta.is_object()) return reply_error(batch, id, kInvalidParams, "\"_meta\" must be an object");
      if (meta.contains("progressToken")) {
        progress_token = meta["progressToken"];
        if (!progress_token.is_string() && !progress_token.is_number_integer())
          return reply_error(batch, id, kInvalidParams, "\"progressToken\" must be a string or an integer");
      }
    }
    const std::string key = json_text(id);
    std::lock_guard lock(calls_mutex_);
    reap_finished_locked();
    if (calls_.count(key))
      return reply_error(batch, id, kInvalidRequest, "a call with this id is already running");
    expect(batch);
    Call& call = calls_[key];
    try {
      call.thread = start_call(batch, id, key, name, arguments, progress_token);
    } catch (const std::system_error&) {
      calls_.erase(key);
      answer(batch, error_message(id, kInternalError, "cannot start the call now (out of threads); retry"));
    }
  }

  std::thread start_call(const std::shared_ptr<Batch>& batch, const json& id, const std::string& key,
                         const std::string& name, const json& arguments, const json& progress_token) {
    return std::thread([this, batch, id, key, name, arguments, progress_token] {
      json result;
      try {
        if (name == "video_upscale")
          result = video_upscale(key, arguments, progress_token);
        else if (name == "image_upscale")
          result = image_upscale(key, arguments);
        else
          result = list_models();
      } catch (const std::exception& e) {
        result = tool_error(error_code_for(e), jobs_.client_message(e.what()));
      }
      bool cancelled = false;
      {
        std::lock_guard lock(calls_mutex_);
        auto it = calls_.find(key);
        if (it != calls_.end()) {
          cancelled = it->second.cancel.cancelled();
          finished_threads_.push_back(std::move(it->second.thread));
          calls_.erase(it);
          calls_changed_.notify_all();
        }
      }
      // A cancelled request gets no response (the client has stopped waiting for it).
      if (cancelled)
        settle(batch);
      else
        answer(batch, {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
    });
  }

  // A failed call's result: "code: message", the code from the service's vocabulary.
  static json tool_error(const std::string& code, const std::string& message) {
    return {{"content", text_content(fmt::format("{}: {}", code, message))}, {"isError", true}};
  }

  void reap_finished_locked() {
    for (auto& t : finished_threads_)
      if (t.joinable()) t.join();
    finished_threads_.clear();
  }

  // The call's cancel token; it lives as long as the call's entry.
  const CancelToken* call_cancel(const std::string& key) {
    std::lock_guard lock(calls_mutex_);
    auto it = calls_.find(key);
    return it == calls_.end() ? nullptr : &it->second.cancel;
  }

  json video_upscale(const std::string& key, const json& args, const json& progress_token) {
    const Arguments a(args, "video_upscale", {"input", "output", "model", "scale", "overwrite", "options"});
    json options = a.object("options");
    if (!a.has("input"))
      throw Error(ErrorCode::invalid_argument, "\"input\" (a video path under the root) is required");
    options["input"] = a.text("input");
    if (a.has("output")) options["output"] = a.text("output");
    if (a.has("model")) options["model"] = a.text("model");
    if (a.has("scale")) options["scale"] = a.integer("scale", 2, 1, kMaxScale);
    if (a.has("overwrite")) options["overwrite"] = a.boolean("overwrite");
    if (!options.contains("output")) {
      // The name says the scale the output will have: the one asked for, else the model's own.
      int64_t scale = 2;
      if (options.contains("scale") && options["scale"].is_number_integer()) {
        scale = options["scale"].get<int64_t>();
      } else {
        try {
          if (const ModelInfo* info =
                  find_model_info(video_model_name(video_options_from_json(json_text(options)))))
            scale = info->scale;
        } catch (const Error&) {  // bad options: start_video below says what is wrong
        }
      }
      const std::string input = a.text("input");
      options["output"] = upscaled_path_beside(input, int(scale), video_output_extension(input));
    }
    // A video waits for its place as a queued job; cancelling the call takes it out of the queue.
    JobStatus st = jobs_.start_video(json_text(options));
    {
      std::lock_guard lock(calls_mutex_);
      auto it = calls_.find(key);
      if (it != calls_.end()) {
        it->second.job_id = st.id;
        if (it->second.cancel.cancelled()) jobs_.cancel(st.id);
      }
    }
    double last_percent = -1;
    ProgressThrottle throttle;  // the result itself is the final report
    while (!st.finished()) {
      auto next = jobs_.wait_for_update(st.id, st.version,
                                        std::chrono::steady_clock::now() + std::chrono::seconds(5));
      if (!next) throw Error(ErrorCode::cancelled, "the job was removed");
      st = *next;
      double percent = std::floor(st.progress.fraction * 1000) / 10;
      if (!progress_token.is_null() && !st.finished() && percent > last_percent && throttle.pass()) {
        std::string message =
            st.state == JobState::queued ? fmt::format("queued, position {}", st.queue_position)
            : st.progress.frames_total
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
      }
    }
    jobs_.forget(st.id);  // the output is the client's file now; the record is not needed
    if (st.state != JobState::succeeded) return tool_error(st.error_code, st.error_message);
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
    const Arguments a(args, "image_upscale", {"input", "output", "model", "scale", "overwrite"});
    if (!a.has("input"))
      throw Error(ErrorCode::invalid_argument, "\"input\" (an image path under the root) is required");
    ImageJobOptions options;
    options.request.model = a.text("model");
    options.request.scale = int(a.integer("scale", 0, 1, kMaxScale));
    // Paths, format and overwriting are checked before the call waits for a place.
    const ImageFileJob job = jobs_.prepare_image_file(
        a.text("input"), a.has("output") ? std::optional(a.text("output")) : std::nullopt,
        a.boolean("overwrite"), options);
    JobSlot slot = jobs_.reserve().wait(std::chrono::steady_clock::time_point::max(), call_cancel(key));
    const ImageJobResult r = jobs_.run_image_file(job, slot);
    json structured = {{"output", job.output_name},
                       {"width", r.width},
                       {"height", r.height},
                       {"seconds", r.seconds},
                       {"model", r.model}};
    return {{"content", text_content(fmt::format("Wrote {} ({}x{}, {:.2f} s, model {}).", job.output_name,
                                                 r.width, r.height, r.seconds, r.model))},
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

// Reads one line of at most `max_bytes`; false at the end of the input. A longer line is read
// to its end and thrown away, with `too_long` set.
bool read_message_line(std::istream& in, std::string& line, size_t max_bytes, bool& too_long) {
  line.clear();
  too_long = false;
  std::streambuf* buffer = in.rdbuf();
  for (;;) {
    const int c = buffer->sbumpc();
    if (c == std::char_traits<char>::eof()) return !line.empty() || too_long;
    if (c == '\n') return true;
    if (line.size() < max_bytes)
      line.push_back(char(c));
    else
      too_long = true;
  }
}

}  // namespace

const char* const* mcp_protocol_versions() {
  return kProtocolVersions;
}

int run_mcp_server(std::istream& in, std::ostream& out, std::ostream& log, const ServiceOptions& options,
                   McpStop* stop) {
  // One agent drives this server, and it waits for each call: calls wait their turn for a place
  // rather than failing when --max-jobs are busy.
  ServiceOptions service = options;
  service.queue = -1;
  McpServer server(out, service);
  server.watch(stop);
  log << "upres mcp: ready (root " << fs::canonical(options.root).string() << ")" << std::endl;
  std::string line;
  bool too_long = false;
  while (read_message_line(in, line, kMaxMessageBytes, too_long)) {
    if (too_long)
      server.refuse_line(kMaxMessageBytes);
    else
      server.handle_line(line);
  }
  return 0;
}

}  // namespace upres
