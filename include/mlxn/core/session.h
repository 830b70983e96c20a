// Session: the one context every op is recorded into (a CUDA stream on CUDA, an ordered queue on the CPU).
//
// Every op declares the byte ranges it reads and writes. Eager ops run in recording order. When a session is
// captured into a Graph, the declared ranges become the graph's dependency edges, so independent ops run
// concurrently on replay. Two ways to get those edges:
//   - HazardMode::Automatic: RAW, WAR and WAW hazards on overlapping ranges are found for you;
//   - HazardMode::Explicit:  you place barrier() / barrier_between(); ops between two barriers may run concurrently.
// finish() is the one synchronisation point of a forward pass.
//
// Step parameters: a small device-resident block of 32-bit slots that kernels read at run time (position, KV length,
// seed). Setting a slot changes what the next eager op or the next graph replay sees, with no re-capture.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/status.h"

namespace mlxn {

class KernelRegistry;
class Graph;

enum class HazardMode : uint8_t { Automatic, Explicit };

struct SessionOptions {
  HazardMode hazards = HazardMode::Automatic;
  // CUDA: streams a captured graph may fork into (concurrent branches). 1 captures a linear graph.
  int max_branches = 4;
};

inline constexpr int kStepParamSlots = 64;

// What a backend launcher sees: never Session or Buffer, only this and raw pointers.
struct ExecContext {
  Backend backend = Backend::Cpu;
  void* stream = nullptr;                 // cudaStream_t on CUDA
  const DeviceProperties* props = nullptr;
  KernelRegistry* kernels = nullptr;
  const uint32_t* step_params = nullptr;  // device address of the step-parameter block
};

using OpFn = std::function<Status(const ExecContext&)>;

struct SessionStats {
  uint64_t ops = 0;           // ops recorded (eager and captured)
  uint64_t barriers = 0;      // barriers placed (explicit) or implied (automatic: ops that had to wait)
  uint64_t dependencies = 0;  // dependency edges derived for captured ops
};

// A point in a session's stream, for timing (CUDA events; a host clock on the CPU).
struct Marker {
  int id = -1;
};

namespace detail {
class SessionImpl;
}

class Session {
 public:
  static Result<Session> create(const Device& device, SessionOptions options = {});
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  Device device() const;
  HazardMode hazard_mode() const;

  // Records one op: `fn` runs now (eager) or into the graph being captured. `name` is used in error messages.
  Status record(std::string_view name, std::span<const MemRange> reads, std::span<const MemRange> writes,
                const OpFn& fn);
  Status record(std::string_view name, std::initializer_list<MemRange> reads, std::initializer_list<MemRange> writes,
                const OpFn& fn) {
    return record(name, std::span<const MemRange>(reads.begin(), reads.size()),
                  std::span<const MemRange>(writes.begin(), writes.size()), fn);
  }

  // Explicit mode: every op after the barrier depends on every op before it. Ignored in automatic mode.
  void barrier();
  // Explicit mode: a barrier only if the given ranges conflict (RAW, WAR, WAW) with an op since the last barrier.
  void barrier_between(std::span<const MemRange> reads, std::span<const MemRange> writes);
  void barrier_between(std::initializer_list<MemRange> reads, std::initializer_list<MemRange> writes) {
    barrier_between(std::span<const MemRange>(reads.begin(), reads.size()),
                    std::span<const MemRange>(writes.begin(), writes.size()));
  }

  // Waits for everything recorded so far; returns the first device error.
  Status finish();

  // Step parameters (slots 0..kStepParamSlots-1), 32 bits each.
  Status set_step_u32(int slot, uint32_t value);
  Status set_step_i32(int slot, int32_t value);
  Status set_step_f32(int slot, float value);
  uint32_t step_u32(int slot) const;
  // Device address of the block (what kernels read).
  const uint32_t* step_params_device() const;

  // Capture: ops recorded between begin_capture() and end_capture() do not run; they become a Graph.
  Status begin_capture();
  Result<Graph> end_capture();
  bool capturing() const;

  // Timing: a marker in the stream, and the milliseconds between two markers (waits for the later one).
  Result<Marker> mark();
  Result<double> elapsed_ms(Marker from, Marker to);

  // Device workspace of at least `bytes` bytes for ops that need temporary memory (the prefill-sized quantized
  // matmul's dequantized weight chunks). It lives as long as the session (and every graph captured from it: a graph
  // holds its session), so a captured op may keep its address. A larger request allocates a new buffer and keeps
  // the old ones (a recorded graph may still use them); requests of one size share one buffer. Ops that use it
  // declare it as written, so the hazard tracker orders them.
  Result<Buffer> scratch(size_t bytes);

  SessionStats stats() const;
  void* native_stream() const;  // cudaStream_t on CUDA, nullptr on the CPU
  detail::SessionImpl* impl() const { return impl_.get(); }

 private:
  explicit Session(std::shared_ptr<detail::SessionImpl> impl);
  std::shared_ptr<detail::SessionImpl> impl_;
};

// A captured session: replayed as a CUDA graph (one launch) on CUDA, as the recorded op list on the CPU.
class Graph {
 public:
  // Enqueues one replay on the session's stream, after uploading the current step parameters.
  Status replay();
  size_t op_count() const;
  // For each op, the earlier ops it waits for (after dropping edges implied by others).
  const std::vector<std::vector<uint32_t>>& dependencies() const;
  // Ops that wait for no other op (roots of the graph).
  size_t root_count() const;
  // Nodes and edges of the native CUDA graph (0 on the CPU).
  size_t native_node_count() const;
  size_t native_edge_count() const;

  struct Impl;
  explicit Graph(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mlxn
