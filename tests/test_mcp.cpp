// `upres mcp` driven over pipes as an MCP client would: the handshake, tools/list, each tool,
// progress notifications, cancellation and JSON-RPC errors, checked against the protocol's
// message shapes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "media_inspect.hpp"
#include "test_support.hpp"
#include "upres/upscaler.hpp"
#include "upres/video.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class McpProcess {
 public:
  explicit McpProcess(const fs::path& root, std::vector<std::string> extra_args = {}) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      std::vector<std::string> args{"upres", "mcp", "--root", root.string(), "--max-jobs", "1"};
      args.insert(args.end(), extra_args.begin(), extra_args.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(UPRES_CLI_PATH, argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~McpProcess() {
    if (to_ >= 0) close(to_);
    int status = 0;
    for (int i = 0; i < 200 && waitpid(pid_, &status, WNOHANG) == 0; ++i) usleep(50'000);
    if (waitpid(pid_, &status, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
    }
    close(from_);
  }
  void send(const json& message) { send_line(message.dump()); }
  void send_line(const std::string& line) {
    std::string text = line + "\n";
    ASSERT_EQ(write(to_, text.data(), text.size()), ssize_t(text.size()));
  }
  // The next message, or null after `timeout_ms` of silence.
  json next(int timeout_ms = 300000) {
    for (;;) {
      size_t eol = pending_.find('\n');
      if (eol != std::string::npos) {
        std::string line = pending_.substr(0, eol);
        pending_.erase(0, eol + 1);
        return json::parse(line);
      }
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return nullptr;
      char buf[4096];
      ssize_t n = read(from_, buf, sizeof buf);
      if (n <= 0) return nullptr;
      pending_.append(buf, size_t(n));
    }
  }
  // The response to request `id`; notifications before it are collected.
  json response(const json& id, std::vector<json>* notifications = nullptr) {
    for (;;) {
      json m = next();
      if (m.is_null()) return m;
      EXPECT_EQ(m["jsonrpc"], "2.0");
      if (m.contains("id") && m["id"] == id && !m.contains("method")) return m;
      if (notifications) notifications->push_back(m);
    }
  }
  json call(int id, const std::string& method, const json& params = json::object()) {
    send({{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}});
    return response(id);
  }
  void close_input() {
    close(to_);
    to_ = -1;
  }
  void signal(int sig) { kill(pid_, sig); }
  int close_and_wait() {
    if (to_ >= 0) close(to_);
    to_ = -1;
    return wait_for_exit();
  }
  // The exit status, or -1 when the process did not exit by itself within `seconds` (it returns
  // as soon as the process exits: the bound only matters on a machine loaded far past normal).
  int wait_for_exit(int seconds = 180) {
    int status = 0;
    for (int i = 0; i < seconds * 20; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      usleep(50'000);
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string pending_;
};

class Mcp : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/upres-mcp-XXXXXX";
    root = mkdtemp(tmpl);
    write_image(make_test_pattern(30, 20), (root / "pic.png").string());
    TestVideoSpec spec;
    spec.width = 96;
    spec.height = 64;
    spec.frames = 24;
    write_test_video((root / "clip.mp4").string(), spec);
  }
  void TearDown() override { fs::remove_all(root); }
  void initialize(McpProcess& mcp, const std::string& version = "2025-06-18") {
    json r = mcp.call(0, "initialize",
                      {{"protocolVersion", version},
                       {"capabilities", json::object()},
                       {"clientInfo", {{"name", "upres-test"}, {"version", "1"}}}});
    ASSERT_TRUE(r.contains("result")) << r.dump();
    mcp.send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});
  }
  void write_long_clip() { write_long_test_clip((root / "long.mp4").string()); }
  // Sends a video_upscale call without waiting for its answer.
  void start_video_call(McpProcess& mcp, const json& id, const std::string& input) {
    mcp.send(
        {{"jsonrpc", "2.0"},
         {"id", id},
         {"method", "tools/call"},
         {"params",
          {{"name", "video_upscale"}, {"arguments", {{"input", input}, {"model", "upres-compact-x2"}}}}}});
  }
  void expect_no_output_of(const std::string& stem) {
    for (const auto& e : fs::directory_iterator(root))
      EXPECT_EQ(e.path().filename().string().find(stem + "-upres"), std::string::npos) << e.path();
  }
  fs::path root;
};

TEST_F(Mcp, HandshakeAndToolList) {
  McpProcess mcp(root);
  json init = mcp.call(1, "initialize",
                       {{"protocolVersion", "2025-06-18"},
                        {"capabilities", json::object()},
                        {"clientInfo", {{"name", "t"}, {"version", "1"}}}});
  ASSERT_TRUE(init.contains("result")) << init.dump();
  EXPECT_EQ(init["result"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(init["result"]["serverInfo"]["name"], "upres");
  EXPECT_TRUE(init["result"]["capabilities"].contains("tools"));
  mcp.send({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}});

  json ping = mcp.call(2, "ping");
  EXPECT_EQ(ping["result"], json::object());

  json list = mcp.call(3, "tools/list");
  std::set<std::string> names;
  for (const json& tool : list["result"]["tools"]) {
    names.insert(tool["name"].get<std::string>());
    EXPECT_EQ(tool["inputSchema"]["type"], "object") << tool.dump();
    EXPECT_TRUE(tool["description"].is_string());
    EXPECT_EQ(tool["outputSchema"]["type"], "object");
  }
  EXPECT_EQ(names, (std::set<std::string>{"video_upscale", "image_upscale", "list_models"}));
  EXPECT_EQ(mcp.close_and_wait(), 0);
}

TEST_F(Mcp, NegotiatesTheProtocolVersion) {
  McpProcess mcp(root);
  json old = mcp.call(1, "initialize", {{"protocolVersion", "2024-11-05"}, {"capabilities", json::object()}});
  EXPECT_EQ(old["result"]["protocolVersion"], "2024-11-05");
  McpProcess other(root);
  json unknown =
      other.call(1, "initialize", {{"protocolVersion", "1999-01-01"}, {"capabilities", json::object()}});
  EXPECT_EQ(unknown["result"]["protocolVersion"], "2025-11-25");  // our newest: the client decides
}

TEST_F(Mcp, ToolsDoTheirWork) {
  McpProcess mcp(root);
  initialize(mcp);
  json models = mcp.call(2, "tools/call", {{"name", "list_models"}, {"arguments", json::object()}});
  ASSERT_EQ(models["result"]["isError"], false) << models.dump();
  EXPECT_FALSE(models["result"]["structuredContent"]["models"].empty());
  EXPECT_EQ(models["result"]["content"][0]["type"], "text");

  json image = mcp.call(
      3, "tools/call",
      {{"name", "image_upscale"}, {"arguments", {{"input", "pic.png"}, {"model", "upres-compact-x2"}}}});
  ASSERT_EQ(image["result"]["isError"], false) << image.dump();
  EXPECT_EQ(image["result"]["structuredContent"]["output"], "pic-upres-x2.png");
  EXPECT_EQ(read_image((root / "pic-upres-x2.png").string()).width, 60);

  // A video with a progress token: progress notifications, then the result.
  mcp.send(
      {{"jsonrpc", "2.0"},
       {"id", 4},
       {"method", "tools/call"},
       {"params",
        {{"name", "video_upscale"},
         {"arguments", {{"input", "clip.mp4"}, {"model", "upres-compact-x2"}, {"options", {{"crf", 24}}}}},
         {"_meta", {{"progressToken", "tok-4"}}}}}});
  std::vector<json> notes;
  json video = mcp.response(4, &notes);
  ASSERT_EQ(video["result"]["isError"], false) << video.dump();
  json out = video["result"]["structuredContent"];
  EXPECT_EQ(out["output"], "clip-upres-x2.mp4");
  EXPECT_EQ(out["width"], 192);
  EXPECT_EQ(out["frames"], 24);
  EXPECT_EQ(inspect_media((root / "clip-upres-x2.mp4").string()).video().height, 128);
  double last = -1;
  for (const json& n : notes) {
    ASSERT_EQ(n["method"], "notifications/progress") << n.dump();
    EXPECT_EQ(n["params"]["progressToken"], "tok-4");
    EXPECT_GT(n["params"]["progress"].get<double>(), last);  // strictly increasing, as the spec asks
    last = n["params"]["progress"];
    EXPECT_EQ(n["params"]["total"], 100);
  }
  EXPECT_FALSE(notes.empty());
}

// `upres mcp --backend vulkan` (lavapipe here): the tools run on the GPU backend.
TEST_F(Mcp, VulkanBackendRunsTheTools) {
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
  McpProcess mcp(root, {"--backend", "vulkan", "--precision", "f16"});
  initialize(mcp);
  json image = mcp.call(
      3, "tools/call",
      {{"name", "image_upscale"}, {"arguments", {{"input", "pic.png"}, {"model", "upres-compact-x2"}}}});
  ASSERT_EQ(image["result"]["isError"], false) << image.dump();
  const Image got = read_image((root / "pic-upres-x2.png").string());
  UpscaleOptions cpu;
  cpu.backend = "cpu";
  cpu.precision = Precision::f32;
  const Image want =
      Upscaler(Model::load("upres-compact-x2"), cpu).upscale(read_image((root / "pic.png").string()));
  EXPECT_GE(psnr_8bit(got, want), 40.0);
  json video = mcp.call(
      4, "tools/call",
      {{"name", "video_upscale"},
       {"arguments", {{"input", "clip.mp4"}, {"model", "upres-compact-x2"}, {"options", {{"frames", 6}}}}}});
  ASSERT_EQ(video["result"]["isError"], false) << video.dump();
  EXPECT_EQ(video["result"]["structuredContent"]["frames"], 6);
  EXPECT_EQ(inspect_media((root / "clip-upres-x2.mp4").string()).video().height, 128);
}

// Without "scale" or "output", the default name says the scale the model gives.
TEST_F(Mcp, DefaultVideoNamesSayTheModelsScale) {
  UPRES_REQUIRE_MODEL("realesr-animevideov3-x4");
  McpProcess mcp(root);
  initialize(mcp);
  json r = mcp.call(
      5, "tools/call",
      {{"name", "video_upscale"},
       {"arguments",
        {{"input", "clip.mp4"}, {"model", "realesr-animevideov3-x4"}, {"options", {{"frames", 2}}}}}});
  ASSERT_EQ(r["result"]["isError"], false) << r.dump();
  EXPECT_EQ(r["result"]["structuredContent"]["output"], "clip-upres-x4.mp4");
  EXPECT_TRUE(fs::exists(root / "clip-upres-x4.mp4"));
}

TEST_F(Mcp, ErrorsFollowTheProtocol) {
  McpProcess mcp(root);
  initialize(mcp);
  mcp.send_line("{this is not json");
  json parse = mcp.next();
  EXPECT_EQ(parse["error"]["code"], -32700);
  EXPECT_TRUE(parse["id"].is_null());

  json method = mcp.call(2, "resources/list");
  EXPECT_EQ(method["error"]["code"], -32601);
  json tool = mcp.call(3, "tools/call", {{"name", "no_such_tool"}, {"arguments", json::object()}});
  EXPECT_EQ(tool["error"]["code"], -32602);
  mcp.send({{"id", 4}, {"method", "ping"}});  // no "jsonrpc": "2.0"
  EXPECT_EQ(mcp.response(4)["error"]["code"], -32600);

  // Tool failures are results with isError, so the agent can read and act on them.
  json escape =
      mcp.call(5, "tools/call", {{"name", "image_upscale"}, {"arguments", {{"input", "../etc/passwd"}}}});
  EXPECT_EQ(escape["result"]["isError"], true);
  EXPECT_NE(escape["result"]["content"][0]["text"].get<std::string>().find("root"), std::string::npos);
  json missing =
      mcp.call(6, "tools/call", {{"name", "video_upscale"}, {"arguments", {{"input", "nope.mp4"}}}});
  EXPECT_EQ(missing["result"]["isError"], true);
  json bad_arg = mcp.call(7, "tools/call",
                          {{"name", "image_upscale"}, {"arguments", {{"input", "pic.png"}, {"size", 3}}}});
  EXPECT_EQ(bad_arg["result"]["isError"], true);
  json bad_option = mcp.call(
      8, "tools/call",
      {{"name", "video_upscale"}, {"arguments", {{"input", "clip.mp4"}, {"options", {{"crf", "x"}}}}}});
  EXPECT_EQ(bad_option["result"]["isError"], true);
  EXPECT_EQ(mcp.call(9, "ping")["result"], json::object());  // still serving
}

TEST_F(Mcp, CancelStopsTheJobAndLeavesNoFile) {
  write_long_clip();
  McpProcess mcp(root);
  initialize(mcp);
  start_video_call(mcp, "call-1", "long.mp4");
  usleep(800'000);
  mcp.send({{"jsonrpc", "2.0"},
            {"method", "notifications/cancelled"},
            {"params", {{"requestId", "call-1"}, {"reason", "user pressed stop"}}}});
  // No response comes for a cancelled request; the next request is answered normally.
  json ping = mcp.call(2, "ping");
  EXPECT_TRUE(ping.contains("result"));
  // With no response to wait for, wait for the end: with stdin closed the server exits once every
  // call has ended, and a cancelled call ends only after its job removed its partial file (on a
  // loaded machine that can be seconds after the cancel, while the job is still being checked).
  // A cancel that did not stop the job would show up here as its result.
  mcp.close_input();
  json after = mcp.next(300000);  // null at the end of the output: the process has exited
  EXPECT_TRUE(after.is_null()) << "unexpected message: " << after.dump();
  EXPECT_EQ(mcp.close_and_wait(), 0);
  expect_no_output_of("long");
}

TEST_F(Mcp, ClosingStdinLetsRunningCallsFinish) {
  McpProcess mcp(root);
  initialize(mcp);
  start_video_call(mcp, 2, "clip.mp4");
  mcp.close_input();
  json result = mcp.response(2);
  ASSERT_TRUE(result.contains("result")) << result.dump();
  EXPECT_EQ(result["result"]["isError"], false);
  EXPECT_TRUE(fs::exists(root / "clip-upres-x2.mp4"));
  EXPECT_EQ(mcp.close_and_wait(), 0);
}

TEST_F(Mcp, SigtermAndSighupCancelRunningCallsAndRemovePartialFiles) {
  write_long_clip();
  for (int sig : {SIGTERM, SIGHUP}) {
    McpProcess mcp(root);
    initialize(mcp);
    start_video_call(mcp, 2, "long.mp4");
    usleep(800'000);
    mcp.signal(sig);  // stdin stays open: the signal alone ends the process
    EXPECT_EQ(mcp.wait_for_exit(), 0) << strsignal(sig);
    expect_no_output_of("long");
  }
}

// Messages of the wrong shape get the error the JSON-RPC specification names, the reply of a batch
// is one array, and the session goes on after each.
TEST_F(Mcp, MalformedMessagesGetProtocolErrorsAndTheSessionGoesOn) {
  McpProcess mcp(root);
  initialize(mcp);
  auto error_of = [&](const std::string& line) {
    mcp.send_line(line);
    json m = mcp.next();
    EXPECT_TRUE(m.is_object() && m.contains("error")) << line << " -> " << m.dump();
    return m;
  };
  struct Case {
    std::string line;
    int code;
    json id;
  } cases[] = {
      {R"({"jsonrpc":2,"id":1,"method":"ping"})", -32600, 1},
      {R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":5})", -32600, 2},
      {R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":5}})", -32602, 3},
      {R"({"jsonrpc":"2.0","id":4,"method":"tools/call","params":[]})", -32602, 4},
      {R"({"jsonrpc":"2.0","id":5,"method":"initialize","params":"x"})", -32600, 5},
      {R"({"jsonrpc":"2.0","id":6,"method":"initialize","params":[1]})", -32602, 6},
      {R"({"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":7}})", -32602, 7},
      {R"({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"list_models","arguments":3}})",
       -32602, 8},
      {R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"list_models","_meta":{"progressToken":{}}}})",
       -32602, 9},
      {R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})", -32600, nullptr},
      {R"({"jsonrpc":"2.0","id":10,"method":7})", -32600, 10},
      {R"("just a string")", -32600, nullptr},
      {"[]", -32600, nullptr},  // an empty batch: one error object, not an array
      {std::string(100000, '[') + std::string(100000, ']'), -32600, nullptr},
  };
  for (const Case& c : cases) {
    json m = error_of(c.line);
    EXPECT_EQ(m["error"]["code"], c.code) << c.line.substr(0, 120) << " -> " << m.dump();
    EXPECT_EQ(m["id"], c.id) << c.line.substr(0, 120);
    EXPECT_EQ(m["jsonrpc"], "2.0");
  }
  // The depth and length limits are named.
  json deep = error_of(std::string(5000, '{') + "}");
  EXPECT_NE(deep["error"]["message"].get<std::string>().find("64"), std::string::npos) << deep.dump();
  json longest =
      error_of("{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"" + std::string(17 << 20, 'x') + "\"}");
  EXPECT_NE(longest["error"]["message"].get<std::string>().find("bytes"), std::string::npos);

  // A batch: one array with a response per request, none for notifications.
  mcp.send_line(
      R"([{"jsonrpc":"2.0","id":20,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},5,)"
      R"({"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"list_models"}}])");
  json batch = mcp.next();
  ASSERT_TRUE(batch.is_array()) << batch.dump();
  ASSERT_EQ(batch.size(), 3u) << batch.dump();
  std::set<std::string> seen;
  for (const json& r : batch) seen.insert(r["id"].dump() + (r.contains("error") ? " error" : " result"));
  EXPECT_EQ(seen, (std::set<std::string>{"20 result", "21 result", "null error"})) << batch.dump();
  // Only notifications: no reply at all.
  mcp.send_line(R"([{"jsonrpc":"2.0","method":"notifications/initialized"}])");
  EXPECT_EQ(mcp.call(30, "ping")["result"], json::object());
  EXPECT_EQ(mcp.close_and_wait(), 0);
}

// Arguments of the wrong type or out of range are tool errors an agent can read and act on.
TEST_F(Mcp, BadArgumentsAreReadableToolErrors) {
  McpProcess mcp(root);
  initialize(mcp);
  struct Case {
    json params;
    std::string expect;
  } cases[] = {
      {{{"name", "image_upscale"}, {"arguments", {{"input", 5}}}}, "must be a string"},
      {{{"name", "image_upscale"}, {"arguments", {{"input", "pic.png"}, {"scale", "two"}}}},
       "must be an integer"},
      {{{"name", "image_upscale"}, {"arguments", {{"input", "pic.png"}, {"scale", 99}}}}, "1..16"},
      {{{"name", "image_upscale"}, {"arguments", {{"input", "pic.png"}, {"overwrite", "yes"}}}},
       "true or false"},
      {{{"name", "image_upscale"},
        {"arguments", {{"input", "pic.png"}, {"output", "pic.png"}, {"overwrite", true}}}},
       "input itself"},
      {{{"name", "video_upscale"}, {"arguments", {{"input", "clip.mp4"}, {"scale", "two"}}}},
       "must be an integer"},
      {{{"name", "video_upscale"}, {"arguments", {{"input", "clip.mp4"}, {"options", 5}}}},
       "must be an object"},
      {{{"name", "video_upscale"}, {"arguments", {{"input", 1.5}}}}, "must be a string"},
      {{{"name", "video_upscale"}, {"arguments", {{"input", "clip.mp4"}, {"colour", "red"}}}}, "colour"},
      {{{"name", "video_upscale"},
        {"arguments", {{"input", "clip.mp4"}, {"options", {{"threads", 100000}}}}}},
       "0..256"},
      {{{"name", "video_upscale"}, {"arguments", {{"input", "clip.mp4"}, {"options", {{"crf", -4}}}}}},
       "0..51"},
      {{{"name", "video_upscale"},
        {"arguments", {{"input", "clip.mp4"}, {"output", "clip.mp4"}, {"overwrite", true}}}},
       "input itself"},
  };
  int id = 100;
  for (const Case& c : cases) {
    json r = mcp.call(++id, "tools/call", c.params);
    ASSERT_TRUE(r.contains("result")) << c.params.dump() << " -> " << r.dump();
    EXPECT_EQ(r["result"]["isError"], true) << c.params.dump();
    const std::string text = r["result"]["content"][0]["text"];
    EXPECT_NE(text.find(c.expect), std::string::npos) << c.params.dump() << " -> " << text;
    EXPECT_EQ(text.find("json.exception"), std::string::npos) << text;
    EXPECT_EQ(text.find(fs::canonical(root).string()), std::string::npos) << "a server path in: " << text;
  }
  EXPECT_EQ(mcp.call(200, "ping")["result"], json::object());
  EXPECT_EQ(mcp.close_and_wait(), 0);
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(name == "pic.png" || name == "clip.mp4") << "left behind: " << name;
  }
}

}  // namespace
}  // namespace upres::test
