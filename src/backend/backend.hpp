// Backends execute a graph. A backend compiles a graph for one input shape into an Executor
// that owns every buffer and kernel it needs, so running it allocates nothing.
//
// Adding a backend: a folder under src/backend/ with a `BackendEntry` (name, factory, devices)
// and one line in src/backend/registry.cpp's table; a program or test can add one at run time
// with `BackendRegistrar` (one line). Everything above this layer (tiling, the video pipeline)
// speaks only to these interfaces.
#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ops/graph.hpp"
#include "upres/backend.hpp"
#include "upres/int8.hpp"
#include "upres/model.hpp"

namespace upres {

// Element types a tensor can have at the boundary. Inside a graph every blob is f32 (int8 is a
// backend's private matter, see model/int8_plan.hpp); u8/u16 let a device backend take 8/10-bit
// video planes in and give them back, so that colour conversion runs where the tensors are.
enum class DType { f32, f16, u8, u16 };
const char* dtype_name(DType type);
int dtype_bytes(DType type);

// How a tensor's values are ordered: planar is channels x height x width, row-major.
enum class Layout { planar };

// What an executor reads or writes, and where it lives.
struct TensorDesc {
  Shape shape;
  DType dtype = DType::f32;
  Layout layout = Layout::planar;
  DeviceKind device = DeviceKind::host;
  int64_t bytes() const { return shape.size() * dtype_bytes(dtype); }
  bool operator==(const TensorDesc& o) const {
    return shape == o.shape && dtype == o.dtype && layout == o.layout && device == o.device;
  }
};

// Memory a backend allocated for a tensor, freed with it. Host buffers give a TensorView; a
// device buffer's handle means something only to its backend.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(TensorDesc desc, void* handle, std::function<void(void*)> release)
      : desc_(desc), handle_(handle), release_(std::move(release)) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }

  const TensorDesc& desc() const { return desc_; }
  void* handle() const { return handle_; }
  bool empty() const { return handle_ == nullptr; }
  // Host f32 buffers only.
  TensorView view() const;
  void reset();

 private:
  TensorDesc desc_;
  void* handle_ = nullptr;
  std::function<void(void*)> release_;
};

// Work handed to a backend; wait() returns when it is finished (and rethrows its failure). The
// host backends run synchronously, so their tickets are already done.
class Ticket {
 public:
  Ticket() = default;
  explicit Ticket(std::function<void()> wait) : wait_(std::move(wait)) {}
  void wait() {
    if (wait_) std::exchange(wait_, nullptr)();
  }

 private:
  std::function<void()> wait_;
};

// Shown a blob's value (plain c x h x w) as soon as a run makes it.
using BlobObserver = std::function<void(int blob, const TensorView& value)>;

class Executor {
 public:
  virtual ~Executor() = default;
  // Starts reading `input` (input_desc()) and writing the graph's output into `output`
  // (output_desc()); both must stay valid until the ticket is waited on.
  virtual Ticket submit(const TensorView& input, const TensorView& output) = 0;
  void run(const TensorView& input, const TensorView& output) { submit(input, output).wait(); }
  virtual TensorDesc input_desc() const = 0;
  virtual TensorDesc output_desc() const = 0;
  Shape output_shape() const { return output_desc().shape; }
  // Bytes of activation memory the executor holds.
  virtual int64_t memory_bytes() const = 0;
  // Runs like run(), showing `observe` each blob that compile() was asked to let be observed.
  virtual void run_observed(const TensorView& input, const TensorView& output,
                            const BlobObserver& observe) = 0;
};

// Video frames at the boundary: 8- to 16-bit planes as decoders give them and encoders take them.
// A backend that runs whole frames where its tensors are (a GPU) takes them in, converts them to
// the model's float RGB, runs the graph and converts the result back, so only the planes cross
// the bus; the arithmetic is media/color.cpp's, which builds these descriptions.
struct PlaneFormat {
  int width = 0, height = 0;
  int depth = 8;             // bits per code; codes over 8 bits take 16-bit little-endian words
  bool rgb = false;          // planes hold R, G and B (else Y, Cb and Cr)
  int plane[3] = {0, 1, 2};  // the plane that holds component c (R, G, B or Y, Cb, Cr)
  int log2_chroma_w = 0, log2_chroma_h = 0;  // chroma subsampling (YUV only)
  // Codes of a component: value = (code - offset) / scale, stored rounded within [0, max_code].
  float luma_offset = 0, luma_scale = 255, chroma_offset = 128, chroma_scale = 255, max_code = 255;
  float kr = 0.2126f, kb = 0.0722f;  // the YCbCr matrix
  float chroma_x = 0, chroma_y = 0;  // where chroma sample 0 sits, in luma samples
  int plane_width(int k) const {
    return k == 0 || rgb ? width : (width + (1 << log2_chroma_w) - 1) >> log2_chroma_w;
  }
  int plane_height(int k) const {
    return k == 0 || rgb ? height : (height + (1 << log2_chroma_h) - 1) >> log2_chroma_h;
  }
  int code_bytes() const { return depth > 8 ? 2 : 1; }
};

// A frame's planes in host memory, rows `linesize` bytes apart.
struct Planes {
  uint8_t* data[3] = {};
  int linesize[3] = {};
};

// One whole frame through the model: what goes around the graph on the way in and out (the
// runtime's padding, residual add and clamp, upscaler.cpp), for a backend to do on its device.
struct FrameSpec {
  PlaneFormat in, out;  // out is in's size times `scale`
  int scale = 1;
  int border = 0;                           // input pixels the network eats a side
  int padded_width = 0, padded_height = 0;  // the graph's input: border, then up to its alignment
  BorderMode border_mode = BorderMode::replicate;
  bool add_input = false;  // the nearest-upscaled input is added to the output
};

// Runs frames from planes to planes; two may be in flight (the upload of one and the download of
// the one before overlap the run of the next). Planes must stay valid until the ticket is waited on.
class FrameExecutor {
 public:
  virtual ~FrameExecutor() = default;
  virtual Ticket submit(const Planes& in, const Planes& out) = 0;
  virtual int64_t memory_bytes() const = 0;
};

// What a backend is made with.
struct BackendConfig {
  int threads = 0;  // host backends: 0 all cores
  int device = 0;   // index among the backend's devices
  // The arithmetic the graph runs at: f32 or f16 (int8 is the calibration below).
  Precision precision = Precision::f32;
  // With a calibration, convolutions the int8 plan picks run in int8 (model/int8_plan.hpp).
  std::shared_ptr<const Int8Calibration> int8;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  virtual DeviceInfo device() const = 0;
  // Whether this backend can run the node at this precision. The default: every op of the op
  // table, at f32 and int8.
  virtual bool supports(const Node& node, Precision precision) const;
  // Bytes of activations this backend can hold at once (the device's memory, less what it keeps
  // for itself); the runtime tiles frames to fit within this and the user's budget.
  virtual int64_t memory_budget() const;
  // The largest single tensor it can hold, counted like the budget (as float32); the runtime
  // tiles so that a frame's largest blob fits too. The default: no limit of its own.
  virtual int64_t max_tensor_bytes() const { return std::numeric_limits<int64_t>::max(); }
  // A buffer for `desc` on this backend's device. The default: 64-byte aligned host memory.
  virtual DeviceBuffer allocate(const TensorDesc& desc);
  // The graph must outlive the executor (weights are read from it, or copied once). `observed`:
  // blobs that run_observed() shows (calibration); they cost a copy each run.
  virtual std::unique_ptr<Executor> compile(const Graph& graph, Shape input,
                                            const std::vector<int>& observed = {}) = 0;
  // An executor that takes whole frames as planes (FrameSpec), or null when this backend keeps its
  // tensors in host memory (the host converts faster than a copy) or cannot take this format.
  virtual std::unique_ptr<FrameExecutor> compile_frames(const Graph& graph, const FrameSpec& spec);
  // The graph this backend prefers to run (after its fusion passes); equal in results.
  virtual std::unique_ptr<Graph> prepare(const Graph& graph, Shape probe) const;
};

// One registered backend.
struct BackendEntry {
  std::string name;
  std::string summary;  // for `upres devices` and error messages: "oneDNN on this machine's cores"
  std::function<std::unique_ptr<Backend>(const BackendConfig&)> make;
  std::function<std::vector<DeviceInfo>()> devices;
};

// Adds a backend under entry.name (replacing one of that name). Thread-safe.
void register_backend(BackendEntry entry);
// For one-line registration at static initialisation: `static BackendRegistrar r{{"name", ...}};`
struct BackendRegistrar {
  explicit BackendRegistrar(BackendEntry entry) { register_backend(std::move(entry)); }
};
// A copy of the entry of that name; throws Error(invalid_argument) listing the known ones.
BackendEntry find_backend(const std::string& name);
std::unique_ptr<Backend> make_backend(const std::string& name, const BackendConfig& config = {});

// The built-in backends (also reachable through the registry).
std::unique_ptr<Backend> make_reference_backend(std::shared_ptr<const Int8Calibration> int8 = nullptr);
std::unique_ptr<Backend> make_cpu_backend(int threads, std::shared_ptr<const Int8Calibration> int8 = nullptr);
BackendEntry reference_backend_entry();
BackendEntry cpu_backend_entry();
#if UPRES_WITH_VULKAN
BackendEntry vulkan_backend_entry();
#endif

// This machine's processor as a device of `backend`.
DeviceInfo host_device(const std::string& backend);

// Runs `graph` in float32 with the reference kernels, showing every blob to `observe` as soon as
// it is made (the input first).
void run_reference_observed(const Graph& graph, const TensorView& input, const TensorView& output,
                            const BlobObserver& observe);

// Peak bytes of live blobs when the graph runs op by op, freeing each blob after its last use.
int64_t estimate_activation_bytes(const Graph& graph, Shape input);

}  // namespace upres
