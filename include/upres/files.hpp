// upres: how outputs reach their destination.
//
// Every output (an image, a video, a calibration table) is written to a partial file beside its
// destination, ".NAME.upres-partial-XXXXXX", and renamed over the destination only when complete,
// so the destination never holds half a file. The writing process keeps the partial file locked
// (flock) while it lives; a partial file nobody holds a lock on was left by a process that died
// (kill -9, a power cut), and the next run to the same destination removes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace upres {

// A whole regular file. Throws Error(not_found) or Error(io_failure) naming it, Error(invalid_argument)
// for a folder, device, pipe or socket (reading one could block or never end), and
// Error(limit_exceeded) when it is larger than `max_bytes`.
std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes = INT64_MAX);

// Throws as read_file_bytes does unless `path` (after links) is a regular file; for readers that
// open the file themselves.
void require_regular_file(const std::string& path);

// The largest model file read (weights of the biggest published SR networks are a few hundred MB).
constexpr int64_t kMaxModelFileBytes = int64_t(2) << 30;

// True for the name of a partial file (whatever its destination): folder inputs skip them.
bool is_partial_output(const std::string& path);

// Removes the partial files of `destination` whose writers are gone; returns how many.
int remove_stale_partials(const std::string& destination);

// Throws Error(invalid_argument) when `output` exists and is `input` itself (the same file by any
// name, links included): an upscale must never replace its own source.
void refuse_overwriting_input(const std::string& input, const std::string& output);

}  // namespace upres
