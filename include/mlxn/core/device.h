// Device: an opened backend (the CPU, or one CUDA GPU) that allocates buffers and runs sessions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"

namespace mlxn {

enum class Backend : uint8_t { Cpu, Cuda };
std::string_view backend_name(Backend b);

struct DeviceProperties {
  Backend backend = Backend::Cpu;
  int ordinal = 0;
  std::string name;
  int compute_capability_major = 0;  // CUDA only
  int compute_capability_minor = 0;
  int multiprocessor_count = 0;      // SMs on CUDA, hardware threads on the CPU
  size_t total_memory = 0;           // bytes
  size_t l2_cache_bytes = 0;
  size_t shared_memory_per_block_optin = 0;
  int max_threads_per_block = 0;
};

class Buffer;
class KernelRegistry;
namespace detail {
class DeviceImpl;
}

class Device {
 public:
  // Opens the CPU or the CUDA device with that ordinal. CUDA in a build without CUDA, or with no such device, is
  // an Unsupported / InvalidArgument status.
  static Result<Device> open(Backend backend, int ordinal = 0);
  static Device cpu();
  // The first CUDA device if this build has CUDA and a device is present, else the CPU.
  static Device best();
  // Number of CUDA devices visible (0 in a CPU-only build or on a machine without a GPU).
  static int cuda_device_count();
  static bool cuda_compiled();

  Backend backend() const;
  const DeviceProperties& properties() const;
  KernelRegistry& kernels() const;

  // Uninitialised device memory for `shape` elements of `dtype` (block types: whole blocks in the last dimension).
  Result<Buffer> alloc(DType dtype, const Shape& shape) const;
  // Waits for all work on the device (every session) to finish.
  Status synchronize() const;

  bool operator==(const Device& o) const { return impl_ == o.impl_; }
  bool operator!=(const Device& o) const { return impl_ != o.impl_; }
  detail::DeviceImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<detail::DeviceImpl>& shared_impl() const { return impl_; }
  explicit Device(std::shared_ptr<detail::DeviceImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<detail::DeviceImpl> impl_;
};

}  // namespace mlxn
