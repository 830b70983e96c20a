// Built only when CUDA is off: the CUDA backend's factories say so.
#include "core/backend.h"

namespace mlxn::detail {

Result<std::shared_ptr<DeviceImpl>> make_cuda_device(int) {
  return unsupported("device", "this build of mlx-native has no CUDA backend (configure with -DMLXN_CUDA=ON)");
}
int cuda_device_count() { return 0; }
bool cuda_compiled() { return false; }

}  // namespace mlxn::detail
