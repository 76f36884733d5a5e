#include "backend/backend.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <fmt/format.h>

#include "ops/op.hpp"
#include "upres/error.hpp"

namespace upres {

const char* dtype_name(DType type) {
  switch (type) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::u8: return "u8";
    case DType::u16: return "u16";
  }
  return "?";
}

int dtype_bytes(DType type) {
  switch (type) {
    case DType::f32: return 4;
    case DType::f16:
    case DType::u16: return 2;
    case DType::u8: return 1;
  }
  return 0;
}

const char* device_kind_name(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::host: return "cpu";
    case DeviceKind::gpu: return "gpu";
    case DeviceKind::software_gpu: return "software gpu";
  }
  return "?";
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    desc_ = o.desc_;
    handle_ = std::exchange(o.handle_, nullptr);
    release_ = std::move(o.release_);
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (handle_ && release_) release_(handle_);
  handle_ = nullptr;
  release_ = nullptr;
}

TensorView DeviceBuffer::view() const {
  UPRES_ASSERT(desc_.device == DeviceKind::host && desc_.dtype == DType::f32);
  return {desc_.shape, static_cast<float*>(handle_)};
}

bool Backend::supports(const Node& node, Precision precision) const {
  return node.type != OpType::count && (precision == Precision::f32 || precision == Precision::int8);
}

int64_t Backend::memory_budget() const {
  // Host memory: leave half to the rest of the process (frames, encoder) and the system.
  const int64_t bytes = device().memory_bytes;
  return bytes > 0 ? bytes / 2 : int64_t(1) << 40;
}

std::unique_ptr<FrameExecutor> Backend::compile_frames(const Graph&, const FrameSpec&) {
  return nullptr;
}

DeviceBuffer Backend::allocate(const TensorDesc& desc) {
  UPRES_ASSERT(desc.device == DeviceKind::host);
  const size_t bytes = size_t(std::max<int64_t>(desc.bytes(), 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p)
    throw Error(ErrorCode::limit_exceeded, fmt::format("out of memory allocating {} MiB for a {} tensor",
                                                       bytes >> 20, desc.shape.str()));
  return DeviceBuffer(desc, p, [](void* q) { std::free(q); });
}

std::unique_ptr<Graph> Backend::prepare(const Graph& graph, Shape) const {
  return std::make_unique<Graph>(graph);
}

DeviceInfo host_device(const std::string& backend) {
  DeviceInfo d;
  d.backend = backend;
  d.kind = DeviceKind::host;
  d.name = "CPU";
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      d.name = line.substr(line.find(':') + 2);
      break;
    }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) d.memory_bytes = int64_t(pages) * page;
  d.threads = int(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  return d;
}

Precision precision_from_name(const std::string& name) {
  if (name == "f32") return Precision::f32;
  if (name == "int8") return Precision::int8;
  if (name == "f16") return Precision::f16;
  if (name == "auto") return Precision::automatic;
  throw Error(
      ErrorCode::invalid_argument,
      fmt::format("unknown precision '{}': use f32 (exact), f16 (GPUs: half the memory, within 40 dB), "
                  "int8 (CPUs: faster, needs a calibration) or auto (int8 or f16 where that works and pays)",
                  name));
}

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::f32: return "f32";
    case Precision::int8: return "int8";
    case Precision::automatic: return "auto";
    case Precision::f16: return "f16";
  }
  return "?";
}

int64_t estimate_activation_bytes(const Graph& graph, Shape input) {
  const std::vector<Shape> shapes = graph.infer_shapes(input);
  const std::vector<int> last = graph.last_uses();
  // Each blob is freed after the node that reads it last (or that makes it, when none reads it);
  // listed per node so the walk stays linear in the graph's size.
  const size_t n = graph.nodes.size();
  std::vector<std::vector<int>> freed_after(n);
  auto schedule = [&](int b, size_t made_at) {
    if (b != graph.output_blob && n > 0)
      freed_after[std::min(n - 1, std::max(made_at, size_t(std::max(last[size_t(b)], 0))))].push_back(b);
  };
  schedule(graph.input_blob, 0);
  for (size_t i = 0; i < n; ++i)
    for (int b : graph.nodes[i].outputs) schedule(b, i);
  int64_t current = shapes[size_t(graph.input_blob)].size(), peak = current;
  for (size_t i = 0; i < n; ++i) {
    for (int b : graph.nodes[i].outputs) current += shapes[size_t(b)].size();
    peak = std::max(peak, current);
    for (int b : freed_after[i]) current -= shapes[size_t(b)].size();
  }
  return peak * int64_t(sizeof(float));
}

}  // namespace upres
