// The HTTP server: listener, one thread per connection, routing and the REST handlers.
//
// Blocking I/O on a thread per connection keeps each handler a straight line of code (read the
// header, decide, read the body, answer), which matters more here than serving thousands of
// idle sockets: a local upscaler has a handful of clients, and compute is bounded separately by
// the JobManager's places and queue. Connections are capped and every blocking step has a
// deadline (server/connections.hpp), so idle or slow clients cannot hold the server. Requests are
// decided on their header before any body is read, so a 401, 403, 413 or 429 costs the client no
// upload.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/websocket.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <thread>

#include "core/check_range.hpp"
#include "core/json_input.hpp"
#include "server/connections.hpp"
#include "server/http_util.hpp"
#include "server/multipart.hpp"
#include "server/server_internal.hpp"
#include "service/status_json.hpp"
#include "upres/image.hpp"
#include "upres/policy.hpp"
#include "upres/version.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace upres::server {

http::status status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return http::status::bad_request;
    case ErrorCode::not_found: return http::status::not_found;
    case ErrorCode::invalid_model:
    case ErrorCode::invalid_media:
    case ErrorCode::unsupported:
    case ErrorCode::limit_exceeded: return http::status::unprocessable_entity;
    case ErrorCode::busy: return http::status::too_many_requests;
    case ErrorCode::cancelled: return http::status::conflict;
    case ErrorCode::io_failure:
    case ErrorCode::backend_failure: return http::status::internal_server_error;
  }
  return http::status::internal_server_error;
}

StringResponse json_response(http::status status, const json& body, bool keep_alive) {
  StringResponse res{status, 11};
  res.set(http::field::server, "upres");
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = json_text(body) + "\n";  // client text that is not UTF-8 cannot make this throw
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

StringResponse error_response(http::status status, const std::string& code, const std::string& message,
                              bool keep_alive) {
  StringResponse res = json_response(status, error_json(code, message), keep_alive);
  if (status == http::status::too_many_requests || status == http::status::service_unavailable)
    res.set(http::field::retry_after, "2");
  if (status == http::status::unauthorized) res.set(http::field::www_authenticate, "Bearer realm=\"upres\"");
  return res;
}

StringResponse error_response(const Error& error, bool keep_alive) {
  return error_response(status_for(error.code()), error_code_name(error.code()), error.what(), keep_alive);
}

namespace {

// A body over its cap: 413, where other limits are 422.
struct BodyTooLarge : Error {
  explicit BodyTooLarge(const std::string& message) : Error(ErrorCode::limit_exceeded, message) {}
};

// A request body read to a file, mapped for the multipart parser: the upload is never held in
// memory.
class MappedFile {
 public:
  explicit MappedFile(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (fd_ < 0 || ::fstat(fd_, &st) != 0)
      throw Error(ErrorCode::io_failure, "cannot reopen the uploaded body");
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      data_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (data_ == MAP_FAILED) throw Error(ErrorCode::io_failure, "cannot map the uploaded body");
    }
  }
  ~MappedFile() {
    if (data_ && data_ != MAP_FAILED) ::munmap(data_, size_);
    if (fd_ >= 0) ::close(fd_);
  }
  std::string_view view() const { return {static_cast<const char*>(data_), data_ ? size_ : 0}; }

 private:
  int fd_ = -1;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// A file a request stores in the work folder; removed when the request fails before a job takes
// it (start_video owns it from then on, and removes it itself if the job does not start).
class UploadFile {
 public:
  explicit UploadFile(fs::path path) : path_(std::move(path)) {}
  ~UploadFile() {
    std::error_code ec;
    if (!path_.empty()) fs::remove(path_, ec);
  }
  UploadFile(const UploadFile&) = delete;
  UploadFile& operator=(const UploadFile&) = delete;
  const fs::path& path() const { return path_; }
  fs::path release() { return std::exchange(path_, {}); }

 private:
  fs::path path_;
};

void write_bytes(const fs::path& path, std::string_view data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(ErrorCode::io_failure, "cannot store the upload in the work folder");
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = std::fclose(f) == 0 && ok;
  if (!ok) throw Error(ErrorCode::io_failure, "storing the upload failed (is the disk full?)");
}

// A body that starts as a PNG, JPEG or WebP file does; anything else is refused before the
// request's parameters are looked at.
bool looks_like_image(std::string_view bytes) {
  return bytes.substr(0, 8) == "\x89PNG\r\n\x1a\n" || bytes.substr(0, 3) == "\xff\xd8\xff" ||
         (bytes.size() >= 12 && bytes.substr(0, 4) == "RIFF" && bytes.substr(8, 4) == "WEBP");
}

int int_parameter(const std::map<std::string, std::string>& fields, const std::string& key, int fallback) {
  auto it = fields.find(key);
  if (it == fields.end() || it->second.empty()) return fallback;
  try {
    size_t used = 0;
    int v = std::stoi(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (...) {
  }
  throw Error(ErrorCode::invalid_argument,
              fmt::format("'{}' must be a whole number (got '{}')", key, json_brief(json(it->second), 40)));
}

// A Content-Disposition value for any file name: a plain ASCII fallback, and the exact name in
// RFC 5987 form for clients that read it.
std::string attachment_header(const std::string& name) {
  std::string ascii, encoded;
  for (unsigned char c : name) {
    ascii.push_back(c < 0x20 || c >= 0x7f || c == '"' || c == '\\' ? '_' : char(c));
    if (std::isalnum(c) || std::strchr("!#$&+-.^_`|~", c))
      encoded.push_back(char(c));
    else
      encoded += fmt::format("%{:02X}", c);
  }
  return fmt::format("attachment; filename=\"{}\"; filename*=UTF-8''{}", ascii, encoded);
}

// What a handler needs from the request header; the parser itself is moved into a body reader.
struct RequestHead {
  http::verb method;
  std::string method_text;
  Target target;
  std::string content_type;
  bool keep_alive = true;
  bool expects_continue = false;
  bool has_body = false;
};

// One request being served: its connection, the header, and the parser that has read it.
struct Exchange {
  tcp::socket& socket;
  beast::flat_buffer& buffer;
  http::request_parser<http::empty_body>& parser;
  Connections::Entry& connection;
  RequestHead head;
};

bool is_multipart(const std::string& content_type) {
  return !multipart_boundary(content_type).empty();
}

bool is_json(const std::string& content_type) {
  return content_type.rfind("application/json", 0) == 0;
}

// What `curl -d` sends unless told otherwise.
bool is_form_urlencoded(const std::string& content_type) {
  return content_type.rfind("application/x-www-form-urlencoded", 0) == 0;
}

// Options for a job from form or query fields: an "options" field holds a JSON object, every
// other field is one option.
std::string options_from_fields(const std::map<std::string, std::string>& fields) {
  json options = json::object();
  if (auto it = fields.find("options"); it != fields.end() && !it->second.empty()) {
    if (!is_valid_utf8(it->second))
      throw Error(ErrorCode::invalid_argument, "the \"options\" field is not valid UTF-8 text");
    options = parse_outside_json(it->second, "the \"options\" field");
    if (!options.is_object())
      throw Error(ErrorCode::invalid_argument, "the \"options\" field must hold a JSON object");
  }
  for (const auto& [key, value] : fields)
    if (key != "options" && key != "access_token" && key != "filename") options[key] = form_value(key, value);
  return json_text(options);
}

}  // namespace
}  // namespace upres::server

namespace upres {
using namespace upres::server;

struct Server::Impl {
  ServerOptions options;
  JobManager jobs;
  Connections connections;
  net::io_context io;
  tcp::acceptor acceptor{io};
  std::atomic<bool> stopping{false};

  explicit Impl(ServerOptions o)
      : options(std::move(o)),
        jobs(options.service),
        connections({options.max_connections, options.max_client_connections}) {}

  void log(const RequestHead& head, unsigned status) {
    if (!options.quiet)
      std::fprintf(stderr, "upres serve: %s %s -> %u\n", head.method_text.c_str(), head.target.path.c_str(),
                   status);
  }

  void serve_connection(std::shared_ptr<tcp::socket> socket, std::shared_ptr<Connections::Entry> entry);
  bool handle(Exchange& x);
  bool route(Exchange& x);

  // Writes a response a piece at a time, each piece with a deadline, so a client that stops
  // reading (a large download, say) lets go of its connection.
  template <class Response>
  bool send(Exchange& x, Response&& res) {
    log(x.head, res.result_int());
    http::serializer<false, typename std::decay_t<Response>::body_type> serializer(res);
    beast::error_code ec;
    while (!ec && !serializer.is_done()) {
      x.connection.serve(options.stall_timeout_seconds);
      http::write_some(x.socket, serializer, ec);
    }
    x.connection.serve();
    return !ec && res.keep_alive();
  }

  void send_continue(Exchange& x) {
    if (!x.head.expects_continue) return;
    http::response<http::empty_body> cont{http::status::continue_, 11};
    beast::error_code ec;
    x.connection.serve(options.stall_timeout_seconds);
    http::write(x.socket, cont, ec);
  }

  // A declared length over the cap is refused before a byte of the body is read.
  static void refuse_declared_oversize(http::request_parser<http::empty_body>& parser, int64_t limit,
                                       const char* what) {
    if (parser.content_length() && *parser.content_length() > uint64_t(limit))
      throw BodyTooLarge(fmt::format("the {} ({} bytes) is over the server's limit of {} bytes", what,
                                     *parser.content_length(), limit));
  }

  // Reads the rest of a body a piece at a time; the deadline starts again with each piece.
  template <class Body>
  void read_body(Exchange& x, http::request_parser<Body>& parser, int64_t limit, const char* what,
                 const char* limit_option) {
    beast::error_code ec;
    while (!ec && !parser.is_done()) {
      x.connection.serve(options.stall_timeout_seconds);
      http::read_some(x.socket, x.buffer, parser, ec);
    }
    x.connection.serve();
    x.head.has_body = !parser.is_done();
    if (ec == http::error::body_limit)
      throw BodyTooLarge(
          fmt::format("the {} is over the server's limit of {} bytes{}", what, limit, limit_option));
    if (ec)
      throw Error(ErrorCode::invalid_argument,
                  x.connection.timed_out()
                      ? fmt::format("the {} stopped arriving for {} s", what, options.stall_timeout_seconds)
                      : fmt::format("the {} ended early: {}", what, ec.message()));
  }

  std::string read_string_body(Exchange& x, int64_t limit, const char* what) {
    refuse_declared_oversize(x.parser, limit, what);
    send_continue(x);
    http::request_parser<http::string_body> body_parser(std::move(x.parser));
    body_parser.body_limit(uint64_t(limit));
    read_body(x, body_parser, limit, what, "");
    return std::move(body_parser.get().body());
  }

  // Streams the body to `file` (removed by its owner when anything fails).
  void read_file_body(Exchange& x, int64_t limit, const UploadFile& file) {
    refuse_declared_oversize(x.parser, limit, "upload");
    send_continue(x);
    http::request_parser<http::file_body> body_parser(std::move(x.parser));
    body_parser.body_limit(uint64_t(limit));
    beast::error_code ec;
    body_parser.get().body().open(file.path().c_str(), beast::file_mode::write, ec);
    if (ec) throw Error(ErrorCode::io_failure, fmt::format("cannot store the upload: {}", ec.message()));
    read_body(x, body_parser, limit, "upload", " (--max-upload)");
    body_parser.get().body().close();
  }

  StringResponse upscale_video(Exchange& x);
  http::response<http::vector_body<uint8_t>> upscale_image(Exchange& x);
};

StringResponse Server::Impl::upscale_video(Exchange& x) {
  RequestHead& head = x.head;
  // A place (or a place in the queue) first: when the queue is full too, the client hears 429
  // before it sends a large upload.
  JobTicket ticket = jobs.reserve();
  JobStatus st;
  if (is_json(head.content_type)) {
    std::string body = read_string_body(x, options.max_json_bytes, "JSON body");
    st = jobs.start_video(body, {}, {}, std::move(ticket));
  } else if (is_form_urlencoded(head.content_type)) {
    // A JSON object sent without its content type (curl -d '{...}'), or HTML form fields.
    std::string body = read_string_body(x, options.max_json_bytes, "form body");
    size_t first = body.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && body[first] == '{') {
      st = jobs.start_video(body, {}, {}, std::move(ticket));
    } else {
      std::map<std::string, std::string> fields = parse_target("?" + body).query;
      for (const auto& [key, value] : head.target.query) fields.emplace(key, value);
      st = jobs.start_video(options_from_fields(fields), {}, {}, std::move(ticket));
    }
  } else if (is_multipart(head.content_type)) {
    UploadFile body(jobs.upload_path("body"));
    read_file_body(x, options.max_upload_bytes, body);
    std::map<std::string, std::string> fields;
    std::unique_ptr<UploadFile> upload;
    std::string upload_name;
    {
      MappedFile mapped(body.path());
      for (const FormPart& part : parse_multipart(mapped.view(), multipart_boundary(head.content_type))) {
        if (!part.filename.empty() || part.name == "file") {
          if (upload) throw Error(ErrorCode::invalid_argument, "upload one file per job");
          if (!is_valid_utf8(part.filename))
            throw Error(ErrorCode::invalid_argument, "the uploaded file's name is not valid UTF-8");
          upload_name = part.filename.empty() ? "upload" : part.filename;
          upload = std::make_unique<UploadFile>(jobs.upload_path(upload_name));
          write_bytes(upload->path(), part.data);
        } else {
          fields[part.name] = std::string(part.data);
        }
      }
    }
    std::string options_json = options_from_fields(fields);
    st = upload ? jobs.start_video(options_json, upload->release(), upload_name, std::move(ticket))
                : jobs.start_video(options_json, {}, {}, std::move(ticket));
  } else if (head.has_body) {
    // The raw file as the body; options in the query string.
    std::string name = head.target.query.count("filename") ? head.target.query.at("filename") : "upload.mp4";
    std::string options_json = options_from_fields(head.target.query);  // bad options cost no upload
    UploadFile upload(jobs.upload_path(name));
    read_file_body(x, options.max_upload_bytes, upload);
    st = jobs.start_video(options_json, upload.release(), name, std::move(ticket));
  } else {
    st = jobs.start_video(options_from_fields(head.target.query), {}, {}, std::move(ticket));
  }
  StringResponse res = json_response(http::status::accepted, job_status_json(st), head.keep_alive);
  res.set(http::field::location, "/v1/jobs/" + st.id);
  return res;
}

http::response<http::vector_body<uint8_t>> Server::Impl::upscale_image(Exchange& x) {
  RequestHead& head = x.head;
  // Waits its turn for a place (at most --queue-wait) before taking the body.
  JobSlot slot = jobs.acquire_slot();
  std::string body = read_string_body(x, options.max_image_bytes, "image");
  std::map<std::string, std::string> fields = head.target.query;
  std::string_view image_bytes = body;
  std::string name = fields.count("filename") ? fields["filename"] : "image";
  if (is_multipart(head.content_type)) {
    image_bytes = {};
    for (const FormPart& part : parse_multipart(body, multipart_boundary(head.content_type))) {
      if (!part.filename.empty() || part.name == "file") {
        image_bytes = part.data;
        if (!part.filename.empty()) name = part.filename;
      } else {
        fields[part.name] = std::string(part.data);
      }
    }
  }
  for (const auto& [key, value] : fields)
    if (!is_valid_utf8(key) || !is_valid_utf8(value))
      throw Error(ErrorCode::invalid_argument, "a form field is not valid UTF-8 text");
  if (!is_valid_utf8(name))
    throw Error(ErrorCode::invalid_argument, "the image's file name is not valid UTF-8");
  if (image_bytes.empty())
    throw Error(ErrorCode::invalid_argument,
                "the request carries no image: send PNG, JPEG or WebP bytes as the body");
  if (!looks_like_image(image_bytes))
    throw Error(ErrorCode::invalid_media, "the body is not a PNG, JPEG or WebP image");
  static const std::set<std::string> known = {"model",   "scale",    "format",
                                              "quality", "filename", "access_token"};
  for (const auto& [key, value] : fields)
    if (!known.count(key))
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("unknown parameter '{}'; image requests take model, scale, format and quality",
                              json_brief(json(key), 40)));

  ImageJobOptions job;
  job.request.model = fields.count("model") ? fields["model"] : "";
  job.request.scale = int_parameter(fields, "scale", 0);
  if (fields.count("format") && !fields["format"].empty())
    job.format = image_format_from_name(fields["format"]);
  if (fields.count("quality") && !fields["quality"].empty()) {
    const int quality = int_parameter(fields, "quality", 0);
    if (quality < 1 || quality > 100)
      throw Error(ErrorCode::invalid_argument, fmt::format("quality {} is outside 1..100", quality));
    job.write.jpeg_quality = job.write.webp_quality = quality;
  }

  ImageJobResult result =
      jobs.run_image_job(std::vector<uint8_t>(image_bytes.begin(), image_bytes.end()), name, job, slot);

  http::response<http::vector_body<uint8_t>> res{http::status::ok, 11};
  res.set(http::field::server, "upres");
  res.set(http::field::content_type, image_content_type(result.format));
  res.set(http::field::cache_control, "no-store");
  res.set("X-Upres-Width", std::to_string(result.width));
  res.set("X-Upres-Height", std::to_string(result.height));
  res.set("X-Upres-Seconds", fmt::format("{:.3f}", result.seconds));
  res.body() = std::move(result.encoded);
  res.keep_alive(head.keep_alive);
  res.prepare_payload();
  return res;
}

bool Server::Impl::handle(Exchange& x) {
  const auto& req = x.parser.get();
  RequestHead& head = x.head;
  head.method = req.method();
  head.method_text = std::string(req.method_string());
  head.target = parse_target(std::string_view(req.target().data(), req.target().size()));
  head.content_type = std::string(req[http::field::content_type]);
  head.keep_alive = req.keep_alive() && !stopping;
  head.expects_continue = beast::iequals(req[http::field::expect], "100-continue");
  head.has_body = x.parser.chunked() || (x.parser.content_length() && *x.parser.content_length() > 0);

  // A response sent without reading the body must close the connection: the unread body would
  // be taken for the next request.
  auto fail = [&](http::status status, const std::string& code, const std::string& message) {
    StringResponse res = error_response(status, code, jobs.client_message(message), head.keep_alive);
    if (head.has_body) res.keep_alive(false);
    return send(x, std::move(res));
  };
  try {
    check_target_text(head.target);
    // DNS rebinding: a page on a name its owner points at 127.0.0.1 reaches this server as
    // "same-origin"; its Host header still carries that name.
    const auto host = req[http::field::host];
    if (!host.empty() && !host_is_allowed(std::string_view(host.data(), host.size()), options.allowed_hosts))
      return fail(http::status::forbidden, "forbidden",
                  fmt::format("Host '{}' is not this server's; use an IP address or localhost, or start the "
                              "server with --allow-host NAME",
                              json_brief(json(std::string(host)), 60)));
    // A page on another site may send a POST or open a WebSocket here without asking (no CORS
    // preflight covers those): refuse any that announce a foreign origin.
    const auto origin = req[http::field::origin];
    const bool changes_state = head.method != http::verb::get && head.method != http::verb::head &&
                               head.method != http::verb::options;
    if ((changes_state || beast::websocket::is_upgrade(req)) && !origin.empty() &&
        !origin_is_allowed(std::string_view(origin.data(), origin.size()),
                           std::string_view(host.data(), host.size()), options.allowed_origins))
      return fail(
          http::status::forbidden, "forbidden",
          fmt::format("requests from the web page at '{}' are not allowed here; start the server with "
                      "--allow-origin ORIGIN to allow it",
                      json_brief(json(std::string(origin)), 60)));
    return route(x);
  } catch (const BodyTooLarge& e) {
    head.has_body = true;  // the rest of it is still unread
    return fail(http::status::payload_too_large, "payload_too_large", e.what());
  } catch (const Error& e) {
    return fail(status_for(e.code()), error_code_name(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(http::status::insufficient_storage, error_code_name(ErrorCode::limit_exceeded),
                "the server ran out of memory for this request");
  } catch (const std::exception& e) {
    return fail(http::status::internal_server_error, kInternalErrorCode, e.what());
  }
}

bool Server::Impl::route(Exchange& x) {
  const auto& req = x.parser.get();
  RequestHead& head = x.head;
  const std::string& path = head.target.path;
  auto reply = [&](auto&& res) {
    if (head.has_body) res.keep_alive(false);
    return send(x, std::move(res));
  };
  auto fail = [&](http::status status, const std::string& code, const std::string& message) {
    return reply(error_response(status, code, message, head.keep_alive));
  };

  if (path == "/" || path == "/index.html") {
    if (head.method != http::verb::get)
      return fail(http::status::method_not_allowed, "method_not_allowed", "use GET");
    StringResponse res{http::status::ok, 11};
    res.set(http::field::server, "upres");
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.body() = web_page_html;
    res.keep_alive(head.keep_alive);
    res.prepare_payload();
    return reply(std::move(res));
  }
  if (path == "/healthz") {
    return reply(json_response(http::status::ok,
                               {{"status", "ok"},
                                {"version", upres_version()},
                                {"running", jobs.running()},
                                {"queued", jobs.queued()},
                                {"max_jobs", options.service.max_jobs},
                                {"queue", options.service.queue},
                                {"auth_required", !options.token.empty()}},
                               head.keep_alive));
  }

  if (!options.token.empty()) {
    auto authorization = req[http::field::authorization];
    std::string given = bearer_token(std::string_view(authorization.data(), authorization.size()));
    // Browsers cannot set headers on EventSource, WebSocket or download links: they pass the
    // token as a query parameter instead.
    if (given.empty() && head.target.query.count("access_token"))
      given = head.target.query.at("access_token");
    if (!equal_constant_time(given, options.token))
      return fail(http::status::unauthorized, "unauthorized",
                  given.empty() ? "this server needs a token: send \"Authorization: Bearer <token>\""
                                : "the token is wrong");
  }

  if (path == "/v1/stream") {
    if (!beast::websocket::is_upgrade(req))
      return fail(http::status::upgrade_required, "upgrade_required", "/v1/stream is a WebSocket endpoint");
    log(head, 101);
    serve_frame_stream(x.socket, x.connection, x.parser.release(), head.target.query, jobs, options);
    return false;
  }
  if (path == "/v1/models") {
    if (head.method != http::verb::get)
      return fail(http::status::method_not_allowed, "method_not_allowed", "use GET");
    return reply(json_response(http::status::ok, {{"models", models_json()}}, head.keep_alive));
  }
  if (path == "/v1/video/upscale") {
    if (head.method != http::verb::post)
      return fail(http::status::method_not_allowed, "method_not_allowed", "use POST");
    return reply(upscale_video(x));
  }
  if (path == "/v1/image/upscale") {
    if (head.method != http::verb::post)
      return fail(http::status::method_not_allowed, "method_not_allowed", "use POST");
    return reply(upscale_image(x));
  }
  if (path == "/v1/jobs") {
    if (head.method != http::verb::get)
      return fail(http::status::method_not_allowed, "method_not_allowed", "use GET");
    json list = json::array();
    for (const JobStatus& st : jobs.list()) list.push_back(job_status_json(st));
    return reply(json_response(http::status::ok, {{"jobs", list}}, head.keep_alive));
  }
  if (path.rfind("/v1/jobs/", 0) == 0) {
    std::string rest = path.substr(9);
    std::string id = rest.substr(0, rest.find('/'));
    std::string what = rest.size() > id.size() ? rest.substr(id.size()) : "";
    auto st = jobs.status(id);
    if (!st)
      return fail(http::status::not_found, "not_found", fmt::format("no job '{}'", json_brief(json(id), 80)));
    if (what.empty() && head.method == http::verb::get)
      return reply(json_response(http::status::ok, job_status_json(*st), head.keep_alive));
    if (what.empty() && head.method == http::verb::delete_) {
      if (st->finished()) {
        jobs.forget(id);
        json body = job_status_json(*st);
        body["deleted"] = true;
        return reply(json_response(http::status::ok, body, head.keep_alive));
      }
      jobs.cancel(id);
      // Most jobs stop within a frame; answer with the final state when it comes soon.
      auto now =
          jobs.wait_for_update(id, 0, std::chrono::steady_clock::now() + std::chrono::seconds(5), true);
      bool done = now && now->finished();
      return reply(json_response(done ? http::status::ok : http::status::accepted,
                                 job_status_json(now ? *now : *st), head.keep_alive));
    }
    if (what == "/events" && head.method == http::verb::get) {
      http::response<http::empty_body> res{http::status::ok, 11};
      res.set(http::field::server, "upres");
      res.set(http::field::content_type, "text/event-stream");
      res.set(http::field::cache_control, "no-store");
      res.set("X-Accel-Buffering", "no");
      res.keep_alive(false);  // the stream ends when the connection closes
      http::response_serializer<http::empty_body> serializer(res);
      beast::error_code ec;
      log(head, 200);
      x.connection.serve(options.stall_timeout_seconds);
      http::write_header(x.socket, serializer, ec);
      if (!ec) serve_job_events(x.socket, x.connection, options.stall_timeout_seconds, jobs, id, stopping);
      return false;
    }
    if (what == "/output" && head.method == http::verb::get) {
      if (st->state != JobState::succeeded)
        return fail(
            http::status::conflict, "not_ready",
            st->finished()
                ? fmt::format("job '{}' {}; it has no output", id, job_state_name(st->state))
                : fmt::format("job '{}' is still {}; wait for it to succeed", id, job_state_name(st->state)));
      http::response<http::file_body> res{http::status::ok, 11};
      beast::error_code ec;
      res.body().open(st->output_path.c_str(), beast::file_mode::scan, ec);
      if (ec) return fail(http::status::gone, "gone", "the output file is no longer there");
      res.set(http::field::server, "upres");
      res.set(http::field::content_type, video_content_type(st->output_path));
      res.set(http::field::content_disposition, attachment_header(st->download_name));
      res.keep_alive(head.keep_alive);
      res.prepare_payload();
      return reply(std::move(res));
    }
    return fail(http::status::method_not_allowed, "method_not_allowed",
                "jobs take GET and DELETE; their events and output take GET");
  }
  return fail(http::status::not_found, "not_found",
              fmt::format("no endpoint {} (see docs/API.md)", json_brief(json(path), 80)));
}

void Server::Impl::serve_connection(std::shared_ptr<tcp::socket> socket_owner,
                                    std::shared_ptr<Connections::Entry> entry) {
  tcp::socket& socket = *socket_owner;
  try {
    beast::flat_buffer buffer;
    for (bool first = true; !stopping; first = false) {
      // Idle between requests (or before the first): the connection may go for room, and goes
      // when the time is up. A byte of the next request starts the header's own deadline.
      beast::error_code ec;
      if (buffer.size() == 0) {
        entry->expect_request(first ? options.header_timeout_seconds : options.keep_alive_seconds);
        socket.wait(tcp::socket::wait_read, ec);
        if (ec || stopping) break;
      }
      entry->expect_request(options.header_timeout_seconds);
      http::request_parser<http::empty_body> parser;
      parser.header_limit(32 * 1024);
      // Each endpoint applies its own limit once it is known (Beast's default would refuse every
      // body over 1 MiB here; and boost::none, which should mean no limit, compares as the
      // smallest limit in Boost 1.74).
      parser.body_limit(std::numeric_limits<uint64_t>::max());
      http::read_header(socket, buffer, parser, ec);
      entry->serve();
      if (ec) {
        const bool quiet_end = ec == http::error::end_of_stream || ec == net::error::eof ||
                               ec == net::error::connection_reset || ec == net::error::broken_pipe ||
                               entry->timed_out() || stopping;
        if (!quiet_end) {
          auto res = error_response(http::status::bad_request, error_code_name(ErrorCode::invalid_argument),
                                    "malformed HTTP request: " + ec.message(), false);
          entry->serve(options.stall_timeout_seconds);
          http::write(socket, res, ec);
        }
        break;
      }
      Exchange x{socket, buffer, parser, *entry, {}};
      if (!handle(x) || stopping) break;
    }
  } catch (const std::exception& e) {
    if (!options.quiet) std::fprintf(stderr, "upres serve: connection ended: %s\n", e.what());
  }
  // Retired before it is closed (its descriptor number may be handed out again at once), removed
  // after: the server may be destroyed as soon as the last connection is removed.
  connections.retire(entry);
  beast::error_code ec;
  if (socket.is_open()) {
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }
  socket_owner.reset();
  connections.remove(entry);
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {
  auto& o = impl_->options;
  beast::error_code ec;
  auto address = net::ip::make_address(o.host, ec);
  if (ec)
    throw Error(ErrorCode::invalid_argument,
                fmt::format("--host '{}' is not an IP address (try 127.0.0.1)", o.host));
  if (o.port < 0 || o.port > 65535) throw Error(ErrorCode::invalid_argument, "--port must be 0..65535");
  check_range("--max-connections", o.max_connections, 1, 65536);
  check_range("--max-client-connections", o.max_client_connections, 1, 65536);
  if (o.max_upload_bytes < (int64_t(1) << 20) || o.max_upload_bytes > (int64_t(16) << 40))
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("--max-upload {} bytes is outside 1M..16T (a size like 500M or 8G)", o.max_upload_bytes));
  for (double seconds : {o.header_timeout_seconds, o.keep_alive_seconds, o.stall_timeout_seconds})
    check_range("a connection timeout", seconds, 0.01, 86400, " seconds");
  tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw Error(ErrorCode::io_failure,
                fmt::format("cannot listen on {}:{}: {} (is another server on that port? try --port 0)",
                            o.host, o.port, ec.message()));
}

Server::~Server() {
  stop();
}

int Server::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

std::string Server::url() const {
  std::string host = impl_->options.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return fmt::format("http://{}:{}", host, port());
}

JobManager& Server::jobs() {
  return impl_->jobs;
}

void Server::run() {
  auto& im = *impl_;
  while (!im.stopping) {
    auto socket = std::make_shared<tcp::socket>(im.io);
    beast::error_code ec;
    im.acceptor.accept(*socket, ec);
    if (im.stopping) break;
    if (ec) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // out of descriptors: do not spin
      continue;
    }
    const auto peer = socket->remote_endpoint(ec);
    const std::string client = ec ? "unknown" : peer.address().to_string();
    auto entry = im.connections.admit(socket->native_handle(), client);
    if (!entry) {
      // Every connection is busy with a request: this one cannot be served now.
      auto res = error_response(http::status::service_unavailable, "busy",
                                "too many connections are busy; retry shortly", false);
      socket->non_blocking(true, ec);  // a client that reads nothing cannot stall the listener
      http::write(*socket, res, ec);
      continue;
    }
    try {
      std::thread(&Impl::serve_connection, &im, socket, entry).detach();
    } catch (const std::system_error&) {  // out of threads: this one is refused, the server goes on
      im.connections.retire(entry);
      auto res = error_response(http::status::service_unavailable, "busy",
                                "the server is out of threads; retry shortly", false);
      socket->non_blocking(true, ec);
      http::write(*socket, res, ec);
      socket->close(ec);
      im.connections.remove(entry);
    }
  }
  // Stopping: jobs end first (their event streams then send a last event), then every
  // connection still open is shut, which wakes the threads blocked on it.
  im.jobs.cancel_all_and_wait();
  im.connections.close_all_and_wait();
}

void Server::serve_socket(int fd) {
  auto socket = std::make_shared<tcp::socket>(impl_->io);
  beast::error_code ec;
  socket->assign(tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    throw Error(ErrorCode::io_failure, "cannot serve that descriptor: " + ec.message());
  }
  auto entry = impl_->connections.admit(fd, "local");
  if (!entry) return;  // the socket closes with its owner
  impl_->serve_connection(std::move(socket), std::move(entry));
}

void Server::stop() {
  if (impl_->stopping.exchange(true)) return;
  // shutdown() wakes a thread blocked in accept(); closing the descriptor would not.
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
}

}  // namespace upres
