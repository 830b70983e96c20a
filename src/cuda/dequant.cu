// Launchers of the row dequantizer (GGML blocks and MLX affine to f32 / f16 / bf16) and of the prefill-sized
// quantized matmul built on it: W dequantized chunk by chunk into a scratch buffer in x's dtype, each chunk
// multiplied by cuBLASLt (tensor cores at the dense GEMM rate; the dequantize pass costs about one read of W plus a
// write and a read of the chunk, small next to the GEMM once M is in the hundreds).
#include <algorithm>
#include <string>

#include "cuda/blas.h"
#include "cuda/kernel_table.h"
#include "kernels/dequantize.h"

namespace mlxn::cuda {
namespace {

using DequantFn = Status (*)(const kern::DequantParams&, const ExecContext&);

std::string dequant_key(kern::QWeight layout, DType tw, int bits, DType to) {
  if (layout == kern::QWeight::Ggml) return KernelRegistry::key({tw, to});
  return "affine" + std::to_string(bits) + "." + std::string(dtype_name(to));
}

Result<DequantFn> find_dequant(const std::string& key, const ExecContext& ctx) {
  DequantFn fn = kernel_table().find<DequantFn>("dequantize", key);
  if (fn == nullptr) {
    MLXN_TRY(ctx.kernels->require("dequantize", key));
    return unsupported("dequantize", "no CUDA kernel for ", key);
  }
  return fn;
}

}  // namespace

Status dequantize(const kern::DequantParams& p, const ExecContext& ctx) {
  MLXN_ASSIGN_OR_RETURN(DequantFn fn, find_dequant(dequant_key(p.layout, p.tw, p.bits, p.to), ctx));
  return fn(p, ctx);
}

Status qmatmul_prefill(const kern::QPrefillParams& pp, const ExecContext& ctx) {
  const kern::QMatmulParams& q = pp.q;
  if (q.M == 0 || q.N == 0) return Status::ok();
  if (pp.chunk_rows <= 0 || pp.scratch == nullptr) return invalid_argument("matmul", "prefill scratch missing");
  const size_t es = dtype_size(q.tx);
  if (static_cast<size_t>(pp.chunk_rows) * static_cast<size_t>(q.K) * es > pp.scratch_bytes)
    return invalid_argument("matmul", "prefill scratch of ", pp.scratch_bytes, " bytes holds fewer than ",
                            pp.chunk_rows, " rows");
  MLXN_ASSIGN_OR_RETURN(DequantFn fn, find_dequant(dequant_key(q.layout, q.tw, q.bits, q.tx), ctx));
  const size_t ts = q.layout == kern::QWeight::Affine ? dtype_size(q.ts) : 0;
  const int64_t groups = q.layout == kern::QWeight::Affine ? q.K / q.group : 0;
  for (int64_t n0 = 0; n0 < q.N; n0 += pp.chunk_rows) {
    const int64_t rows = std::min(pp.chunk_rows, q.N - n0);
    kern::DequantParams d;
    d.layout = q.layout;
    d.w = static_cast<const uint8_t*>(q.w) + n0 * q.row_bytes;
    if (q.layout == kern::QWeight::Affine) {
      d.scales = static_cast<const uint8_t*>(q.scales) + static_cast<size_t>(n0 * groups) * ts;
      d.biases = static_cast<const uint8_t*>(q.biases) + static_cast<size_t>(n0 * groups) * ts;
    }
    d.out = pp.scratch;
    d.tw = q.tw;
    d.ts = q.ts;
    d.to = q.tx;
    d.bits = q.bits;
    d.group = q.group;
    d.n = rows;
    d.cols = q.K;
    d.row_bytes = q.row_bytes;
    d.ldo = q.K;
    MLXN_TRY(fn(d, ctx));
    kern::MatmulParams m;
    m.x = q.x;
    m.w = pp.scratch;
    m.y = static_cast<uint8_t*>(q.y) + static_cast<size_t>(n0) * es;
    m.tx = m.tw = m.ty = q.tx;
    m.M = q.M;
    m.N = rows;
    m.K = q.K;
    m.ldx = q.ldx;
    m.ldy = q.ldy;
    MLXN_TRY(blas_matmul(m, ctx));
  }
  return Status::ok();
}

}  // namespace mlxn::cuda
