#include "mlxn/core/device.h"

#include <map>
#include <mutex>

#include "core/backend.h"
#include "mlxn/core/buffer.h"

namespace mlxn {

std::string_view backend_name(Backend b) { return b == Backend::Cuda ? "cuda" : "cpu"; }

Result<Device> Device::open(Backend backend, int ordinal) {
  if (backend == Backend::Cpu) {
    if (ordinal != 0) return invalid_argument("device", "the CPU has only ordinal 0, not ", ordinal);
    return cpu();
  }
  // One DeviceImpl per CUDA ordinal for the process, so that registries and equality are shared.
  static std::mutex mu;
  static std::map<int, std::shared_ptr<detail::DeviceImpl>> opened;
  std::lock_guard<std::mutex> lock(mu);
  auto it = opened.find(ordinal);
  if (it != opened.end()) return Device(it->second);
  MLXN_ASSIGN_OR_RETURN(auto impl, detail::make_cuda_device(ordinal));
  opened.emplace(ordinal, impl);
  return Device(impl);
}

Device Device::cpu() {
  static const std::shared_ptr<detail::DeviceImpl> impl = detail::make_cpu_device();
  return Device(impl);
}

Device Device::best() {
  if (cuda_device_count() > 0) {
    auto d = open(Backend::Cuda, 0);
    if (d.is_ok()) return d.value();
  }
  return cpu();
}

int Device::cuda_device_count() { return detail::cuda_device_count(); }
bool Device::cuda_compiled() { return detail::cuda_compiled(); }

Backend Device::backend() const { return impl_->props().backend; }
const DeviceProperties& Device::properties() const { return impl_->props(); }
KernelRegistry& Device::kernels() const { return impl_->registry(); }

Result<Buffer> Device::alloc(DType dtype, const Shape& shape) const {
  if (!shape.valid()) return invalid_argument("alloc", "invalid shape ", shape);
  if (is_quantized(dtype) && shape.rank() > 0 && shape.back() % dtype_info(dtype).block_elems != 0)
    return invalid_argument("alloc", "last dimension ", shape.back(), " is not a whole number of ", dtype,
                            " blocks of ", dtype_info(dtype).block_elems);
  MLXN_ASSIGN_OR_RETURN(size_t bytes, dtype_storage_bytes(dtype, shape.numel()));
  auto st = std::make_shared<detail::Storage>();
  st->device = impl_;
  st->bytes = bytes;
  if (bytes > 0) {
    MLXN_ASSIGN_OR_RETURN(st->base, impl_->allocate(bytes));
  }
  return Buffer::from_storage(std::move(st), dtype, shape);
}

Status Device::synchronize() const { return impl_->synchronize(); }

}  // namespace mlxn
