// Dense GEMM through cuBLASLt for prefill-sized products (y = x W^T with x, W, y of one 16-bit dtype, or f32).
// One handle per device, a workspace per stream (graph branches may run GEMMs concurrently) and the chosen
// algorithm cached per shape.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <tuple>

#include "cuda/blas.h"

namespace mlxn::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

Status lt_status(cublasStatus_t s, std::string_view what) {
  if (s == CUBLAS_STATUS_SUCCESS) return Status::ok();
  return error(StatusCode::DeviceError, "matmul", what, " failed: cuBLAS status ", static_cast<int>(s));
}

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct State {
  std::mutex mu;
  std::map<int, cublasLtHandle_t> handles;                                // per device ordinal
  std::map<cudaStream_t, void*> workspaces;                               // per stream
  std::map<std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, uint32_t>, Plan> plans;
};

State& state() {
  static State* s = new State();  // never destroyed: CUDA may be torn down before static destructors run
  return *s;
}

// Largest power of two (up to 256) dividing the address: cuBLASLt's heuristic otherwise assumes 256-byte aligned
// matrices and may pick a kernel that rejects a view or a chunk that starts elsewhere.
uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t al = 256;
  while (al > 1 && a % al != 0) al /= 2;
  return al;
}

cudaDataType_t lt_type(DType t) {
  return t == DType::BF16 ? CUDA_R_16BF : t == DType::F16 ? CUDA_R_16F : CUDA_R_32F;
}

}  // namespace

bool blas_supports(const kern::MatmulParams& p) {
  return p.tx == p.tw && p.ty == p.tx &&
         (p.tx == DType::BF16 || p.tx == DType::F16 || p.tx == DType::F32);
}

Status blas_matmul(const kern::MatmulParams& p, const ExecContext& ctx) {
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  State& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return error(StatusCode::DeviceError, "matmul", "cudaGetDevice failed");
  auto& handle = st.handles[dev];
  if (!handle) MLXN_TRY(lt_status(cublasLtCreate(&handle), "cublasLtCreate"));
  void*& ws = st.workspaces[stream];
  if (!ws) {
    // The first GEMM on a stream may be recorded inside a graph capture: cudaMalloc is not a stream operation (the
    // graph keeps the address), so allow it for this call.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    cudaThreadExchangeStreamCaptureMode(&mode);
    const cudaError_t e = cudaMalloc(&ws, kWorkspaceBytes);
    cudaThreadExchangeStreamCaptureMode(&mode);
    if (e != cudaSuccess) {
      ws = nullptr;
      cudaGetLastError();
      return error(StatusCode::OutOfMemory, "matmul", "cannot allocate the cuBLASLt workspace");
    }
  }
  const uint32_t align_x = alignment(p.x), align_w = alignment(p.w), align_y = alignment(p.y);
  const uint32_t aligns = align_x | align_w << 9 | align_y << 18;
  const auto key = std::make_tuple(dev, static_cast<int>(p.tx), p.M, p.N, p.K, p.ldx, p.ldy, aligns);
  auto it = st.plans.find(key);
  if (it == st.plans.end()) {
    // Column-major view: y^T [N, M] (ld ldy) = op(W)[N, K] * x^T [K, M], W as a K x N column-major matrix (ld K)
    // taken transposed, x^T as K x M (ld ldx).
    Plan plan;
    const cudaDataType_t t = lt_type(p.tx);
    const cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    MLXN_TRY(lt_status(cublasLtMatmulDescCreate(&plan.op, compute, CUDA_R_32F), "cublasLtMatmulDescCreate"));
    const cublasOperation_t trans = CUBLAS_OP_T, no = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans));
    cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &no, sizeof(no));
    MLXN_TRY(lt_status(cublasLtMatrixLayoutCreate(&plan.a, t, static_cast<uint64_t>(p.K), static_cast<uint64_t>(p.N), p.K),
                       "cublasLtMatrixLayoutCreate"));
    MLXN_TRY(lt_status(cublasLtMatrixLayoutCreate(&plan.b, t, static_cast<uint64_t>(p.K), static_cast<uint64_t>(p.M), p.ldx),
                       "cublasLtMatrixLayoutCreate"));
    MLXN_TRY(lt_status(cublasLtMatrixLayoutCreate(&plan.c, t, static_cast<uint64_t>(p.N), static_cast<uint64_t>(p.M), p.ldy),
                       "cublasLtMatrixLayoutCreate"));
    cublasLtMatmulPreference_t pref = nullptr;
    MLXN_TRY(lt_status(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"));
    size_t ws_bytes = kWorkspaceBytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes));
    // A is W, B is x, C and D are y.
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align_w, sizeof(align_w));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align_x, sizeof(align_x));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_y, sizeof(align_y));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_y, sizeof(align_y));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    const cublasStatus_t hs =
        cublasLtMatmulAlgoGetHeuristic(handle, plan.op, plan.a, plan.b, plan.c, plan.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (hs != CUBLAS_STATUS_SUCCESS || found == 0)
      return unsupported("matmul", "cuBLASLt has no algorithm for M=", p.M, " N=", p.N, " K=", p.K, " ", p.tx);
    plan.algo = result.algo;
    it = st.plans.emplace(key, plan).first;
  }
  const Plan& plan = it->second;
  const float alpha = 1.0f, beta = 0.0f;
  return lt_status(cublasLtMatmul(handle, plan.op, &alpha, p.w, plan.a, p.x, plan.b, &beta, p.y, plan.c, p.y, plan.c,
                                  &plan.algo, ws, kWorkspaceBytes, stream),
                   "cublasLtMatmul");
}

}  // namespace mlxn::cuda
