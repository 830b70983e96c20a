// Host-side entry points of the CUDA backend that are not op launchers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "mlxn/core/kernel_registry.h"
#include "mlxn/core/session.h"

namespace mlxn::cuda {

struct StepBlock {
  uint32_t v[kStepParamSlots];
};
// Writes the step-parameter block in stream order (a one-block kernel that carries the values as its argument).
cudaError_t write_step_params(uint32_t* dst, const StepBlock& block, cudaStream_t stream);

// Adds every kernel variant this build holds to the registry.
void register_kernels(KernelRegistry& r);

}  // namespace mlxn::cuda
