// The line between the backend-neutral core and a backend (CPU, CUDA). Internal.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/hazard.h"
#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/kernel_registry.h"
#include "mlxn/core/session.h"

namespace mlxn {

// Graph implementations (CPU: the op list; CUDA: an instantiated cudaGraphExec_t).
struct Graph::Impl {
  virtual ~Impl() = default;
  virtual Status replay() = 0;
  virtual size_t native_nodes() const { return 0; }
  virtual size_t native_edges() const { return 0; }
  std::vector<std::vector<uint32_t>> deps;
};

}  // namespace mlxn

namespace mlxn::detail {

using GraphImplBase = Graph::Impl;
class SessionImpl;

class DeviceImpl {
 public:
  virtual ~DeviceImpl() = default;
  const DeviceProperties& props() const { return props_; }
  KernelRegistry& registry() { return registry_; }

  virtual Result<void*> allocate(size_t bytes) = 0;
  virtual void deallocate(void* p) noexcept = 0;
  // Blocking copies between host memory and this device's memory.
  virtual Status copy_to_device(void* dst, const void* src, size_t bytes) = 0;
  virtual Status copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual Status fill(void* dst, uint8_t value, size_t bytes) = 0;
  virtual Status synchronize() = 0;
  virtual Result<std::shared_ptr<SessionImpl>> create_session(const SessionOptions& options) = 0;

 protected:
  DeviceProperties props_;
  KernelRegistry registry_;
};

class SessionImpl {
 public:
  SessionImpl(Device device, SessionOptions options);
  virtual ~SessionImpl() = default;

  Status record(std::string_view name, std::span<const MemRange> reads, std::span<const MemRange> writes,
                const OpFn& fn);
  void barrier();
  void barrier_between(std::span<const MemRange> reads, std::span<const MemRange> writes);
  Status begin_capture();
  Result<std::shared_ptr<GraphImplBase>> end_capture();

  Status set_step(int slot, uint32_t bits);
  uint32_t step(int slot) const { return step_host_[static_cast<size_t>(slot)]; }

  Result<Buffer> scratch(size_t bytes);

  virtual Status finish() = 0;
  virtual void* stream() const = 0;
  virtual const uint32_t* step_device() const = 0;
  virtual Result<Marker> mark() = 0;
  virtual Result<double> elapsed_ms(Marker from, Marker to) = 0;

  const Device& device() const { return device_; }
  const SessionOptions& options() const { return options_; }
  SessionStats stats() const { return stats_; }
  bool capturing() const { return capturing_; }

 protected:
  // Backend hooks.
  virtual Status run_eager(std::string_view name, const OpFn& fn) = 0;
  virtual Status capture_start() = 0;
  virtual Status capture_op(uint32_t index, const std::vector<uint32_t>& deps, std::string_view name,
                            const OpFn& fn) = 0;
  virtual Result<std::shared_ptr<GraphImplBase>> capture_stop(std::vector<std::vector<uint32_t>> deps) = 0;
  virtual void capture_abort() = 0;
  // Device memory for scratch(); CUDA overrides it to allow the allocation while a capture is in progress.
  virtual Result<Buffer> allocate_scratch(size_t bytes) {
    return device_.alloc(DType::U8, Shape{static_cast<int64_t>(bytes)});
  }

  ExecContext context(void* stream) const;

  Device device_;
  SessionOptions options_;
  std::array<uint32_t, kStepParamSlots> step_host_{};
  bool step_dirty_ = true;
  bool capturing_ = false;
  Status capture_status_;  // first error while capturing: end_capture reports it
  SessionStats stats_;

 private:
  std::vector<uint32_t> explicit_deps();
  std::vector<std::vector<uint32_t>> deps_;  // per captured op
  HazardTracker tracker_;
  // Explicit mode: ops of the group since the last barrier, and of the group before it.
  std::vector<uint32_t> group_, prev_group_;
  std::vector<std::pair<MemRange, bool>> group_ranges_;  // (range, is_write) of the current group
  std::vector<Buffer> scratch_;                          // every scratch buffer handed out; the last is the largest
};

// Backend factories.
std::shared_ptr<DeviceImpl> make_cpu_device();
Result<std::shared_ptr<DeviceImpl>> make_cuda_device(int ordinal);  // Unsupported in CPU-only builds
int cuda_device_count();
bool cuda_compiled();

}  // namespace mlxn::detail
