#include "cuda/launch.h"

namespace mlxn::cuda {
namespace {

__global__ void write_step_params_kernel(uint32_t* dst, StepBlock block) {
  const unsigned i = threadIdx.x;
  if (i < kStepParamSlots) dst[i] = block.v[i];
}

}  // namespace

cudaError_t write_step_params(uint32_t* dst, const StepBlock& block, cudaStream_t stream) {
  write_step_params_kernel<<<1, kStepParamSlots, 0, stream>>>(dst, block);
  return cudaGetLastError();
}

}  // namespace mlxn::cuda
