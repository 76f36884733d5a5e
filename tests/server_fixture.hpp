// The fixture of the server tests: a real upres::Server on 127.0.0.1 and an ephemeral port, over
// a temporary root folder holding a short clip and a picture.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "http_client.hpp"
#include "test_support.hpp"
#include "upres/server.hpp"
#include "upres/video.hpp"

namespace upres::test {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kModel = "upres-compact-x2";  // in the repository: no download needed

using StreamSession = boost::beast::websocket::stream<boost::asio::ip::tcp::socket>;

inline std::string png_bytes(int w, int h, uint32_t seed = 1) {
  auto bytes = encode_image(make_test_pattern(w, h, seed), ImageFormat::png);
  return std::string(bytes.begin(), bytes.end());
}

inline Image decode(const std::string& bytes) {
  return decode_image(std::vector<uint8_t>(bytes.begin(), bytes.end()), "reply");
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/upres-server-XXXXXX";
    root = mkdtemp(tmpl);
    fs::create_directories(root / "work");
    TestVideoSpec spec;
    spec.width = 96;
    spec.height = 64;
    spec.frames = 24;
    write_test_video((root / "clip.mp4").string(), spec);
    write_image(make_test_pattern(40, 30), (root / "pic.png").string());
  }
  void write_long_clip() { write_long_test_clip((root / "long.mp4").string()); }
  void TearDown() override {
    stop();
    fs::remove_all(root);
  }

  void start(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    options.quiet = true;
    options.service.root = root.string();
    options.service.work_dir = (root / "work").string();
    server = std::make_unique<Server>(options);
    port = server->port();
    thread = std::thread([this] { server->run(); });
  }
  void stop() {
    if (!server) return;
    server->stop();
    thread.join();
    server.reset();
  }

  // A WebSocket session on /v1/stream for kModel, the handshake done (its "ready" still unread).
  std::unique_ptr<StreamSession> open_stream() {
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
    auto ws = std::make_unique<StreamSession>(std::move(socket));
    ws->read_message_max(size_t(64) << 20);
    ws->handshake("127.0.0.1:" + std::to_string(port), std::string("/v1/stream?model=") + kModel);
    return ws;
  }

  json json_of(const HttpReply& r) { return json::parse(r.body); }
  HttpReply post_json(const std::string& target, const json& body, std::vector<std::string> headers = {}) {
    headers.push_back("Content-Type: application/json");
    return http_request(port, "POST", target, body.dump(), headers);
  }
  // Polls until the job is finished; returns its final status.
  json wait_finished(const std::string& id) {
    for (int i = 0; i < 600; ++i) {
      json st = json_of(http_request(port, "GET", "/v1/jobs/" + id));
      if (st["state"] != "running" && st["state"] != "queued") return st;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }
  std::string start_slow_job() {
    if (!fs::exists(root / "long.mp4")) write_long_clip();
    auto r = post_json("/v1/video/upscale", {{"input", "long.mp4"}, {"model", kModel}});
    EXPECT_EQ(r.status, 202) << r.body;
    return json_of(r)["id"];
  }
  size_t files_in_work() {
    size_t n = 0;
    for (auto it = fs::recursive_directory_iterator(root / "work"); it != fs::recursive_directory_iterator();
         ++it)
      n += it->is_regular_file() && it->path().filename() != ".upres-serve.lock";  // the server's own lock
    return n;
  }

  fs::path root;
  boost::asio::io_context io;  // for the test's own WebSocket clients
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;
};

}  // namespace upres::test
