// Whole video frames through an Upscaler's model, from decoded planes to the encoder's planes, on
// a backend that converts them where its tensors are (Backend::compile_frames): a GPU then
// receives 8- or 10-bit planes and gives planes back, instead of float images both ways. The
// video pipeline takes this path when it applies and converts on the host otherwise.
#pragma once

#include <memory>

#include "backend/backend.hpp"
#include "upres/upscaler.hpp"

namespace upres {

class FramePath {
 public:
  // Null unless the upscaler's backend converts frames itself, the frame runs whole (untiled)
  // within the memory budget, and `out` is `in` at the model's own scale (no resample after).
  // The path must not outlive the upscaler.
  static std::unique_ptr<FramePath> make(Upscaler& upscaler, const PlaneFormat& in, const PlaneFormat& out);

  // Two frames may be in flight; the planes must stay valid until the ticket is waited on.
  Ticket submit(const Planes& in, const Planes& out) { return executor_->submit(in, out); }

 private:
  explicit FramePath(std::unique_ptr<FrameExecutor> executor) : executor_(std::move(executor)) {}
  std::unique_ptr<FrameExecutor> executor_;
};

}  // namespace upres
