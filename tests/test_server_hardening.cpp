// `upres serve` against hostile and careless clients, one test per class of defect: deep JSON,
// numbers out of range, idle and slow connections, large bodies, text that is not UTF-8, foreign
// web pages, huge or damaged images, files left behind, a queue instead of refusals, and one
// vocabulary of error codes. Each test checks that the server still answers afterwards and that
// nothing is left in its work folder.
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "server_fixture.hpp"

namespace upres::test {
namespace {

std::string deep_json(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

std::string error_code(const HttpReply& r) {
  auto j = json::parse(r.body, nullptr, false);
  return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

// Sends a WebSocket upgrade for /v1/stream with the given extra headers; the HTTP status back.
int upgrade_status(int port, const std::vector<std::string>& headers) {
  std::vector<std::string> all = {"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="};
  all.insert(all.end(), headers.begin(), headers.end());
  return http_request(port, "GET", std::string("/v1/stream?model=") + kModel, "", all).status;
}

class ServerHardening : public ServerTest {
 protected:
  // The server answers, and its work folder holds nothing.
  void expect_healthy_and_clean() {
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
    EXPECT_EQ(files_in_work(), 0u) << "the work folder is not empty";
  }
};

TEST_F(ServerHardening, DeepJsonIsRefusedEverywhereWithTheLimitNamed) {
  start();
  const std::string deep = deep_json(100000);
  auto body = http_request(port, "POST", "/v1/video/upscale", deep, {"Content-Type: application/json"});
  EXPECT_EQ(body.status, 400) << body.body;
  EXPECT_NE(body.body.find("64"), std::string::npos) << body.body;
  auto form = http_request(port, "POST", "/v1/video/upscale", "input=clip.mp4&audio_tracks=" + deep,
                           {"Content-Type: application/x-www-form-urlencoded"});
  EXPECT_EQ(form.status, 400) << form.body;
  auto query = http_request(port, "POST", "/v1/video/upscale?input=clip.mp4&crf=" + deep);
  EXPECT_EQ(query.status, 400) << query.body;
  Multipart m;
  m.field("options", "{\"a\":" + deep + "}");
  m.file("file", "clip.mp4", "video/mp4", read_file_bytes((root / "clip.mp4").string()));
  auto multipart = http_request(port, "POST", "/v1/video/upscale", m.finish(), {m.content_type()});
  EXPECT_EQ(multipart.status, 400) << multipart.body;
  EXPECT_NE(multipart.body.find("64"), std::string::npos) << multipart.body;

  // A WebSocket text message: an error message, and the session goes on.
  namespace websocket = boost::beast::websocket;
  namespace net = boost::asio;
  auto ws = open_stream();
  boost::beast::flat_buffer buffer;
  ws->read(buffer);  // ready
  buffer.clear();
  ws->text(true);
  ws->write(net::buffer(deep));
  ws->read(buffer);
  json error = json::parse(boost::beast::buffers_to_string(buffer.data()));
  EXPECT_EQ(error["type"], "error");
  EXPECT_NE(error["message"].get<std::string>().find("64"), std::string::npos) << error.dump();
  buffer.clear();
  ws->binary(true);
  ws->write(net::buffer(png_bytes(6, 5)));
  ws->read(buffer);
  EXPECT_EQ(decode(boost::beast::buffers_to_string(buffer.data())).width, 12);
  ws->close(websocket::close_code::normal);
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, EveryNumericOptionIsRangeChecked) {
  start();
  struct Case {
    json options;
    std::string range;  // what the message must name
  };
  const std::vector<Case> cases = {
      {{{"threads", 100000}}, "0..256"},
      {{{"threads", -1}}, "0..256"},
      {{{"tile", 5}}, "16..65536"},
      {{{"tile_overlap", 1000}}, "-1..256"},
      {{{"max_memory", "1k"}}, "1M..16T"},
      {{{"scale", 99}}, "0..16"},
      {{{"scale", int64_t(4294967298)}}, "sensible"},  // would wrap to 2 in an int
      {{{"crf", 99}}, "0..51"},
      {{{"crf", 70}, {"output", "out.webm"}}, "0..63"},
      {{{"frames", -1}}, "0..1000000000"},
      {{{"fps", 5000}}, "0.01..1000"},
      {{{"b:v", "1"}}, "1000..2000000000"},
      {{{"b:a", "9G"}, {"c:a", "aac"}}, "1000..4000000"},
      {{{"volume", 2000}, {"c:a", "aac"}}, "0..1000"},
      {{{"g", -5}}, "0..100000"},
      {{{"max_size", 3}}, "16..65536"},
      {{{"ss", -1}}, "0..100000000"},
      {{{"audio_tracks", {5000}}}, "0..1023"},
  };
  for (const Case& c : cases) {
    json options = c.options;
    options["input"] = "clip.mp4";
    options["model"] = kModel;
    auto r = post_json("/v1/video/upscale", options);
    EXPECT_EQ(r.status, 400) << options.dump() << " -> " << r.body;
    EXPECT_NE(r.body.find(c.range), std::string::npos) << options.dump() << " -> " << r.body;
  }
  // Image requests: quality 1..100 (0 is not "the default"), scale 0..16.
  for (const char* query : {"quality=0", "quality=101", "scale=99", "scale=-2"}) {
    auto r = http_request(port, "POST", std::string("/v1/image/upscale?") + query, png_bytes(8, 8));
    EXPECT_EQ(r.status, 400) << query << " -> " << r.body;
    EXPECT_NE(r.body.find(".."), std::string::npos) << query << " -> " << r.body;
  }
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, IdleAndSlowClientsCannotLockOthersOut) {
  ServerOptions o;
  o.max_client_connections = 8;
  o.max_connections = 16;
  o.header_timeout_seconds = 1.5;
  o.keep_alive_seconds = 1;
  start(o);
  // Sockets that send nothing, and sockets that send a header a byte at a time, from the same
  // address as the well-behaved client.
  std::vector<std::unique_ptr<RawConnection>> idle, slow;
  for (int i = 0; i < 40; ++i) idle.push_back(std::make_unique<RawConnection>(port));
  for (int i = 0; i < 20; ++i) slow.push_back(std::make_unique<RawConnection>(port));
  std::atomic<bool> dripping{true};
  std::thread drip([&] {
    const std::string header = "GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ";
    for (size_t i = 0; dripping; ++i) {
      for (auto& c : slow) c->send(std::string(1, header[std::min(i, header.size() - 1)]));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  // Others are served all the while, /healthz and work alike.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
    auto image =
        http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(9, 7));
    EXPECT_EQ(image.status, 200) << image.body;
  }
  dripping = false;
  drip.join();
  // Whatever was not closed for room is closed at its deadline: nobody holds a socket for ever.
  for (auto& c : idle) EXPECT_TRUE(c->closed_within(20)) << "an idle connection stayed open";
  for (auto& c : slow) EXPECT_TRUE(c->closed_within(20)) << "a slow header kept its connection";
  // A kept-alive connection that goes quiet after a request is closed too.
  RawConnection kept(port);
  kept.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::string answer;
  EXPECT_TRUE(kept.closed_within(20, &answer));
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, BodiesHaveLimitsPerEndpointNotOneMegabyte) {
  ServerOptions o;
  o.max_image_bytes = 3 << 20;
  o.max_upload_bytes = 6 << 20;
  start(o);
  // A picture of over 1 MiB, sent with a Content-Length: served (Beast's default would say 400).
  Image noisy(700, 500, 3);
  std::mt19937 rng(7);
  for (float& v : noisy.data) v = float(rng() % 256) / 255;
  auto png = encode_image(noisy, ImageFormat::png);
  ASSERT_GT(png.size(), size_t(1) << 20);
  ASSERT_LT(png.size(), size_t(3) << 20);
  auto big = http_request(port, "POST", "/v1/image/upscale?model=" + std::string(kModel) + "&scale=1",
                          std::string(png.begin(), png.end()), {"Content-Type: image/png"});
  EXPECT_EQ(big.status, 200) << big.body.substr(0, 300);
  // Over the limits: 413 with the limit in the message, declared or chunked.
  auto image =
      http_request(port, "POST", "/v1/image/upscale", std::string(4 << 20, 'x'), {"Content-Type: image/png"});
  EXPECT_EQ(image.status, 413);
  EXPECT_NE(image.body.find(std::to_string(3 << 20)), std::string::npos) << image.body;
  auto video = http_request(port, "POST", "/v1/video/upscale?filename=a.mp4", std::string(7 << 20, 'v'),
                            {"Content-Type: video/mp4"});
  EXPECT_EQ(video.status, 413);
  EXPECT_NE(video.body.find(std::to_string(6 << 20)), std::string::npos) << video.body;
  auto chunked = http_request(port, "POST", "/v1/video/upscale?filename=a.mp4", std::string(7 << 20, 'v'),
                              {"Content-Type: video/mp4", "Transfer-Encoding: chunked"});
  EXPECT_EQ(chunked.status, 413) << chunked.body;
  auto json_body =
      http_request(port, "POST", "/v1/video/upscale", "{\"input\": \"" + std::string(2 << 20, 'a') + "\"}",
                   {"Content-Type: application/json"});
  EXPECT_EQ(json_body.status, 413);
  // An upload under the limit goes to disk, not memory: it runs as a job.
  auto upload =
      http_request(port, "POST", std::string("/v1/video/upscale?filename=c.mp4&frames=2&model=") + kModel,
                   read_file_bytes((root / "clip.mp4").string()), {"Content-Type: video/mp4"});
  ASSERT_EQ(upload.status, 202) << upload.body;
  EXPECT_EQ(wait_finished(json_of(upload)["id"])["state"], "succeeded");
  http_request(port, "DELETE", "/v1/jobs/" + json_of(upload)["id"].get<std::string>());
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, TextThatIsNotUtf8IsRefusedAndNeverBreaksTheStatus) {
  start();
  Multipart m;
  m.field("model", kModel);
  m.file("file", "clip\xff\xfe.mp4", "video/mp4", read_file_bytes((root / "clip.mp4").string()));
  auto upload = http_request(port, "POST", "/v1/video/upscale", m.finish(), {m.content_type()});
  EXPECT_EQ(upload.status, 400) << upload.body;
  EXPECT_NE(upload.body.find("UTF-8"), std::string::npos);
  for (const char* target : {"/v1/image/upscale?model=%ff", "/v1/image/upscale?%fe=1", "/v1/jobs/%ff%fe"}) {
    auto r = http_request(port, target[4] == 'i' ? "POST" : "GET", target, png_bytes(8, 8));
    EXPECT_EQ(r.status, 400) << target << " -> " << r.body;
    EXPECT_EQ(error_code(r), "invalid_argument") << r.body;
  }
  // A job whose input name is odd but valid, listed by everyone.
  auto job = http_request(
      port, "POST", std::string("/v1/video/upscale?filename=%E2%9C%93%22%0A.mp4&frames=1&model=") + kModel,
      read_file_bytes((root / "clip.mp4").string()), {"Content-Type: video/mp4"});
  ASSERT_EQ(job.status, 202) << job.body;
  auto list = http_request(port, "GET", "/v1/jobs");
  EXPECT_EQ(list.status, 200) << list.body;
  std::string id = json_of(job)["id"];
  EXPECT_EQ(wait_finished(id)["state"], "succeeded");
  auto output = http_request(port, "GET", "/v1/jobs/" + id + "/output");
  EXPECT_EQ(output.status, 200);
  EXPECT_NE(output.header("content-disposition").find("filename*=UTF-8''%E2%9C%93%22%0A-upres-x2.mp4"),
            std::string::npos)
      << output.header("content-disposition");
  http_request(port, "DELETE", "/v1/jobs/" + id);
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, ForeignWebPagesAreRefused) {
  start();
  const std::string own = "Origin: http://127.0.0.1:" + std::to_string(port);
  const std::string image_target = std::string("/v1/image/upscale?model=") + kModel;
  // A page elsewhere: a "simple" POST, a JSON POST, a DELETE and a WebSocket, all refused.
  auto simple = http_request(port, "POST", "/v1/video/upscale", "input=clip.mp4",
                             {"Content-Type: text/plain", "Origin: http://evil.example"});
  EXPECT_EQ(simple.status, 403) << simple.body;
  EXPECT_EQ(error_code(simple), "forbidden");
  EXPECT_EQ(http_request(port, "POST", image_target, png_bytes(8, 8), {"Origin: null"}).status, 403);
  EXPECT_EQ(http_request(port, "DELETE", "/v1/jobs/0123", "", {"Origin: http://evil.example"}).status, 403);
  EXPECT_EQ(upgrade_status(port, {"Origin: http://evil.example"}), 403);
  // DNS rebinding: the page's own name in Host, even for reading.
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs", "", {"Host: evil.example:" + std::to_string(port)}).status,
            403);
  EXPECT_EQ(http_request(port, "GET", "/", "", {"Host: rebind.example"}).status, 403);
  // This server's own page, plain clients and loopback names are welcome.
  EXPECT_EQ(http_request(port, "POST", image_target, png_bytes(8, 8), {own}).status, 200);
  EXPECT_EQ(http_request(port, "POST", image_target, png_bytes(8, 8)).status, 200);
  EXPECT_EQ(upgrade_status(port, {own}), 101);
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs", "", {"Host: localhost:" + std::to_string(port)}).status,
            200);
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs", "", {"Host: [::1]:" + std::to_string(port)}).status, 200);
  EXPECT_EQ(files_in_work(), 0u);
  stop();

  // Names and origins the user allows.
  ServerOptions o;
  o.allowed_hosts = {"upscaler.lan"};
  o.allowed_origins = {"http://app.example:3000"};
  start(o);
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs", "", {"Host: upscaler.lan:8080"}).status, 200);
  EXPECT_EQ(
      http_request(port, "POST", image_target, png_bytes(8, 8), {"Origin: http://app.example:3000"}).status,
      200);
  EXPECT_EQ(
      http_request(port, "POST", image_target, png_bytes(8, 8), {"Origin: http://app.example:3001"}).status,
      403);
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, LimitsAreCheckedBeforeWorkAndDamagedImagesAreErrors) {
  ServerOptions o;
  o.service.max_output_side = 4096;
  start(o);
  // 8000x8000 of one colour: a small file that would take gigabytes to decode.
  Image flat(8000, 8000, 3);
  auto huge = encode_image(flat, ImageFormat::png);
  flat = Image();
  ASSERT_LT(huge.size(), size_t(1) << 20);
  const int64_t before = resident_bytes();
  auto r = http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel,
                        std::string(huge.begin(), huge.end()), {"Content-Type: image/png"});
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(error_code(r), "limit_exceeded");
  EXPECT_LT(resident_bytes() - before, int64_t(200) << 20) << "the picture was decoded before it was refused";
  // Damaged pictures are errors, not pictures with a grey band.
  auto jpeg = encode_image(make_test_pattern(64, 48), ImageFormat::jpeg);
  auto webp = encode_image(make_test_pattern(64, 48), ImageFormat::webp);
  auto png = encode_image(make_test_pattern(64, 48), ImageFormat::png);
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::vector<uint8_t>>>{
           {"truncated jpeg", {jpeg.begin(), jpeg.begin() + jpeg.size() * 2 / 3}},
           {"truncated webp", {webp.begin(), webp.begin() + webp.size() * 2 / 3}},
           {"truncated png", {png.begin(), png.begin() + png.size() * 2 / 3}}}) {
    auto d = http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel,
                          std::string(bytes.begin(), bytes.end()));
    EXPECT_EQ(d.status, 422) << name << " -> " << d.status << " " << d.body.substr(0, 200);
    EXPECT_EQ(error_code(d), "invalid_media") << name;
  }
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, FailedRequestsLeaveNothingAndStaleUploadsGoAtStartUp) {
  // What a killed server left in its --work-dir, and a file of the user's that must stay.
  std::ofstream(root / "work" / "upload-0123456789abcdef.mp4") << "half an upload";
  fs::create_directories(root / "work" / "0123456789abcdef0123456789abcdef");
  std::ofstream(root / "work" / "0123456789abcdef0123456789abcdef" / "output.mp4") << "x";
  std::ofstream(root / "work" / "notes.txt") << "mine";
  start();
  EXPECT_FALSE(fs::exists(root / "work" / "upload-0123456789abcdef.mp4"));
  EXPECT_FALSE(fs::exists(root / "work" / "0123456789abcdef0123456789abcdef"));
  EXPECT_TRUE(fs::exists(root / "work" / "notes.txt"));
  fs::remove(root / "work" / "notes.txt");

  const std::string clip = read_file_bytes((root / "clip.mp4").string());
  {  // bad options after the file part
    Multipart m;
    m.file("file", "a.mp4", "video/mp4", clip);
    m.field("crf", "high");
    EXPECT_EQ(http_request(port, "POST", "/v1/video/upscale", m.finish(), {m.content_type()}).status, 400);
  }
  {  // two file parts
    Multipart m;
    m.file("file", "a.mp4", "video/mp4", clip);
    m.file("file", "b.mp4", "video/mp4", clip);
    EXPECT_EQ(http_request(port, "POST", "/v1/video/upscale", m.finish(), {m.content_type()}).status, 400);
  }
  {  // a file part the job refuses (not a video), and a malformed body
    Multipart m;
    m.file("file", "a.mp4", "video/mp4", "not a video");
    EXPECT_EQ(http_request(port, "POST", "/v1/video/upscale", m.finish(), {m.content_type()}).status, 422);
    EXPECT_EQ(http_request(port, "POST", "/v1/video/upscale", clip, {m.content_type()}).status, 400);
  }
  // A bad query option with a raw upload, and an upload cut short.
  EXPECT_EQ(http_request(port, "POST", "/v1/video/upscale?filename=a.mp4&colour=red", clip,
                         {"Content-Type: video/mp4"})
                .status,
            400);
  {
    RawConnection cut(port);
    cut.send(
        "POST /v1/video/upscale?filename=a.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n"
        "Content-Length: 100000\r\n\r\n" +
        clip.substr(0, 5000));
    // Cut only once the server is writing the upload, so that the wait below cannot end before
    // the file it has to remove exists.
    for (int i = 0; i < 1200 && files_in_work() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_GT(files_in_work(), 0u) << "the upload is streamed to the work folder";
  }
  // Writing over the input itself is refused, overwrite or not.
  auto self =
      post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"output", "clip.mp4"}, {"overwrite", true}});
  EXPECT_EQ(self.status, 400) << self.body;
  EXPECT_NE(self.body.find("input itself"), std::string::npos) << self.body;
  for (int i = 0; i < 1200 && files_in_work() > 0; ++i)  // ends at once when idle
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, BusyServerQueuesRequestsInsteadOfRefusingThem) {
  namespace websocket = boost::beast::websocket;
  namespace net = boost::asio;
  ServerOptions o;
  o.service.max_jobs = 1;
  o.service.queue = 2;
  o.service.queue_wait_seconds = 1;
  start(o);
  // A stream session holds the only place for as long as it is open, however fast the machine.
  auto session = open_stream();
  // Video jobs queue, in order, with their positions.
  auto second = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}, {"frames", 2}});
  ASSERT_EQ(second.status, 202) << second.body;
  EXPECT_EQ(json_of(second)["state"], "queued");
  EXPECT_EQ(json_of(second)["queue_position"], 1);
  auto third = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}, {"frames", 2}});
  ASSERT_EQ(third.status, 202) << third.body;
  EXPECT_EQ(json_of(third)["queue_position"], 2);
  EXPECT_EQ(json_of(http_request(port, "GET", "/healthz"))["queued"], 2);
  // The queue is full: 429 with Retry-After, before any upload is read.
  auto fourth = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}});
  EXPECT_EQ(fourth.status, 429) << fourth.body;
  EXPECT_FALSE(fourth.header("retry-after").empty());
  EXPECT_NE(fourth.body.find("--queue"), std::string::npos) << fourth.body;
  // A queued job can be cancelled; the one behind it moves up.
  std::string second_id = json_of(second)["id"], third_id = json_of(third)["id"];
  // 200 when it ended within the server's wait, 202 when a loaded machine took longer: either
  // way it ends cancelled.
  const int deleted = http_request(port, "DELETE", "/v1/jobs/" + second_id).status;
  EXPECT_TRUE(deleted == 200 || deleted == 202) << deleted;
  EXPECT_EQ(wait_finished(second_id)["state"], "cancelled");
  json moved;
  for (int i = 0; i < 3000 &&
                  (moved = json_of(http_request(port, "GET", "/v1/jobs/" + third_id)))["queue_position"] != 1;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(moved["queue_position"], 1) << moved.dump();
  // An image request waits at most --queue-wait, then hears 429.
  auto image = http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(8, 8));
  EXPECT_EQ(image.status, 429) << image.body;
  // When the place is free, the queued job runs to the end.
  session->close(websocket::close_code::normal);
  EXPECT_EQ(wait_finished(third_id)["state"], "succeeded");
  EXPECT_EQ(
      http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(8, 8)).status,
      200);
}

TEST_F(ServerHardening, LoadIsServedInFullThroughTheQueue) {
  ServerOptions o;
  o.service.max_jobs = 2;
  o.service.queue = 32;
  o.service.queue_wait_seconds = 600;  // a loaded machine may be slow; every request must get through
  start(o);
  const std::string png = png_bytes(48, 32, 3);
  const std::string target = std::string("/v1/image/upscale?model=") + kModel;
  auto round = [&](int clients, int each) {
    std::atomic<int> ok{0};
    std::vector<std::string> failures;
    std::mutex failures_mutex;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&] {
        for (int i = 0; i < each; ++i) {
          auto r = http_request(port, "POST", target, png, {"Content-Type: image/png"});
          if (r.status == 200 && decode(r.body).width == 96) {
            ++ok;
          } else {
            std::lock_guard lock(failures_mutex);
            failures.push_back(std::to_string(r.status) + " " + r.body.substr(0, 200));
          }
        }
      });
    for (auto& t : threads) t.join();
    for (const auto& f : failures) ADD_FAILURE() << f;
    return ok.load();
  };
  EXPECT_EQ(round(4, 4), 16);  // warm-up: pools and allocator arenas settle
  const int64_t before = resident_bytes();
  EXPECT_EQ(round(16, 10), 160);  // every request served, none refused
  const int64_t after = resident_bytes();
  EXPECT_LT(after - before, int64_t(48) << 20) << "resident memory grew from " << before << " to " << after;
  EXPECT_EQ(json_of(http_request(port, "GET", "/healthz"))["queued"], 0);
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, IdleUpscalersAreReleased) {
  ServerOptions o;
  o.service.keep_warm_seconds = 0.3;
  start(o);
  ASSERT_EQ(
      http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(16, 16)).status,
      200);
  size_t warm = 1;
  for (int i = 0; i < 1200 && (warm = server->jobs().warm_upscalers()) > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(warm, 0u);
  // And the next request makes a fresh one.
  EXPECT_EQ(
      http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(16, 16)).status,
      200);
}

TEST_F(ServerHardening, ErrorCodesAreOneVocabularyWithoutServerPaths) {
  start();
  const std::string root_path = fs::canonical(root).string();
  std::set<std::string> documented = {
      "invalid_argument", "not_found",  "invalid_model",   "invalid_media", "unsupported",
      "limit_exceeded",   "io_failure", "backend_failure", "cancelled",     "busy"};
  // At request time.
  auto missing = post_json("/v1/video/upscale", {{"input", "nope.mp4"}});
  EXPECT_EQ(error_code(missing), "not_found");
  EXPECT_EQ(missing.body.find(root_path), std::string::npos) << missing.body;
  std::ofstream(root / "broken.mp4") << std::string(3000, 'x');
  auto broken = post_json("/v1/video/upscale", {{"input", "broken.mp4"}, {"model", kModel}});
  EXPECT_EQ(error_code(broken), "invalid_media") << broken.body;
  EXPECT_EQ(broken.body.find(root_path), std::string::npos) << broken.body;
  // At run time: the output's folder disappears under a running job.
  write_long_clip();
  fs::create_directories(root / "gone");
  auto job =
      post_json("/v1/video/upscale", {{"input", "long.mp4"}, {"output", "gone/out.mp4"}, {"model", kModel}});
  ASSERT_EQ(job.status, 202) << job.body;
  fs::remove_all(root / "gone");
  json st = wait_finished(json_of(job)["id"]);
  EXPECT_EQ(st["state"], "failed") << st.dump();
  EXPECT_TRUE(documented.count(st["error"]["code"].get<std::string>())) << st.dump();
  EXPECT_EQ(st["error"]["code"], "io_failure") << st.dump();
  EXPECT_EQ(st.dump().find(root_path), std::string::npos) << st.dump();
  EXPECT_NE(st["error"]["message"].get<std::string>().find("gone/out.mp4"), std::string::npos) << st.dump();
  expect_healthy_and_clean();
}

TEST_F(ServerHardening, AWorkFolderInUseIsNotCleanedByAnotherServer) {
  ServiceOptions o;
  o.root = root.string();
  o.work_dir = (root / "work").string();
  const fs::path upload = root / "work" / "upload-00000000000000aa.mp4";
  {
    JobManager first(o);
    std::ofstream(upload) << "an upload the first server is receiving";
    JobManager second(o);  // shares the folder: the first one's files are not stale
    EXPECT_TRUE(fs::exists(upload));
  }
  JobManager alone(o);  // nobody else uses it now: what is left is stale
  EXPECT_FALSE(fs::exists(upload));
}

TEST_F(ServerHardening, ClientMessagesNameNoFolderOfTheServer) {
  ServiceOptions o;
  o.root = root.string();
  o.work_dir = (root / "work").string();
  JobManager jobs(o);
  const std::string r = fs::canonical(root).string();
  EXPECT_EQ(jobs.client_message("cannot read " + r + "/clips/a.mp4: gone"), "cannot read clips/a.mp4: gone");
  EXPECT_EQ(jobs.client_message("'" + r + "' is full"), "'the root folder' is full");
  EXPECT_EQ(jobs.client_message(r + "2/x.mp4 is elsewhere"), r + "2/x.mp4 is elsewhere");  // not the root
  EXPECT_EQ(jobs.client_message("writing " + (root / "work").string() + "/0a/output.mp4"),
            "writing 0a/output.mp4");
  const ModelSource files = model_source(*find_model_info(kModel));
  const std::string shown = jobs.client_message("cannot open " + files.files.front());
  EXPECT_EQ(shown.find('/'), std::string::npos) << shown;
  EXPECT_NE(shown.find("upres-compact-x2.param"), std::string::npos) << shown;
}

}  // namespace
}  // namespace upres::test
