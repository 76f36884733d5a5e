// What segments.cpp and segment_join.cpp share: where a segment and its record live.
#pragma once

#include <string>

#include "upres/segments.hpp"

namespace upres {

std::string segment_file(const SegmentManifest& manifest, int index);
std::string segment_record_file(const SegmentManifest& manifest, int index);

}  // namespace upres
