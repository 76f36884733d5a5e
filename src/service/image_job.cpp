// Image jobs: what an image request means, whichever front end carried it.
#include <fmt/format.h>

#include "core/assert.hpp"
#include "upres/error.hpp"
#include "upres/files.hpp"
#include "upres/policy.hpp"
#include "upres/service.hpp"

namespace fs = std::filesystem;

namespace upres {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The header of a picture, refused when it has more pixels than the service takes.
ImageInfo checked_header(const std::vector<uint8_t>& encoded, const std::string& name, int64_t max_pixels) {
  const ImageInfo header = probe_image(encoded, name);
  if (header.width * header.height > max_pixels)
    throw Error(ErrorCode::limit_exceeded, fmt::format("{} is {}x{}, over the service's limit of {} pixels",
                                                       name, header.width, header.height, max_pixels));
  return header;
}

}  // namespace

Image JobManager::decode_for(const Upscaler& upscaler, const std::vector<uint8_t>& encoded,
                             const std::string& name) const {
  const ImageInfo header = checked_header(encoded, name, options_.max_input_pixels);
  upscaler.check_input_size(header.width, header.height);
  return decode_image(encoded, name, options_.max_input_pixels);
}

ImageJobResult JobManager::run_image_job(const std::vector<uint8_t>& encoded, const std::string& name,
                                         const ImageJobOptions& options, const JobSlot& slot) {
  UPRES_ASSERT(slot);
  const auto start = Clock::now();
  // The header is judged before a model is loaded, and the output's size before a pixel is decoded.
  const ImageInfo header = checked_header(encoded, name, options_.max_input_pixels);
  const ImageFormat format = options.format.value_or(header.format);
  UpscalerLease upscaler = lease_upscaler(options.request);
  upscaler->check_input_size(header.width, header.height);
  const Image output = upscaler->upscale(decode_image(encoded, name, options_.max_input_pixels));
  ImageJobResult result;
  result.encoded = encode_image(output, format, options.write);
  result.format = format;
  result.width = output.width;
  result.height = output.height;
  result.model = upscaler->model().name();
  result.seconds = seconds_since(start);
  return result;
}

ImageFileJob JobManager::prepare_image_file(const std::string& input,
                                            const std::optional<std::string>& output, bool overwrite,
                                            const ImageJobOptions& options) const {
  const int scale = options.request.scale > 0 ? options.request.scale : 2;
  const std::string named = output ? *output : upscaled_path_beside(input, scale, ".png");
  ImageFileJob job;
  job.input_name = input;
  job.input = resolve_input(input);
  job.output = resolve_output(named);
  job.options = options;
  job.options.format = image_format_from_path(job.output.string());  // an unknown extension fails here
  check_output_path(job.input.string(), job.output.string(), overwrite, named,
                    OverwriteSwitch::request_field);
  job.output_name = fs::relative(job.output, root_).string();
  return job;
}

ImageJobResult JobManager::run_image_file(const ImageFileJob& job, const JobSlot& slot) {
  const auto start = Clock::now();
  ImageJobResult result = run_image_job(read_file_bytes(job.input.string(), options_.max_image_file_bytes),
                                        job.input_name, job.options, slot);
  write_file_atomically(job.output.string(), result.encoded);
  result.encoded.clear();
  result.encoded.shrink_to_fit();
  result.seconds = seconds_since(start);
  return result;
}

}  // namespace upres
