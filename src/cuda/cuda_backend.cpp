// The CUDA backend: device memory, pinned staging for host copies, sessions on a stream, graph capture with
// dependency edges from the hazard tracker (forked streams), and the step-parameter block.
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <mutex>

#include "core/backend.h"
#include "cuda/launch.h"

namespace mlxn::detail {
namespace {

Status cuda_status(cudaError_t e, std::string_view op, std::string_view what) {
  if (e == cudaSuccess) return Status::ok();
  const StatusCode code = e == cudaErrorMemoryAllocation ? StatusCode::OutOfMemory : StatusCode::DeviceError;
  return error(code, op, what, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

#define MLXN_CUDA_TRY(expr, op, what) MLXN_TRY(cuda_status((expr), op, what))

// Host copies larger than this go through two pinned chunks, so the copy of one overlaps the memcpy of the other.
constexpr size_t kStagingChunk = size_t{8} << 20;
constexpr size_t kDirectCopyMax = size_t{1} << 20;

class CudaDevice final : public DeviceImpl {
 public:
  explicit CudaDevice(int ordinal) : ordinal_(ordinal) {}
  ~CudaDevice() override {
    cudaSetDevice(ordinal_);
    for (auto& c : chunks_) {
      if (c.host) cudaFreeHost(c.host);
      if (c.done) cudaEventDestroy(c.done);
    }
    if (copy_stream_) cudaStreamDestroy(copy_stream_);
  }

  Status init() {
    MLXN_CUDA_TRY(cudaSetDevice(ordinal_), "device", "cudaSetDevice");
    cudaDeviceProp p{};
    MLXN_CUDA_TRY(cudaGetDeviceProperties(&p, ordinal_), "device", "cudaGetDeviceProperties");
    props_.backend = Backend::Cuda;
    props_.ordinal = ordinal_;
    props_.name = p.name;
    props_.compute_capability_major = p.major;
    props_.compute_capability_minor = p.minor;
    props_.multiprocessor_count = p.multiProcessorCount;
    props_.total_memory = p.totalGlobalMem;
    props_.l2_cache_bytes = static_cast<size_t>(p.l2CacheSize);
    props_.shared_memory_per_block_optin = p.sharedMemPerBlockOptin;
    props_.max_threads_per_block = p.maxThreadsPerBlock;
    MLXN_CUDA_TRY(cudaStreamCreateWithFlags(&copy_stream_, cudaStreamNonBlocking), "device", "cudaStreamCreate");
    cuda::register_kernels(registry_);
    return Status::ok();
  }

  Status use() { return cuda_status(cudaSetDevice(ordinal_), "device", "cudaSetDevice"); }

  Result<void*> allocate(size_t bytes) override {
    MLXN_TRY(use());
    void* p = nullptr;
    // Padded to 16 bytes: kernels may read the whole aligned word (up to 16 bytes) holding a buffer's last byte.
    cudaError_t e = cudaMalloc(&p, (bytes + 15) & ~size_t{15});
    if (e != cudaSuccess) {
      cudaGetLastError();
      return error(StatusCode::OutOfMemory, "alloc", "cannot allocate ", bytes, " bytes on ", props_.name, ": ",
                   cudaGetErrorString(e));
    }
    return p;
  }
  void deallocate(void* p) noexcept override {
    cudaSetDevice(ordinal_);
    cudaFree(p);
  }

  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    MLXN_TRY(use());
    // Every host copy and fill runs on the device's copy stream and is waited for: the legacy-stream cudaMemcpy /
    // cudaMemset may return before the data lands, and sessions' non-blocking streams do not wait for them.
    if (bytes <= kDirectCopyMax) {
      MLXN_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copy_stream_), "upload", "cudaMemcpyAsync");
      MLXN_CUDA_TRY(cudaStreamSynchronize(copy_stream_), "upload", "cudaStreamSynchronize");
      return Status::ok();
    }
    std::lock_guard<std::mutex> lock(staging_mu_);
    MLXN_TRY(ensure_staging());
    size_t done = 0;
    for (int i = 0; done < bytes; i ^= 1) {
      auto& c = chunks_[static_cast<size_t>(i)];
      const size_t n = std::min(kStagingChunk, bytes - done);
      MLXN_CUDA_TRY(cudaEventSynchronize(c.done), "upload", "staging wait");
      std::memcpy(c.host, static_cast<const char*>(src) + done, n);
      MLXN_CUDA_TRY(cudaMemcpyAsync(static_cast<char*>(dst) + done, c.host, n, cudaMemcpyHostToDevice, copy_stream_),
                    "upload", "cudaMemcpyAsync");
      MLXN_CUDA_TRY(cudaEventRecord(c.done, copy_stream_), "upload", "cudaEventRecord");
      done += n;
    }
    MLXN_CUDA_TRY(cudaStreamSynchronize(copy_stream_), "upload", "cudaStreamSynchronize");
    return Status::ok();
  }

  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    MLXN_TRY(use());
    if (bytes <= kDirectCopyMax) {
      MLXN_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, copy_stream_), "download",
                    "cudaMemcpyAsync");
      MLXN_CUDA_TRY(cudaStreamSynchronize(copy_stream_), "download", "cudaStreamSynchronize");
      return Status::ok();
    }
    std::lock_guard<std::mutex> lock(staging_mu_);
    MLXN_TRY(ensure_staging());
    // Chunk k goes to pinned buffer k % 2; chunk k+1 is in flight while chunk k is copied out.
    const size_t n_chunks = (bytes + kStagingChunk - 1) / kStagingChunk;
    auto issue = [&](size_t k) -> Status {
      auto& c = chunks_[k % 2];
      const size_t off = k * kStagingChunk;
      const size_t n = std::min(kStagingChunk, bytes - off);
      MLXN_CUDA_TRY(cudaMemcpyAsync(c.host, static_cast<const char*>(src) + off, n, cudaMemcpyDeviceToHost,
                                    copy_stream_),
                    "download", "cudaMemcpyAsync");
      MLXN_CUDA_TRY(cudaEventRecord(c.done, copy_stream_), "download", "cudaEventRecord");
      return Status::ok();
    };
    MLXN_TRY(issue(0));
    for (size_t k = 0; k < n_chunks; ++k) {
      auto& c = chunks_[k % 2];
      MLXN_CUDA_TRY(cudaEventSynchronize(c.done), "download", "staging wait");
      if (k + 1 < n_chunks) MLXN_TRY(issue(k + 1));
      const size_t off = k * kStagingChunk;
      std::memcpy(static_cast<char*>(dst) + off, c.host, std::min(kStagingChunk, bytes - off));
    }
    return Status::ok();
  }

  Status fill(void* dst, uint8_t value, size_t bytes) override {
    MLXN_TRY(use());
    MLXN_CUDA_TRY(cudaMemsetAsync(dst, value, bytes, copy_stream_), "fill", "cudaMemsetAsync");
    MLXN_CUDA_TRY(cudaStreamSynchronize(copy_stream_), "fill", "cudaStreamSynchronize");
    return Status::ok();
  }

  Status synchronize() override {
    MLXN_TRY(use());
    MLXN_CUDA_TRY(cudaDeviceSynchronize(), "device", "cudaDeviceSynchronize");
    return Status::ok();
  }

  Result<std::shared_ptr<SessionImpl>> create_session(const SessionOptions& options) override;

  int ordinal() const { return ordinal_; }

 private:
  Status ensure_staging() {
    for (auto& c : chunks_) {
      if (c.host) continue;
      MLXN_CUDA_TRY(cudaMallocHost(&c.host, kStagingChunk), "upload", "cudaMallocHost (pinned staging)");
      MLXN_CUDA_TRY(cudaEventCreateWithFlags(&c.done, cudaEventDisableTiming), "upload", "cudaEventCreate");
    }
    return Status::ok();
  }

  struct Chunk {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };
  int ordinal_;
  cudaStream_t copy_stream_ = nullptr;
  std::mutex staging_mu_;
  std::array<Chunk, 2> chunks_{};
};

class CudaSession;

struct CudaGraph final : Graph::Impl {
  std::shared_ptr<CudaSession> session;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  size_t nodes = 0, edges = 0;
  ~CudaGraph() override {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
  }
  Status replay() override;
  size_t native_nodes() const override { return nodes; }
  size_t native_edges() const override { return edges; }
};

class CudaSession final : public SessionImpl, public std::enable_shared_from_this<CudaSession> {
 public:
  CudaSession(Device device, SessionOptions options, int ordinal)
      : SessionImpl(std::move(device), options), ordinal_(ordinal) {}

  ~CudaSession() override {
    cudaSetDevice(ordinal_);
    if (capturing_) {
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(streams_[0], &g);
      if (g) cudaGraphDestroy(g);
    }
    for (auto s : streams_) cudaStreamDestroy(s);
    for (auto e : op_events_) cudaEventDestroy(e);
    for (auto e : markers_) cudaEventDestroy(e);
    if (fork_) cudaEventDestroy(fork_);
    if (step_dev_) cudaFree(step_dev_);
  }

  Status init() {
    MLXN_CUDA_TRY(cudaSetDevice(ordinal_), "session", "cudaSetDevice");
    streams_.resize(static_cast<size_t>(options_.max_branches));
    for (auto& s : streams_) MLXN_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "session", "cudaStreamCreate");
    MLXN_CUDA_TRY(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming), "session", "cudaEventCreate");
    MLXN_CUDA_TRY(cudaMalloc(&step_dev_, sizeof(uint32_t) * kStepParamSlots), "session", "cudaMalloc (step params)");
    MLXN_CUDA_TRY(cudaMemsetAsync(step_dev_, 0, sizeof(uint32_t) * kStepParamSlots, streams_[0]), "session",
                  "cudaMemsetAsync");
    step_dirty_ = false;
    return Status::ok();
  }

  Status finish() override {
    MLXN_CUDA_TRY(cudaSetDevice(ordinal_), "session", "cudaSetDevice");
    MLXN_CUDA_TRY(cudaStreamSynchronize(streams_[0]), "session", "finish");
    return Status::ok();
  }
  void* stream() const override { return streams_[0]; }
  const uint32_t* step_device() const override { return step_dev_; }

  Result<Marker> mark() override {
    cudaEvent_t e = nullptr;
    MLXN_CUDA_TRY(cudaEventCreate(&e), "session", "cudaEventCreate");
    markers_.push_back(e);
    MLXN_CUDA_TRY(cudaEventRecord(e, streams_[0]), "session", "cudaEventRecord");
    return Marker{static_cast<int>(markers_.size() - 1)};
  }
  Result<double> elapsed_ms(Marker from, Marker to) override {
    if (from.id < 0 || to.id < 0 || static_cast<size_t>(from.id) >= markers_.size() ||
        static_cast<size_t>(to.id) >= markers_.size())
      return invalid_argument("session", "unknown marker");
    MLXN_CUDA_TRY(cudaEventSynchronize(markers_[static_cast<size_t>(to.id)]), "session", "cudaEventSynchronize");
    float ms = 0;
    MLXN_CUDA_TRY(cudaEventElapsedTime(&ms, markers_[static_cast<size_t>(from.id)], markers_[static_cast<size_t>(to.id)]),
                  "session", "cudaEventElapsedTime");
    return static_cast<double>(ms);
  }

  // Uploads the host copy of the step parameters in stream order (one tiny kernel carrying them by value).
  Status flush_steps() {
    if (!step_dirty_) return Status::ok();
    cuda::StepBlock blk;
    std::memcpy(blk.v, step_host_.data(), sizeof(blk.v));
    MLXN_CUDA_TRY(cuda::write_step_params(step_dev_, blk, streams_[0]), "session", "step-parameter upload");
    step_dirty_ = false;
    return Status::ok();
  }

  Status launch_graph(cudaGraphExec_t exec) {
    MLXN_CUDA_TRY(cudaSetDevice(ordinal_), "graph", "cudaSetDevice");
    if (capturing_) return invalid_argument("graph", "replay while the session is capturing");
    MLXN_TRY(flush_steps());
    MLXN_CUDA_TRY(cudaGraphLaunch(exec, streams_[0]), "graph", "cudaGraphLaunch");
    return Status::ok();
  }

 protected:
  Status run_eager(std::string_view name, const OpFn& fn) override {
    MLXN_CUDA_TRY(cudaSetDevice(ordinal_), name, "cudaSetDevice");
    MLXN_TRY(flush_steps());
    MLXN_TRY(fn(context(streams_[0])));
    MLXN_CUDA_TRY(cudaGetLastError(), name, "kernel launch");
    return Status::ok();
  }

  Status capture_start() override {
    MLXN_CUDA_TRY(cudaSetDevice(ordinal_), "session", "cudaSetDevice");
    MLXN_TRY(flush_steps());  // eager work after the capture must see current values; replays flush their own
    op_stream_.clear();
    last_op_.assign(streams_.size(), UINT32_MAX);
    joined_.assign(streams_.size(), false);
    joined_[0] = true;
    next_root_ = 0;
    MLXN_CUDA_TRY(cudaStreamBeginCapture(streams_[0], cudaStreamCaptureModeThreadLocal), "session",
                  "cudaStreamBeginCapture");
    MLXN_CUDA_TRY(cudaEventRecord(fork_, streams_[0]), "session", "cudaEventRecord (fork)");
    return Status::ok();
  }

  Status capture_op(uint32_t index, const std::vector<uint32_t>& deps, std::string_view name,
                    const OpFn& fn) override {
    // Stream choice: continue the stream of the first dependency when it is that stream's latest op (no event
    // needed); otherwise the next stream round-robin, so independent ops land on different branches.
    size_t s = 0;
    if (!deps.empty() && last_op_[op_stream_[deps[0]]] == deps[0]) {
      s = op_stream_[deps[0]];
    } else {
      s = next_root_;
      next_root_ = (next_root_ + 1) % streams_.size();
    }
    cudaStream_t st = streams_[s];
    if (!joined_[s]) {
      MLXN_CUDA_TRY(cudaStreamWaitEvent(st, fork_, 0), name, "cudaStreamWaitEvent (fork)");
      joined_[s] = true;
    }
    for (uint32_t d : deps)
      if (op_stream_[d] != s) MLXN_CUDA_TRY(cudaStreamWaitEvent(st, op_events_[d], 0), name, "cudaStreamWaitEvent");
    MLXN_TRY(fn(context(st)));
    MLXN_CUDA_TRY(cudaGetLastError(), name, "kernel launch during capture");
    while (op_events_.size() <= index) {
      cudaEvent_t e = nullptr;
      MLXN_CUDA_TRY(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), name, "cudaEventCreate");
      op_events_.push_back(e);
    }
    MLXN_CUDA_TRY(cudaEventRecord(op_events_[index], st), name, "cudaEventRecord");
    op_stream_.push_back(s);
    last_op_[s] = index;
    return Status::ok();
  }

  Result<std::shared_ptr<Graph::Impl>> capture_stop(std::vector<std::vector<uint32_t>> deps) override {
    // Join every forked stream back into the origin stream, then end the capture.
    for (size_t s = 1; s < streams_.size(); ++s) {
      if (!joined_[s]) continue;
      if (last_op_[s] == UINT32_MAX) {
        // Forked but never used: join through the fork event itself.
        MLXN_CUDA_TRY(cudaStreamWaitEvent(streams_[0], fork_, 0), "graph", "cudaStreamWaitEvent (join)");
        continue;
      }
      MLXN_CUDA_TRY(cudaStreamWaitEvent(streams_[0], op_events_[last_op_[s]], 0), "graph",
                    "cudaStreamWaitEvent (join)");
    }
    auto g = std::make_shared<CudaGraph>();
    g->session = shared_from_this();
    g->deps = std::move(deps);
    MLXN_CUDA_TRY(cudaStreamEndCapture(streams_[0], &g->graph), "graph", "cudaStreamEndCapture");
    MLXN_CUDA_TRY(cudaGraphGetNodes(g->graph, nullptr, &g->nodes), "graph", "cudaGraphGetNodes");
    MLXN_CUDA_TRY(cudaGraphGetEdges(g->graph, nullptr, nullptr, nullptr, &g->edges), "graph", "cudaGraphGetEdges");
    MLXN_CUDA_TRY(cudaGraphInstantiate(&g->exec, g->graph, 0), "graph", "cudaGraphInstantiate");
    return std::shared_ptr<Graph::Impl>(std::move(g));
  }

  // The scratch is allocated when an op is recorded, which may be inside a capture: cudaMalloc is not a stream
  // operation (the graph only sees the address), so allow it for this call (relaxed capture mode).
  Result<Buffer> allocate_scratch(size_t bytes) override {
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    MLXN_CUDA_TRY(cudaThreadExchangeStreamCaptureMode(&mode), "session", "cudaThreadExchangeStreamCaptureMode");
    auto b = device_.alloc(DType::U8, Shape{static_cast<int64_t>(bytes)});
    cudaThreadExchangeStreamCaptureMode(&mode);
    return b;
  }

  void capture_abort() override {
    cudaGraph_t g = nullptr;
    cudaStreamEndCapture(streams_[0], &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();
  }

 private:
  int ordinal_;
  std::vector<cudaStream_t> streams_;  // [0] is the session's stream; the rest are capture branches
  std::vector<cudaEvent_t> op_events_;
  std::vector<cudaEvent_t> markers_;
  cudaEvent_t fork_ = nullptr;
  uint32_t* step_dev_ = nullptr;
  std::vector<size_t> op_stream_;
  std::vector<uint32_t> last_op_;
  std::vector<bool> joined_;
  size_t next_root_ = 0;
};

Status CudaGraph::replay() { return session->launch_graph(exec); }

Result<std::shared_ptr<SessionImpl>> CudaDevice::create_session(const SessionOptions& options) {
  MLXN_ASSIGN_OR_RETURN(Device dev, Device::open(Backend::Cuda, ordinal_));
  auto s = std::make_shared<CudaSession>(dev, options, ordinal_);
  MLXN_TRY(s->init());
  return std::shared_ptr<SessionImpl>(std::move(s));
}

}  // namespace

Result<std::shared_ptr<DeviceImpl>> make_cuda_device(int ordinal) {
  const int n = cuda_device_count();
  if (n == 0) return unsupported("device", "no CUDA device is visible");
  if (ordinal < 0 || ordinal >= n)
    return invalid_argument("device", "CUDA ordinal ", ordinal, " is not in [0, ", n, ")");
  auto d = std::make_shared<CudaDevice>(ordinal);
  MLXN_TRY(d->init());
  return std::shared_ptr<DeviceImpl>(std::move(d));
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

bool cuda_compiled() { return true; }

}  // namespace mlxn::detail
