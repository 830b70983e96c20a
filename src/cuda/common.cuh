// Device helpers shared by the CUDA kernels: element conversions, 16-byte vector loads and stores, reductions,
// and dtype dispatch for launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mlxn/core/dtype.h"
#include "mlxn/core/status.h"

namespace mlxn::cuda {

// ---- element conversions (f32 arithmetic everywhere) ----
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }
// Element i of an f32 / f16 / bf16 array whose dtype is known only at run time.
__device__ __forceinline__ float load_any_f32(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::F16:
      return __half2float(static_cast<const __half*>(p)[i]);
    case DType::BF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// ---- 8 elements through 16-byte accesses (one uint4 for 16-bit types, two for f32); p must be 16-byte aligned ----
template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  if constexpr (sizeof(T) == 4) {
    const float4 a = __ldg(reinterpret_cast<const float4*>(p));
    const float4 b = __ldg(reinterpret_cast<const float4*>(p) + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p));
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = to_f32(e[i]);
  }
}

// Loads through L1 are fine for data read once; streaming outputs use st.global.cs so they do not evict inputs.
template <typename T>
__device__ __forceinline__ void store8(T* p, const float (&v)[8]) {
  if constexpr (sizeof(T) == 4) {
    __stcs(reinterpret_cast<float4*>(p), make_float4(v[0], v[1], v[2], v[3]));
    __stcs(reinterpret_cast<float4*>(p) + 1, make_float4(v[4], v[5], v[6], v[7]));
  } else {
    uint4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) e[i] = from_f32<T>(v[i]);
    __stcs(reinterpret_cast<uint4*>(p), raw);
  }
}

__host__ __device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- asynchronous global -> shared copies (sm_80+) ----
// 16-byte global -> shared copy that bypasses L1 (K / V are streamed once); `full` false writes 16 zero bytes.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool full) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = full ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// ---- bulk copies through the copy engine (sm_90+): one thread moves a whole contiguous range, an mbarrier counts
// the bytes in ----
// The barrier lives in shared memory; init() by one thread, then fence_barrier_init() and a sync of the threads that
// use it. A phase: the issuing thread calls arrive_expect(bytes) and then the copies; waiters spin on the phase's
// parity (0, 1, 0, ... per reuse of the barrier). Addresses and sizes of bulk_copy must be multiples of 16.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define MLXN_HAS_BULK_COPY 1
__device__ __forceinline__ void mbar_init(uint64_t* bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(static_cast<unsigned>(__cvta_generic_to_shared(bar))),
               "r"(count)
               : "memory");
}
__device__ __forceinline__ void fence_barrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;\n" ::: "memory");
}
// A warp's ring of S barriers (count 1 each: the issuing lane's arrive), initialised by lane 0 and fenced; the
// warp is synced afterwards.
template <int S>
__device__ __forceinline__ void mbar_init_ring(uint64_t (&bars)[S], int lane) {
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < S; ++i) mbar_init(&bars[i], 1);
    fence_barrier_init();
  }
  __syncwarp();
}
__device__ __forceinline__ void mbar_arrive_expect(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%0], %1;\n" ::"r"(
                   static_cast<unsigned>(__cvta_generic_to_shared(bar))),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(bar));
  asm volatile(
      "{\n.reg .pred p;\nWAIT_%=:\n"
      "mbarrier.try_wait.parity.acquire.cta.shared::cta.b64 p, [%0], %1;\n"
      "@!p bra WAIT_%=;\n}\n" ::"r"(a),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void bulk_copy(void* smem, const void* gmem, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
          static_cast<unsigned>(__cvta_generic_to_shared(smem))),
      "l"(gmem), "r"(bytes), "r"(static_cast<unsigned>(__cvta_generic_to_shared(bar)))
      : "memory");
}
#endif

// ---- reductions ----
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- dtype dispatch for launchers: runtime DType in, C++ type out ----
template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<T>{}) for f32 / f16 / bf16; any other dtype is an Unsupported status naming the op and argument.
template <typename F>
Status dispatch_float(DType t, std::string_view op, std::string_view arg, F&& f) {
  switch (t) {
    case DType::F32: return f(TypeTag<float>{});
    case DType::F16: return f(TypeTag<__half>{});
    case DType::BF16: return f(TypeTag<__nv_bfloat16>{});
    default: return unsupported(op, arg, " dtype ", t, " has no CUDA kernel");
  }
}

inline Status launch_status(cudaError_t e, std::string_view op) {
  if (e == cudaSuccess) return Status::ok();
  return error(StatusCode::DeviceError, op, "kernel launch failed: ", cudaGetErrorName(e), " (",
               cudaGetErrorString(e), ")");
}

// Experiment knobs for tuning runs on the GPU machine (MLXN_TUNE_*); production code paths never need them.
inline int tune_knob(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// Programmatic dependent launch (sm_90): a kernel launched with programmatic stream serialization may start while
// the previous kernel in the stream finishes; pdl_wait() blocks until that kernel's memory is visible, so it must
// come before the first read of anything an earlier op wrote. Both are no-ops without the launch attribute and
// below sm_90.
__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdl_trigger() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

template <typename... KArgs, typename... Args>
cudaError_t launch_kernel_smem(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                               bool pdl, Args... args) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  // MLXN_PDL=0 turns programmatic dependent launch off everywhere (for comparison runs and tool debugging).
  static const bool pdl_allowed = tune_knob("MLXN_PDL", 1) != 0;
  cfg.numAttrs = pdl && pdl_allowed ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, args...);
}

template <typename... KArgs, typename... Args>
cudaError_t launch_kernel(void (*kernel)(KArgs...), dim3 grid, dim3 block, cudaStream_t stream, bool pdl,
                          Args... args) {
  return launch_kernel_smem(kernel, grid, block, 0, stream, pdl, args...);
}

inline unsigned grid_1d(int64_t work_items, int block, int64_t max_blocks = 1 << 30) {
  int64_t g = (work_items + block - 1) / block;
  if (g < 1) g = 1;
  if (g > max_blocks) g = max_blocks;
  return static_cast<unsigned>(g);
}

}  // namespace mlxn::cuda
