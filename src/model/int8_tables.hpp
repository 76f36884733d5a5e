// The int8 calibration tables shipped for zoo models (models/int8/*.json, compiled in).
#pragma once

#include <memory>
#include <string>

#include "upres/int8.hpp"

namespace upres {

// The shipped table for a zoo model's name; nullptr when there is none.
std::shared_ptr<const Int8Calibration> shipped_int8_calibration(const std::string& model_name);

}  // namespace upres
