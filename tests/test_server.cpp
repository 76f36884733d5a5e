// `upres serve` against real HTTP on 127.0.0.1: every endpoint and error code, root confinement,
// tokens, admission (429), server-sent events read to the end, cancel, WebSocket streaming, and
// shutdown of the real binary on SIGTERM. Hostile clients and load: test_server_hardening.cpp.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "media_inspect.hpp"
#include "server_fixture.hpp"

namespace upres::test {
namespace {

TEST_F(ServerTest, HealthModelsAndThePage) {
  start();
  auto health = http_request(port, "GET", "/healthz");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(json_of(health)["status"], "ok");
  EXPECT_EQ(json_of(health)["max_jobs"], 2);

  auto models = http_request(port, "GET", "/v1/models");
  ASSERT_EQ(models.status, 200);
  bool found = false;
  json listed = json_of(models);
  for (const json& m : listed["models"])
    if (m["name"] == kModel) found = m["installed"].get<bool>() && m["scale"] == 2;
  EXPECT_TRUE(found) << models.body;

  auto page = http_request(port, "GET", "/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<title>upres</title>"), std::string::npos);
}

TEST_F(ServerTest, ImageUpscaleMatchesTheLibrary) {
  start();
  std::string png = png_bytes(37, 23, 5);
  auto r = http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png,
                        {"Content-Type: image/png"});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "image/png");
  EXPECT_EQ(r.header("x-upres-width"), "74");
  Image got = decode(r.body);
  ASSERT_EQ(got.width, 74);
  ASSERT_EQ(got.height, 46);
  Upscaler direct(Model::load(kModel), {});
  Image want = direct.upscale(decode(png));
  EXPECT_GT(psnr_8bit(got, want), 60.0);  // the same pixels, up to rounding

  // Multipart with fields, and another output format.
  Multipart form;
  form.field("model", kModel);
  form.field("format", "jpeg");
  form.file("file", "a.png", "image/png", png);
  auto m = http_request(port, "POST", "/v1/image/upscale", form.finish(), {form.content_type()});
  ASSERT_EQ(m.status, 200) << m.body;
  EXPECT_EQ(m.header("content-type"), "image/jpeg");
  EXPECT_EQ(decode(m.body).width, 74);
}

TEST_F(ServerTest, ImageErrors) {
  ServerOptions o;
  o.max_image_bytes = 200000;
  o.service.max_output_side = 100;
  start(o);
  auto code = [&](const HttpReply& r) { return json_of(r)["error"]["code"].get<std::string>(); };

  auto empty = http_request(port, "POST", "/v1/image/upscale", "", {"Content-Type: image/png"});
  EXPECT_EQ(empty.status, 400) << empty.body;
  auto junk =
      http_request(port, "POST", "/v1/image/upscale", "not an image at all", {"Content-Type: image/png"});
  EXPECT_EQ(junk.status, 422) << junk.body;
  EXPECT_EQ(code(junk), "invalid_media");
  auto unknown = http_request(port, "POST", "/v1/image/upscale?colour=red", png_bytes(8, 8));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("colour"), std::string::npos);
  auto bad_model = http_request(port, "POST", "/v1/image/upscale?model=no-such-model", png_bytes(8, 8));
  EXPECT_EQ(bad_model.status, 404) << bad_model.body;
  auto bad_scale = http_request(port, "POST", "/v1/image/upscale?scale=two", png_bytes(8, 8));
  EXPECT_EQ(bad_scale.status, 400);
  // 64x48 at 2x is 128 wide, over this server's cap of 100.
  auto too_big =
      http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(64, 48));
  EXPECT_EQ(too_big.status, 422) << too_big.body;
  EXPECT_EQ(code(too_big), "limit_exceeded");
  auto body_cap =
      http_request(port, "POST", "/v1/image/upscale", std::string(300000, 'x'), {"Content-Type: image/png"});
  EXPECT_EQ(body_cap.status, 413) << body_cap.body;
  // The server is fine after all of that.
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
}

// The service on the Vulkan backend (lavapipe here): an image request and a video job.
TEST_F(ServerTest, VulkanBackendServesImagesAndVideoJobs) {
  if (!backend_available("vulkan")) GTEST_SKIP() << "no Vulkan device here";
  ServerOptions o;
  o.service.engine.backend = "vulkan";
  o.service.engine.precision = Precision::f16;
  start(o);
  std::string png = png_bytes(37, 23, 5);
  auto r = http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png,
                        {"Content-Type: image/png"});
  ASSERT_EQ(r.status, 200) << r.body;
  UpscaleOptions cpu;
  cpu.backend = "cpu";
  cpu.precision = Precision::f32;
  EXPECT_GT(psnr_8bit(decode(r.body), Upscaler(Model::load(kModel), cpu).upscale(decode(png))), 40.0);
  auto job = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}, {"frames", 6}});
  ASSERT_EQ(job.status, 202) << job.body;
  json done = wait_finished(json_of(job)["id"]);
  EXPECT_EQ(done["state"], "succeeded") << done.dump();
  EXPECT_EQ(done["result"]["frames"], 6);
}

TEST_F(ServerTest, VideoJobWithEventsStatusAndDownload) {
  start();
  auto r = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}, {"crf", 20}});
  ASSERT_EQ(r.status, 202) << r.body;
  json job = json_of(r);
  std::string id = job["id"];
  EXPECT_EQ(r.header("location"), "/v1/jobs/" + id);
  EXPECT_EQ(job["plan"]["output_width"], 192);
  EXPECT_EQ(job["state"], "running");

  int status = 0;
  auto events = read_event_stream(port, "/v1/jobs/" + id + "/events", &status);
  EXPECT_EQ(status, 200);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().name, "done");
  json done = json::parse(events.back().data);
  EXPECT_EQ(done["state"], "succeeded") << events.back().data;
  EXPECT_EQ(done["result"]["frames"], 24);
  // Progress events come at most every 500 ms. Judged by the job's own clock, not by when they
  // reach this client: on a loaded machine two can arrive in one read. k events need (k - 1) x
  // 0.5 s between them, all within the job's life.
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i].name, "progress");
    json p = json::parse(events[i].data);
    EXPECT_TRUE(p.contains("frame") && p.contains("fps") && p.contains("eta_seconds") && p.contains("phase"));
  }
  const double job_seconds =
      double(done["finished_unix_ms"].get<int64_t>() - done["created_unix_ms"].get<int64_t>()) / 1000.0;
  EXPECT_LE(double(events.size()) - 2, job_seconds / 0.5 + 1) << "progress more often than every 500 ms";
  // Events of a finished job: just the final one.
  auto again = read_event_stream(port, "/v1/jobs/" + id + "/events");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].name, "done");

  auto st = http_request(port, "GET", "/v1/jobs/" + id);
  EXPECT_EQ(json_of(st)["state"], "succeeded");
  auto list = http_request(port, "GET", "/v1/jobs");
  EXPECT_EQ(json_of(list)["jobs"].size(), 1u);

  auto out = http_request(port, "GET", "/v1/jobs/" + id + "/output");
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(out.header("content-type"), "video/mp4");
  EXPECT_NE(out.header("content-disposition").find("clip-upres-x2.mp4"), std::string::npos);
  std::string saved = (root / "downloaded.mp4").string();
  std::ofstream(saved, std::ios::binary) << out.body;
  MediaInfo info = inspect_media(saved);
  EXPECT_EQ(info.video().width, 192);
  EXPECT_EQ(info.video().height, 128);
  EXPECT_EQ(info.count("audio"), 1);

  // Deleting a finished job forgets it and its files.
  auto del = http_request(port, "DELETE", "/v1/jobs/" + id);
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs/" + id).status, 404);
  EXPECT_EQ(files_in_work(), 0u);
}

TEST_F(ServerTest, UploadsAndOutputPaths) {
  start();
  // Multipart upload with an options object and a plain field.
  Multipart form;
  form.field("options", json{{"model", kModel}}.dump());
  form.field("crf", "30");
  form.file("file", "my clip.mkv", "video/x-matroska", read_file_bytes((root / "clip.mp4").string()));
  auto r = http_request(port, "POST", "/v1/video/upscale", form.finish(), {form.content_type()});
  ASSERT_EQ(r.status, 202) << r.body;
  json job = json_of(r);
  EXPECT_EQ(job["input"], "my clip.mkv");
  EXPECT_EQ(job["download_name"], "my clip-upres-x2.mkv");
  EXPECT_EQ(wait_finished(job["id"])["state"], "succeeded");
  auto out = http_request(port, "GET", "/v1/jobs/" + job["id"].get<std::string>() + "/output");
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.header("content-type"), "video/x-matroska");

  // The raw file as the body, options in the query.
  auto raw = http_request(port, "POST",
                          std::string("/v1/video/upscale?filename=c.mp4&model=") + kModel + "&frames=5",
                          read_file_bytes((root / "clip.mp4").string()), {"Content-Type: video/mp4"});
  ASSERT_EQ(raw.status, 202) << raw.body;
  json raw_done = wait_finished(json_of(raw)["id"]);
  EXPECT_EQ(raw_done["result"]["frames"], 5);

  // What `curl -d` sends by default: a JSON object, or form fields, as form-urlencoded.
  const std::string form_type = "Content-Type: application/x-www-form-urlencoded";
  auto curl_json =
      http_request(port, "POST", "/v1/video/upscale",
                   json{{"input", "clip.mp4"}, {"model", kModel}, {"frames", 3}}.dump(), {form_type});
  ASSERT_EQ(curl_json.status, 202) << curl_json.body;
  EXPECT_EQ(wait_finished(json_of(curl_json)["id"])["result"]["frames"], 3);
  auto fields = http_request(port, "POST", "/v1/video/upscale",
                             std::string("input=clip.mp4&model=") + kModel + "&frames=4", {form_type});
  ASSERT_EQ(fields.status, 202) << fields.body;
  EXPECT_EQ(wait_finished(json_of(fields)["id"])["result"]["frames"], 4);

  // An upload that is not a video is named by the client's file name, not the work folder's.
  auto junk = http_request(port, "POST", "/v1/video/upscale?filename=holiday.mp4", std::string(3000, 'x'),
                           {"Content-Type: video/mp4"});
  EXPECT_EQ(junk.status, 422) << junk.body;
  EXPECT_NE(junk.body.find("holiday.mp4"), std::string::npos) << junk.body;
  EXPECT_EQ(junk.body.find((root / "work").string()), std::string::npos) << junk.body;

  // An output path inside the root is written there.
  fs::create_directories(root / "out");
  auto named =
      post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"output", "out/big.mkv"}, {"model", kModel}});
  ASSERT_EQ(named.status, 202) << named.body;
  EXPECT_EQ(json_of(named)["output"], "out/big.mkv");
  EXPECT_EQ(wait_finished(json_of(named)["id"])["state"], "succeeded");
  EXPECT_EQ(inspect_media((root / "out/big.mkv").string()).video().width, 192);
  // It exists now: a second job must ask to overwrite.
  auto exists =
      post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"output", "out/big.mkv"}, {"model", kModel}});
  EXPECT_EQ(exists.status, 400) << exists.body;
}

TEST_F(ServerTest, PathsStayInsideTheRoot) {
  start();
  fs::create_symlink("/etc/hostname", root / "link-out");
  fs::create_directories(root / "sub");
  fs::create_symlink("/tmp", root / "sub/escape");
  auto try_input = [&](const std::string& path) {
    return post_json("/v1/video/upscale", {{"input", path}, {"model", kModel}});
  };
  for (std::string bad : {"../clip.mp4", "sub/../../etc/passwd", "/etc/passwd", "link-out"}) {
    auto r = try_input(bad);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    EXPECT_NE(r.body.find("root"), std::string::npos) << r.body;
  }
  EXPECT_EQ(try_input("missing.mp4").status, 404);
  EXPECT_EQ(try_input((root / "clip.mp4").string()).status, 202);  // absolute but inside: fine
  for (std::string bad : {"../out.mp4", "sub/escape/out.mp4", "/tmp/out.mp4"}) {
    auto r = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"output", bad}, {"model", kModel}});
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
  }
  EXPECT_FALSE(fs::exists("/tmp/out.mp4"));
}

TEST_F(ServerTest, TokenIsRequiredEverywhereButHealthAndPage) {
  ServerOptions o;
  o.token = "s3cret-token";
  start(o);
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
  EXPECT_EQ(http_request(port, "GET", "/").status, 200);
  auto none = http_request(port, "GET", "/v1/models");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.header("www-authenticate"), "Bearer realm=\"upres\"");
  EXPECT_EQ(http_request(port, "GET", "/v1/models", "", {"Authorization: Bearer wrong"}).status, 401);
  EXPECT_EQ(http_request(port, "GET", "/v1/models", "", {"Authorization: Basic czNjcmV0LXRva2Vu"}).status,
            401);
  EXPECT_EQ(http_request(port, "GET", "/v1/models", "", {"Authorization: Bearer s3cret-token"}).status, 200);
  EXPECT_EQ(http_request(port, "GET", "/v1/models?access_token=s3cret-token").status, 200);
  EXPECT_EQ(http_request(port, "POST", "/v1/image/upscale", png_bytes(8, 8)).status, 401);
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs/whatever").status, 401);  // no job ids leak without it
}

TEST_F(ServerTest, RequestErrors) {
  ServerOptions o;
  o.service.max_output_side = 150;  // the clip at 2x is 192 wide
  start(o);
  auto bad_json =
      http_request(port, "POST", "/v1/video/upscale", "{not json", {"Content-Type: application/json"});
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_NE(bad_json.body.find("JSON"), std::string::npos);
  auto unknown = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"colour", "red"}});
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("colour"), std::string::npos);
  auto wrong_type = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"crf", "high"}});
  EXPECT_EQ(wrong_type.status, 400);
  auto no_input = post_json("/v1/video/upscale", json::object());
  EXPECT_EQ(no_input.status, 400);
  // A request cannot raise the server's cap.
  auto over_cap =
      post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}, {"max_size", 100000}});
  EXPECT_EQ(over_cap.status, 422) << over_cap.body;
  EXPECT_EQ(json_of(over_cap)["error"]["code"], "limit_exceeded");
  std::string corrupt(5000, '\x42');
  std::ofstream((root / "corrupt.mp4").string(), std::ios::binary) << corrupt;
  auto bad_media = post_json("/v1/video/upscale", {{"input", "corrupt.mp4"}, {"model", kModel}});
  EXPECT_EQ(bad_media.status, 422) << bad_media.body;
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs/0123456789abcdef").status, 404);
  EXPECT_EQ(http_request(port, "DELETE", "/v1/jobs/0123456789abcdef").status, 404);
  EXPECT_EQ(http_request(port, "GET", "/v1/nothing").status, 404);
  EXPECT_EQ(http_request(port, "GET", "/v1/video/upscale").status, 405);
  EXPECT_EQ(http_request(port, "PUT", "/v1/models").status, 405);
  EXPECT_EQ(http_request(port, "GET", "/v1/stream").status, 426);
  EXPECT_EQ(files_in_work(), 0u);  // refused jobs leave nothing behind
}

TEST_F(ServerTest, WithoutAQueueTooManyJobsGet429AndCancelWorks) {
  ServerOptions o;
  o.service.max_jobs = 1;
  o.service.queue = 0;  // --queue 0: refuse at once when the place is taken
  start(o);
  std::string id = start_slow_job();
  auto second = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}});
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_EQ(second.header("retry-after"), "2");
  auto image = http_request(port, "POST", "/v1/image/upscale", png_bytes(8, 8));
  EXPECT_EQ(image.status, 429);
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs/" + id + "/output").status, 409);  // not ready

  // Concurrent submissions: exactly none get in while the slot is taken.
  std::atomic<int> accepted{0}, refused{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i)
    clients.emplace_back([&] {
      auto r = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}});
      (r.status == 429 ? refused : accepted)++;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(refused, 6);
  EXPECT_EQ(accepted, 0);

  auto del = http_request(port, "DELETE", "/v1/jobs/" + id);
  ASSERT_TRUE(del.status == 200 || del.status == 202) << del.body;
  json st = wait_finished(id);
  EXPECT_EQ(st["state"], "cancelled");
  EXPECT_EQ(http_request(port, "GET", "/v1/jobs/" + id + "/output").status, 409);
  // The place is free again.
  auto next = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}, {"frames", 3}});
  EXPECT_EQ(next.status, 202) << next.body;
  EXPECT_EQ(wait_finished(json_of(next)["id"])["state"], "succeeded");
}

TEST_F(ServerTest, CancelEndsTheEventStream) {
  start();
  std::string id = start_slow_job();
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    http_request(port, "DELETE", "/v1/jobs/" + id);
  });
  auto events = read_event_stream(port, "/v1/jobs/" + id + "/events");
  canceller.join();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().name, "done");
  json done = json::parse(events.back().data);
  EXPECT_EQ(done["state"], "cancelled");
  EXPECT_EQ(done["error"]["code"], "cancelled");
  // The partial output went with it.
  EXPECT_FALSE(fs::exists(root / "work" / id / "output.mp4"));
}

TEST_F(ServerTest, JobsShareAModelAndAFailingJobHarmsNoOther) {
  start();
  // A damaged file: a real clip in mkv with bytes in its middle overwritten.
  TestVideoSpec spec;
  spec.width = 96;
  spec.height = 64;
  spec.frames = 24;
  write_test_video((root / "damaged.mkv").string(), spec);
  std::string bytes = read_file_bytes((root / "damaged.mkv").string());
  for (size_t i = bytes.size() / 3; i < bytes.size() * 2 / 3; i += 7) bytes[i] = char(bytes[i] ^ 0x5a);
  std::ofstream((root / "damaged.mkv").string(), std::ios::binary | std::ios::trunc) << bytes;

  auto good = post_json("/v1/video/upscale", {{"input", "clip.mp4"}, {"model", kModel}});
  auto bad = post_json("/v1/video/upscale", {{"input", "damaged.mkv"}, {"model", kModel}});
  ASSERT_EQ(good.status, 202) << good.body;
  // Either refused up front or run to an error or a shorter video; never a dead server.
  if (bad.status == 202) {
    json st = wait_finished(json_of(bad)["id"]);
    EXPECT_TRUE(st["state"] == "succeeded" || st["state"] == "failed") << st.dump();
  } else {
    EXPECT_EQ(bad.status / 100, 4) << bad.body;
  }
  EXPECT_EQ(wait_finished(json_of(good)["id"])["state"], "succeeded");
  // Both jobs used the one copy of the weights the server holds.
  auto& jobs = server->jobs();
  EXPECT_EQ(jobs.model(kModel).get(), jobs.model(kModel).get());
  EXPECT_EQ(http_request(port, "GET", "/healthz").status, 200);
}

TEST_F(ServerTest, WebSocketStreamsFramesInOrder) {
  namespace websocket = boost::beast::websocket;
  namespace net = boost::asio;
  start();
  auto ws = open_stream();
  boost::beast::flat_buffer buffer;
  auto read_text = [&] {
    buffer.clear();
    ws->read(buffer);
    EXPECT_TRUE(ws->got_text());
    return json::parse(boost::beast::buffers_to_string(buffer.data()));
  };
  json ready = read_text();
  EXPECT_EQ(ready["type"], "ready");
  EXPECT_EQ(ready["scale"], 2);

  Upscaler direct(Model::load(kModel), {});
  // Raw RGB frames of changing content, then PNG frames.
  for (int i = 0; i < 4; ++i) {
    Image frame = make_test_pattern(31, 17, 10 + i);
    std::vector<uint8_t> msg = {'R', 'G', 'B', '8', 31, 0, 0, 0, 17, 0, 0, 0};
    for (int y = 0; y < 17; ++y)
      for (int x = 0; x < 31; ++x)
        for (int c = 0; c < 3; ++c) msg.push_back(uint8_t(std::lround(frame.at(c, y, x) * 255)));
    ws->binary(true);
    ws->write(net::buffer(msg));
    buffer.clear();
    ws->read(buffer);
    ASSERT_TRUE(ws->got_binary());
    std::string reply = boost::beast::buffers_to_string(buffer.data());
    ASSERT_EQ(reply.size(), 12u + 62 * 34 * 3);
    EXPECT_EQ(reply.substr(0, 4), "RGB8");
    EXPECT_EQ(uint8_t(reply[4]), 62);
    EXPECT_EQ(uint8_t(reply[8]), 34);
    // Compare with the library on the same 8-bit input.
    Image quantized(31, 17, 3);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 17; ++y)
        for (int x = 0; x < 31; ++x) quantized.at(c, y, x) = std::lround(frame.at(c, y, x) * 255) / 255.0f;
    Image want = direct.upscale(quantized);
    int worst = 0;
    for (int y = 0; y < 34; ++y)
      for (int x = 0; x < 62; ++x)
        for (int c = 0; c < 3; ++c)
          worst = std::max(worst, std::abs(int(uint8_t(reply[12 + (y * 62 + x) * 3 + c])) -
                                           int(std::lround(std::clamp(want.at(c, y, x), 0.f, 1.f) * 255))));
    EXPECT_LE(worst, 1) << "frame " << i;
  }
  for (int i = 0; i < 2; ++i) {
    std::string png = png_bytes(20 + i, 14, 30 + i);
    ws->binary(true);
    ws->write(net::buffer(png));
    buffer.clear();
    ws->read(buffer);
    Image got = decode(boost::beast::buffers_to_string(buffer.data()));
    EXPECT_EQ(got.width, 2 * (20 + i));  // in order: each reply belongs to the frame just sent
  }
  // A broken frame gets an error message, and the session goes on.
  ws->binary(true);
  ws->write(net::buffer(std::string("RGB8\x05\0\0\0\x05\0\0\0short", 17)));
  json error = read_text();
  EXPECT_EQ(error["type"], "error");
  EXPECT_EQ(error["code"], "invalid_media");
  // Settings change mid-session.
  ws->text(true);
  ws->write(net::buffer(std::string(R"({"scale": 3, "format": "jpeg"})")));
  json ready3 = read_text();
  EXPECT_EQ(ready3["scale"], 3);
  ws->binary(true);
  ws->write(net::buffer(png_bytes(10, 10)));
  buffer.clear();
  ws->read(buffer);
  std::string jpeg = boost::beast::buffers_to_string(buffer.data());
  EXPECT_EQ(jpeg.substr(0, 3), "\xff\xd8\xff");
  EXPECT_EQ(decode(jpeg).width, 30);
  ws->close(websocket::close_code::normal);
}

TEST_F(ServerTest, StreamSessionsTakeASlot) {
  namespace websocket = boost::beast::websocket;
  namespace net = boost::asio;
  ServerOptions o;
  o.service.max_jobs = 1;
  o.service.queue = 0;
  start(o);
  auto ws = open_stream();
  EXPECT_EQ(http_request(port, "POST", "/v1/image/upscale", png_bytes(8, 8)).status, 429);
  ws->close(websocket::close_code::normal);
  boost::beast::flat_buffer buffer;
  boost::beast::error_code ec;
  ws->read(buffer, ec);  // wait for the server's side of the close
  for (int i = 0;
       i < 3000 && http_request(port, "GET", "/healthz").body.find("\"running\":0") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_NE(http_request(port, "GET", "/healthz").body.find("\"running\":0"), std::string::npos);
  EXPECT_EQ(
      http_request(port, "POST", std::string("/v1/image/upscale?model=") + kModel, png_bytes(8, 8)).status,
      200);
}

// The real binary: SIGTERM (or SIGHUP, a closed terminal) cancels the running job, removes its
// partial output and exits 0.
TEST_F(ServerTest, BinaryShutsDownCleanlyOnSigtermAndSighup) {
  write_long_clip();
  fs::create_directories(root / "o");
  for (int sig : {SIGTERM, SIGHUP}) {
    int out_pipe[2];
    ASSERT_EQ(pipe(out_pipe), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(out_pipe[1], 1);
      close(out_pipe[0]);
      std::string root_arg = root.string();
      execl(UPRES_CLI_PATH, "upres", "serve", "--port", "0", "--root", root_arg.c_str(), "--quiet", nullptr);
      _exit(127);
    }
    close(out_pipe[1]);
    FILE* out = fdopen(out_pipe[0], "r");
    char line[512] = {};
    ASSERT_TRUE(fgets(line, sizeof line, out)) << "no banner";
    std::string banner = line;
    size_t at = banner.find("http://127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << banner;
    port = std::stoi(banner.substr(at + 17));
    auto r = post_json("/v1/video/upscale",
                       {{"input", "long.mp4"}, {"output", "o/partial.mp4"}, {"model", kModel}});
    ASSERT_EQ(r.status, 202) << r.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    kill(pid, sig);
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 2400 && !exited; ++i) {  // at once when idle; seconds when loaded
      exited = waitpid(pid, &status, WNOHANG) == pid;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    fclose(out);
    ASSERT_TRUE(exited && WIFEXITED(status)) << "the server did not exit within 15 s";
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_FALSE(fs::exists(root / "o/partial.mp4"));
    for (const auto& e : fs::directory_iterator(root / "o")) ADD_FAILURE() << "left behind: " << e.path();
  }
}

}  // namespace
}  // namespace upres::test
