// The service layer the front ends share, without a front end: image jobs (naming, format,
// overwriting, limits before decoding) and the status JSON with its error vocabulary.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <new>

#include "service/status_json.hpp"
#include "test_support.hpp"
#include "upres/files.hpp"
#include "upres/service.hpp"

namespace upres::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class ServiceImages : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/upres-service-XXXXXX";
    root = ::mkdtemp(pattern);
    write_image(make_test_pattern(30, 20), (root / "pic.png").string());
    ServiceOptions o;
    o.root = root.string();
    o.work_dir = (root / "work").string();
    jobs = std::make_unique<JobManager>(o);
  }
  void TearDown() override {
    jobs.reset();
    fs::remove_all(root);
  }
  // The message of the upres::Error `call` throws, with its code checked.
  template <class Call>
  std::string error_of(Call call, ErrorCode code) {
    try {
      call();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), code) << e.what();
      return jobs->client_message(e.what());
    }
    ADD_FAILURE() << "no error";
    return "";
  }
  fs::path root;
  std::unique_ptr<JobManager> jobs;
};

TEST_F(ServiceImages, FileJobsAreNamedAndCheckedBeforeAnyWork) {
  ImageFileJob job = jobs->prepare_image_file("pic.png", std::nullopt, false, {});
  EXPECT_EQ(job.output_name, "pic-upres-x2.png");
  EXPECT_EQ(job.options.format, ImageFormat::png);
  ImageJobOptions x4;
  x4.request.scale = 4;
  EXPECT_EQ(jobs->prepare_image_file("pic.png", std::nullopt, false, x4).output_name, "pic-upres-x4.png");
  EXPECT_EQ(jobs->prepare_image_file("pic.png", "big.webp", false, {}).options.format, ImageFormat::webp);

  EXPECT_NE(error_of([&] { jobs->prepare_image_file("pic.png", "big.gif", false, {}); },
                     ErrorCode::invalid_argument)
                .find(".gif"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { jobs->prepare_image_file("pic.png", "pic.png", true, {}); }, ErrorCode::invalid_argument)
          .find("pic.png is the input itself"),
      std::string::npos);
  EXPECT_NE(error_of([&] { jobs->prepare_image_file("../pic.png", std::nullopt, false, {}); },
                     ErrorCode::invalid_argument)
                .find("'..'"),
            std::string::npos);
  error_of([&] { jobs->prepare_image_file("missing.png", std::nullopt, false, {}); }, ErrorCode::not_found);

  // Run once; a second run to the same name must ask to overwrite.
  ImageJobResult r = jobs->run_image_file(job, jobs->acquire_slot());
  EXPECT_EQ(r.width, 60);
  EXPECT_EQ(r.height, 40);
  EXPECT_EQ(r.model, "upres-compact-x2");
  EXPECT_TRUE(r.encoded.empty());
  EXPECT_EQ(read_image((root / "pic-upres-x2.png").string()).width, 60);
  EXPECT_EQ(error_of([&] { jobs->prepare_image_file("pic.png", std::nullopt, false, {}); },
                     ErrorCode::invalid_argument),
            "output 'pic-upres-x2.png' exists; pass \"overwrite\": true to replace it");
  jobs->prepare_image_file("pic.png", std::nullopt, true, {});
}

TEST_F(ServiceImages, BytesComeBackInTheInputsFormatUnlessAsked) {
  const auto jpeg = encode_image(make_test_pattern(24, 16), ImageFormat::jpeg);
  ImageJobResult same = jobs->run_image_job(jpeg, "a.jpg", {}, jobs->acquire_slot());
  EXPECT_EQ(same.format, ImageFormat::jpeg);
  EXPECT_EQ(probe_image(same.encoded, "reply").format, ImageFormat::jpeg);
  EXPECT_EQ(same.width, 48);

  ImageJobOptions webp;
  webp.format = ImageFormat::webp;
  ImageJobResult other = jobs->run_image_job(jpeg, "a.jpg", webp, jobs->acquire_slot());
  EXPECT_EQ(probe_image(other.encoded, "reply").format, ImageFormat::webp);
  EXPECT_EQ(decode_image(other.encoded, "reply").height, 32);
}

TEST_F(ServiceImages, LimitsAreJudgedFromTheHeader) {
  jobs.reset();
  ServiceOptions o;
  o.root = root.string();
  o.work_dir = (root / "work").string();
  o.max_input_pixels = 1000;
  o.max_output_side = 64;
  jobs = std::make_unique<JobManager>(o);
  // Over the pixel limit: refused before the (unknown) model would be looked for.
  ImageJobOptions unknown_model;
  unknown_model.request.model = "no-such-model";
  const auto big = encode_image(make_test_pattern(40, 30), ImageFormat::png);
  EXPECT_NE(error_of([&] { jobs->run_image_job(big, "big.png", unknown_model, jobs->acquire_slot()); },
                     ErrorCode::limit_exceeded)
                .find("big.png is 40x30, over the service's limit of 1000 pixels"),
            std::string::npos);
  // Within it, but 2x over the output cap: the upscaler refuses it before decoding.
  const auto wide = encode_image(make_test_pattern(40, 10), ImageFormat::png);
  error_of([&] { jobs->run_image_job(wide, "wide.png", {}, jobs->acquire_slot()); },
           ErrorCode::limit_exceeded);
  // Stream frames go through the same door.
  UpscalerLease upscaler = jobs->lease_upscaler({});
  error_of([&] { jobs->decode_for(*upscaler, big, "frame 0"); }, ErrorCode::limit_exceeded);
  const auto small = encode_image(make_test_pattern(20, 10), ImageFormat::png);
  EXPECT_EQ(jobs->decode_for(*upscaler, small, "frame 1").width, 20);
}

TEST(StatusJson, OneErrorVocabulary) {
  EXPECT_STREQ(error_code_for(Error(ErrorCode::not_found, "x")), "not_found");
  EXPECT_STREQ(error_code_for(Error(ErrorCode::busy, "x")), "busy");
  EXPECT_STREQ(error_code_for(std::bad_alloc()), "limit_exceeded");
  EXPECT_STREQ(error_code_for(std::runtime_error("x")), kInternalErrorCode);
  EXPECT_STREQ(kInternalErrorCode, "internal");

  const json object = {{"code", "io_failure"}, {"message", "disk full"}};
  EXPECT_EQ(error_object("io_failure", "disk full"), object);
  EXPECT_EQ(error_json("io_failure", "disk full"), json({{"error", object}}));
  json stream = object;
  stream["type"] = "error";
  EXPECT_EQ(stream_error_json("io_failure", "disk full"), stream);

  JobStatus failed;
  failed.id = "f";
  failed.state = JobState::failed;
  failed.error_code = "io_failure";
  failed.error_message = "disk full";
  EXPECT_EQ(job_status_json(failed)["error"], object);
  EXPECT_FALSE(job_status_json(JobStatus{}).contains("error"));
}

TEST(StatusJson, ProgressEventsCarryTheStatusFields) {
  JobStatus st;
  st.id = "abc";
  st.state = JobState::queued;
  st.queue_position = 2;
  st.progress.frames_done = 3;
  st.progress.frames_total = 10;
  const json event = job_progress_json(st);
  const json status = job_status_json(st);
  for (const char* key : {"id", "state", "queue_position", "cancel_requested"})
    EXPECT_EQ(event[key], status[key]) << key;
  for (const auto& [key, value] : status["progress"].items()) EXPECT_EQ(event[key], value) << key;
  EXPECT_EQ(event["frame"], 3);

  st.state = JobState::running;
  EXPECT_FALSE(job_progress_json(st).contains("queue_position"));  // only while queued
  EXPECT_EQ(job_progress_json(st)["state"], "running");
}

}  // namespace
}  // namespace upres::test
