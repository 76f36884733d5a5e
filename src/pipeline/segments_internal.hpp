// What segments.cpp and segment_join.cpp share: where a segment and its record live.
#pragma once

#include <string>

#include "upres/segments.hpp"

namespace upres {

std::string segment_file(const SegmentManifest& manifest, int index);
std::string segment_record_file(const SegmentManifest& manifest, int index);

// The manifest as the text written to DIR/manifest.json, and back (Error(invalid_argument) naming
// what is wrong; the work folder's files are outside input, fuzz/segment_manifest_fuzz.cpp).
std::string segment_manifest_json(const SegmentManifest& manifest);
SegmentManifest segment_manifest_from_json(const std::string& text, const std::string& work_dir);

}  // namespace upres
