#include "mlxn/ops/matmul.h"

#include <span>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/qmatmul.h"
#include "mlxn/quant/affine.h"
#include "ops/common.h"
#include "ops/quant_weight.h"

namespace mlxn::ops {
namespace {

// Rows of `b` as (count, row stride): contiguous views of any rank, or 2-D views whose rows are contiguous.
Result<std::pair<int64_t, int64_t>> rows_of(std::string_view op, std::string_view arg, const Buffer& b) {
  if (b.rank() < 1) return invalid_argument(op, arg, " must have at least one dimension");
  if (b.is_contiguous()) return std::make_pair(b.shape().rows(), b.shape().back());
  if (b.rank() == 2 && b.strides()[1] == 1 && b.strides()[0] >= b.shape()[1])
    return std::make_pair(b.shape()[0], b.strides()[0]);
  return invalid_argument(op, arg, " must be contiguous or a 2-D view with contiguous rows (shape ", b.shape(), ")");
}

// x, y and K checks shared by the dense and quantized entry points; fills the x / y fields of `kp`. A fusion (quantized
// entry points only) lets y take any float dtype.
template <typename P>
Status check_xy(std::string_view op, Session& s, const Buffer& x, const Buffer& y, int64_t N, int64_t K, P& kp,
                bool fused = false) {
  MLXN_TRY(detail::check_buffer(op, "x", s, x));
  MLXN_TRY(detail::check_buffer(op, "y", s, y));
  MLXN_TRY(detail::check_float(op, "x", x));
  MLXN_TRY(detail::check_float(op, "y", y));
  if (!fused && y.dtype() != x.dtype())
    return unsupported(op, "y has dtype ", y.dtype(), "; expected x's (", x.dtype(), ")");
  MLXN_ASSIGN_OR_RETURN(auto xr, rows_of(op, "x", x));
  MLXN_ASSIGN_OR_RETURN(auto yr, rows_of(op, "y", y));
  if (x.shape().back() != K) return invalid_argument(op, "x has ", x.shape().back(), " columns, w has K = ", K);
  Shape want = x.shape();
  want[want.rank() - 1] = N;
  if (y.shape() != want) return invalid_argument(op, "y has shape ", y.shape(), ", expected ", want);
  if (y.range().overlaps(x.range())) return invalid_argument(op, "y overlaps x");
  kp.x = x.data();
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.M = xr.first;
  kp.ldx = xr.second;
  kp.ldy = yr.second;
  kp.N = N;
  kp.K = K;
  return Status::ok();
}

// The fused forms' checks (after check_xy): fills kp's norm / residual fields and the ranges they read.
Status check_fusion(std::string_view op, Session& s, const Buffer& x, const Buffer& y, const MatmulFusion& f,
                    kern::QMatmulParams& kp, std::vector<MemRange>& reads) {
  kp.ty = y.dtype();
  if (f.empty()) return Status::ok();
  const bool cuda = s.device().backend() == Backend::Cuda;
  if (!kern::qmatmul_fuses(cuda, kp.M, kp.K))
    return unsupported(op, "the fused norm / residual forms need M <= 4 and M * ceil(K / 1024) <= 32 on CUDA (M = ",
                       kp.M, ", K = ", kp.K, "); see matmul_fuses");
  if (f.glu) {  // GGML weights only (matmul_affine refuses it)
    if (cuda && kp.M != 1) return unsupported(op, "the gated form runs at M = 1 on CUDA (M = ", kp.M, ")");
    kp.glu = true;
    kp.act = detail::act_op(f.act);
  }
  if (f.norm.valid()) {
    MLXN_TRY(detail::check_buffer(op, "norm", s, f.norm));
    MLXN_TRY(detail::check_float(op, "norm", f.norm));
    MLXN_TRY(detail::check_contiguous(op, "norm", f.norm));
    if (f.norm.shape() != Shape{kp.K})
      return invalid_argument(op, "norm has shape ", f.norm.shape(), ", expected [", kp.K, "]");
    if (!(f.eps >= 0.0f)) return invalid_argument(op, "eps = ", f.eps, " must be >= 0");
    if (y.range().overlaps(f.norm.range())) return invalid_argument(op, "y overlaps norm");
    kp.norm = f.norm.data();
    kp.tn = f.norm.dtype();
    kp.eps = f.eps;
    kp.norm_offset = f.norm_offset;
    reads.push_back(f.norm.range());
  }
  if (f.residual.valid()) {
    const Buffer& r = f.residual;
    MLXN_TRY(detail::check_buffer(op, "residual", s, r));
    if (r.dtype() != y.dtype() || r.shape() != y.shape())
      return invalid_argument(op, "residual is ", r.dtype(), " ", r.shape(), "; expected y's ", y.dtype(), " ",
                              y.shape());
    MLXN_ASSIGN_OR_RETURN(auto rr, rows_of(op, "residual", r));
    if (rr.second != kp.ldy) return invalid_argument(op, "residual has row stride ", rr.second, ", y ", kp.ldy);
    // Either y itself (each element read, then written, by the same thread) or disjoint from it.
    if (r.data() != y.data() && r.range().overlaps(y.range()))
      return invalid_argument(op, "residual overlaps y without being y");
    if (r.range().overlaps(x.range())) return invalid_argument(op, "residual overlaps x");
    kp.r = r.data();
    reads.push_back(r.range());
  }
  return Status::ok();
}

Status record_qmatmul(Session& s, const kern::QMatmulParams& kp, const std::string& key, std::vector<MemRange> reads,
                      const Buffer& y) {
  constexpr std::string_view op = "matmul";
  MLXN_TRY(s.device().kernels().require("qmatmul", key));
  // Prefill-sized M on CUDA: dequantize W in chunks and multiply on cuBLASLt (src/ops/dequantize.cpp).
  if (detail::use_qprefill(s, kp)) return detail::record_qprefill(s, kp, reads, y);
  // 5 (or 9) <= M <= 16 on CUDA: the int8 tensor-core kernel quantizes x into a workspace first (src/cuda/qgemm_i8.cuh).
  // The scratch is shared by the session's ops: declared as written (automatic hazard tracking orders the users),
  // with a barrier in explicit mode as record_qprefill does.
  if (s.device().backend() == Backend::Cuda && kern::qgemm_i8_takes_m(kp)) {
    MLXN_ASSIGN_OR_RETURN(Buffer ws, s.scratch(static_cast<size_t>(kern::qgemm_i8_workspace_bytes(kp.M, kp.K))));
    kern::QMatmulParams kw = kp;
    kw.workspace = ws.data();
    kw.workspace_bytes = static_cast<int64_t>(ws.nbytes());
    const MemRange sr = ws.range();
    s.barrier_between({}, {sr});
    const MemRange writes[2] = {y.range(), sr};
    return s.record(op, reads, writes, [kw](const ExecContext& ctx) { return MLXN_BACKEND_CALL(qmatmul, kw, ctx); });
  }
  const MemRange writes[1] = {y.range()};
  return s.record(op, reads, writes, [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(qmatmul, kp, ctx); });
}

Status matmul_quantized(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, const MatmulFusion& f) {
  constexpr std::string_view op = "matmul";
  MLXN_TRY(detail::check_contiguous(op, "w", w));
  const DType t = w.dtype();
  switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q2_K:
    case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::IQ4_NL: case DType::IQ4_XS:
    case DType::MXFP4:
      break;
    default: return unsupported(op, "w has block type ", t, ", which has no matmul (it is not a weight format)");
  }
  const auto& info = dtype_info(t);
  const int64_t K = w.shape()[1];
  if (f.glu && w.shape()[0] % 2 != 0)
    return invalid_argument(op, "the gated form needs w of 2N rows (gate, then up), got ", w.shape()[0]);
  const int64_t N = f.glu ? w.shape()[0] / 2 : w.shape()[0];
  if (K % info.block_elems != 0)
    return invalid_argument(op, "w has K = ", K, ", not a whole number of ", t, " blocks of ", info.block_elems);
  if (reinterpret_cast<uintptr_t>(w.data()) % 4 != 0) return invalid_argument(op, "w data is not 4-byte aligned");
  kern::QMatmulParams kp;
  MLXN_TRY(check_xy(op, s, x, y, N, K, kp, !f.empty()));
  if (y.range().overlaps(w.range())) return invalid_argument(op, "y overlaps w");
  std::vector<MemRange> reads{x.range(), w.range()};
  MLXN_TRY(check_fusion(op, s, x, y, f, kp, reads));
  kp.layout = kern::QWeight::Ggml;
  kp.w = w.data();
  kp.tw = t;
  kp.row_bytes = K / info.block_elems * info.block_bytes;
  return record_qmatmul(s, kp, KernelRegistry::key({t, x.dtype()}), std::move(reads), y);
}

}  // namespace

Status matmul_affine(Session& s, const Buffer& x, const AffineWeight& w, const Buffer& y) {
  return matmul_affine(s, x, w, y, MatmulFusion{});
}

Status matmul_affine(Session& s, const Buffer& x, const AffineWeight& w, const Buffer& y, const MatmulFusion& f) {
  constexpr std::string_view op = "matmul_affine";
  if (f.glu) return unsupported(op, "the gated form takes GGML weights (matmul), not MLX affine ones");
  MLXN_TRY(detail::check_buffer(op, "packed", s, w.packed));
  MLXN_TRY(detail::check_buffer(op, "scales", s, w.scales));
  MLXN_TRY(detail::check_buffer(op, "biases", s, w.biases));
  MLXN_TRY(detail::check_contiguous(op, "packed", w.packed));
  MLXN_TRY(detail::check_contiguous(op, "scales", w.scales));
  MLXN_TRY(detail::check_contiguous(op, "biases", w.biases));
  if (w.packed.dtype() != DType::U32 && w.packed.dtype() != DType::I32)
    return invalid_argument(op, "packed has dtype ", w.packed.dtype(), "; expected u32");
  if (w.packed.rank() != 2) return invalid_argument(op, "packed must be [N, K * bits / 32], got ", w.packed.shape());
  if (w.bits != 2 && w.bits != 3 && w.bits != 4 && w.bits != 5 && w.bits != 6 && w.bits != 8)
    return invalid_argument(op, "bits = ", w.bits, "; expected 2, 3, 4, 5, 6 or 8");
  const int64_t N = w.packed.shape()[0];
  const int64_t K = w.packed.shape()[1] * 32 / w.bits;
  if (w.packed.shape()[1] * 32 % w.bits != 0) return invalid_argument(op, "packed row is not a whole number of codes");
  if (w.group_size <= 0 || w.group_size % 32 != 0 || K % w.group_size != 0)
    return invalid_argument(op, "group_size ", w.group_size, " must be a multiple of 32 dividing K = ", K);
  MLXN_TRY(quant::affine_check({w.bits, w.group_size}, N, K));
  const DType ts = w.scales.dtype();
  if (ts != DType::F16 && ts != DType::BF16 && ts != DType::F32)
    return unsupported(op, "scales have dtype ", ts, "; expected f16, bf16 or f32");
  if (w.biases.dtype() != ts) return invalid_argument(op, "biases have dtype ", w.biases.dtype(), ", scales ", ts);
  const Shape gs{N, K / w.group_size};
  if (w.scales.shape() != gs) return invalid_argument(op, "scales have shape ", w.scales.shape(), ", expected ", gs);
  if (w.biases.shape() != gs) return invalid_argument(op, "biases have shape ", w.biases.shape(), ", expected ", gs);
  kern::QMatmulParams kp;
  MLXN_TRY(check_xy(op, s, x, y, N, K, kp, !f.empty()));
  for (const Buffer* b : {&w.packed, &w.scales, &w.biases})
    if (y.range().overlaps(b->range())) return invalid_argument(op, "y overlaps the weight");
  std::vector<MemRange> reads{x.range(), w.packed.range(), w.scales.range(), w.biases.range()};
  MLXN_TRY(check_fusion(op, s, x, y, f, kp, reads));
  kp.layout = kern::QWeight::Affine;
  kp.w = w.packed.data();
  kp.scales = w.scales.data();
  kp.biases = w.biases.data();
  kp.ts = ts;
  kp.bits = w.bits;
  kp.group = w.group_size;
  kp.row_bytes = K / 8 * w.bits;
  return record_qmatmul(s, kp, "affine" + std::to_string(w.bits) + "." + std::string(dtype_name(x.dtype())),
                        std::move(reads), y);
}

namespace {

// Validation and parameters shared by matmul_experts and matmul_experts_glu.
Status prepare_experts(std::string_view op, Session& s, const Buffer& x, const Buffer& w, const Buffer& ids,
                       const Buffer& y, kern::ExpertsParams& kp) {
  MLXN_TRY(detail::check_buffer(op, "x", s, x));
  MLXN_TRY(detail::check_buffer(op, "w", s, w));
  MLXN_TRY(detail::check_buffer(op, "ids", s, ids));
  MLXN_TRY(detail::check_buffer(op, "y", s, y));
  MLXN_TRY(detail::check_float(op, "x", x));
  MLXN_TRY(detail::check_contiguous(op, "w", w));
  MLXN_TRY(detail::check_contiguous(op, "ids", ids));
  MLXN_TRY(detail::check_contiguous(op, "y", y));
  if (w.rank() != 3) return invalid_argument(op, "w must be [E, N, K], got ", w.shape());
  const DType tw = w.dtype();
  const bool dense = tw == DType::F32 || tw == DType::F16 || tw == DType::BF16;
  switch (tw) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0: case DType::Q2_K:
    case DType::Q3_K: case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: case DType::IQ4_NL: case DType::IQ4_XS:
    case DType::MXFP4:
      break;
    default: return unsupported(op, "w has dtype ", tw, "; expected a GGML weight format, f32, f16 or bf16");
  }
  const int64_t E = w.shape()[0], N = w.shape()[1], K = w.shape()[2];
  const auto& info = dtype_info(tw);
  if (!dense && K % info.block_elems != 0)
    return invalid_argument(op, "w has K = ", K, ", not a whole number of ", tw, " blocks of ", info.block_elems);
  if (!dense && reinterpret_cast<uintptr_t>(w.data()) % 4 != 0)
    return invalid_argument(op, "w data is not 4-byte aligned");
  if (ids.dtype() != DType::I32) return invalid_argument(op, "ids have dtype ", ids.dtype(), "; expected i32");
  if (ids.rank() != 2) return invalid_argument(op, "ids must be [T, k], got ", ids.shape());
  const int64_t T = ids.shape()[0], k = ids.shape()[1];
  if (x.rank() == 2) {
    if (x.shape()[0] != T) return invalid_argument(op, "x has ", x.shape()[0], " rows, ids ", T);
    MLXN_ASSIGN_OR_RETURN(auto xr, rows_of(op, "x", x));
    kp.ldx = xr.second;
  } else if (x.rank() == 3) {
    if (x.shape()[0] != T || x.shape()[1] != k)
      return invalid_argument(op, "x has shape ", x.shape(), "; expected [T, k, K] with [T, k] = ", ids.shape());
    MLXN_TRY(detail::check_contiguous(op, "x", x));
    kp.ldx = K;
    kp.x_per_slot = true;
  } else {
    return invalid_argument(op, "x must be [T, K] or [T, k, K], got ", x.shape());
  }
  if (x.shape().back() != K) return invalid_argument(op, "x has ", x.shape().back(), " columns, w has K = ", K);
  if (y.dtype() != x.dtype()) return unsupported(op, "y has dtype ", y.dtype(), "; expected x's (", x.dtype(), ")");
  const Shape want{T, k, N};
  if (y.shape() != want) return invalid_argument(op, "y has shape ", y.shape(), ", expected ", want);
  for (const Buffer* b : {&x, &w, &ids})
    if (y.range().overlaps(b->range())) return invalid_argument(op, "y overlaps an input");
  kp.x = x.data();
  kp.w = w.data();
  kp.ids = static_cast<const int32_t*>(ids.data());
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.tw = tw;
  kp.T = T;
  kp.top_k = k;
  kp.E = E;
  kp.N = N;
  kp.K = K;
  kp.row_bytes = dense ? K * static_cast<int64_t>(dtype_size(tw)) : K / info.block_elems * info.block_bytes;
  // One registry entry for both ops: the gated form runs in the same kernels.
  return s.device().kernels().require("matmul_experts", KernelRegistry::key({tw, x.dtype()}));
}

}  // namespace

Status matmul_experts(Session& s, const Buffer& x, const Buffer& w, const Buffer& ids, const Buffer& y) {
  constexpr std::string_view op = "matmul_experts";
  kern::ExpertsParams kp;
  MLXN_TRY(prepare_experts(op, s, x, w, ids, y, kp));
  const MemRange reads[3] = {x.range(), w.range(), ids.range()};
  const MemRange writes[1] = {y.range()};
  return s.record(op, reads, writes,
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(matmul_experts, kp, ctx); });
}

Status matmul_experts_glu(Session& s, Activation act, const Buffer& x, const Buffer& w_gate, const Buffer& w_up,
                          const Buffer& ids, const Buffer& y) {
  constexpr std::string_view op = "matmul_experts_glu";
  kern::ExpertsParams kp;
  MLXN_TRY(prepare_experts(op, s, x, w_gate, ids, y, kp));
  MLXN_TRY(detail::check_buffer(op, "w_up", s, w_up));
  MLXN_TRY(detail::check_contiguous(op, "w_up", w_up));
  if (w_up.dtype() != w_gate.dtype() || w_up.shape() != w_gate.shape())
    return invalid_argument(op, "w_up is ", w_up.dtype(), " ", w_up.shape(), "; expected w_gate's ", w_gate.dtype(),
                            " ", w_gate.shape());
  if (reinterpret_cast<uintptr_t>(w_up.data()) % 4 != 0) return invalid_argument(op, "w_up data is not 4-byte aligned");
  if (y.range().overlaps(w_up.range())) return invalid_argument(op, "y overlaps w_up");
  kp.w_up = w_up.data();
  kp.act = detail::act_op(act);
  const MemRange reads[4] = {x.range(), w_gate.range(), w_up.range(), ids.range()};
  const MemRange writes[1] = {y.range()};
  return s.record(op, reads, writes,
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(matmul_experts, kp, ctx); });
}

bool matmul_fuses(const Device& d, int64_t m, int64_t k) {
  return kern::qmatmul_fuses(d.backend() == Backend::Cuda, m, k);
}

Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y, const MatmulFusion& f) {
  constexpr std::string_view op = "matmul";
  MLXN_TRY(detail::check_buffer(op, "w", s, w));
  if (w.rank() != 2) return invalid_argument(op, "w must be [N, K], got ", w.shape());
  if (!is_quantized(w.dtype()))
    return f.empty() ? matmul(s, x, w, y)
                     : unsupported(op, "the fused norm / residual forms need a quantized w (got ", w.dtype(), ")");
  return matmul_quantized(s, x, w, y, f);
}

Status matmul(Session& s, const Buffer& x, const Buffer& w, const Buffer& y) {
  constexpr std::string_view op = "matmul";
  MLXN_TRY(detail::check_buffer(op, "w", s, w));
  if (w.rank() != 2) return invalid_argument(op, "w must be [N, K], got ", w.shape());
  if (is_quantized(w.dtype())) return matmul_quantized(s, x, w, y, MatmulFusion{});
  MLXN_TRY(detail::check_buffer(op, "x", s, x));
  MLXN_TRY(detail::check_buffer(op, "y", s, y));
  MLXN_TRY(detail::check_float(op, "x", x));
  MLXN_TRY(detail::check_float(op, "y", y));
  if (y.dtype() != x.dtype()) return unsupported(op, "y has dtype ", y.dtype(), "; expected x's (", x.dtype(), ")");
  MLXN_TRY(detail::check_contiguous(op, "w", w));
  MLXN_TRY(detail::check_float(op, "w", w));
  const int64_t N = w.shape()[0], K = w.shape()[1];
  MLXN_ASSIGN_OR_RETURN(auto xr, rows_of(op, "x", x));
  MLXN_ASSIGN_OR_RETURN(auto yr, rows_of(op, "y", y));
  if (x.shape().back() != K) return invalid_argument(op, "x has ", x.shape().back(), " columns, w has K = ", K);
  Shape want = x.shape();
  want[want.rank() - 1] = N;
  if (y.shape() != want) return invalid_argument(op, "y has shape ", y.shape(), ", expected ", want);
  if (y.range().overlaps(x.range()) || y.range().overlaps(w.range()))
    return invalid_argument(op, "y overlaps an input");

  kern::MatmulParams kp;
  kp.x = x.data();
  kp.w = w.data();
  kp.y = y.data();
  kp.tx = x.dtype();
  kp.tw = w.dtype();
  kp.ty = y.dtype();
  kp.M = xr.first;
  kp.N = N;
  kp.K = K;
  kp.ldx = xr.second;
  kp.ldy = yr.second;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tw, kp.tx})));
  const MemRange reads[2] = {x.range(), w.range()};
  const MemRange writes[1] = {y.range()};
  return s.record(op, reads, writes, [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(matmul, kp, ctx); });
}

}  // namespace mlxn::ops
