#include "mlxn/ops/dequantize.h"

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "mlxn/quant/affine.h"
#include "ops/common.h"
#include "ops/quant_weight.h"

namespace mlxn::ops {
namespace detail {

bool is_ggml_weight_format(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::IQ4_NL:
    case DType::IQ4_XS:
    case DType::MXFP4:
      return true;
    default:
      return false;
  }
}

Result<std::pair<int64_t, int64_t>> check_affine_weight(std::string_view op, const Session& s, const AffineWeight& w) {
  MLXN_TRY(check_buffer(op, "packed", s, w.packed));
  MLXN_TRY(check_buffer(op, "scales", s, w.scales));
  MLXN_TRY(check_buffer(op, "biases", s, w.biases));
  MLXN_TRY(check_contiguous(op, "packed", w.packed));
  MLXN_TRY(check_contiguous(op, "scales", w.scales));
  MLXN_TRY(check_contiguous(op, "biases", w.biases));
  if (w.packed.dtype() != DType::U32 && w.packed.dtype() != DType::I32)
    return invalid_argument(op, "packed has dtype ", w.packed.dtype(), "; expected u32");
  if (w.packed.rank() != 2) return invalid_argument(op, "packed must be [N, K * bits / 32], got ", w.packed.shape());
  if (w.bits != 2 && w.bits != 3 && w.bits != 4 && w.bits != 5 && w.bits != 6 && w.bits != 8)
    return invalid_argument(op, "bits = ", w.bits, "; expected 2, 3, 4, 5, 6 or 8");
  const int64_t N = w.packed.shape()[0];
  if (w.packed.shape()[1] * 32 % w.bits != 0) return invalid_argument(op, "packed row is not a whole number of codes");
  const int64_t K = w.packed.shape()[1] * 32 / w.bits;
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
  for (const Buffer* b : {&w.scales, &w.biases})
    if (reinterpret_cast<uintptr_t>(b->data()) % dtype_size(ts) != 0)
      return invalid_argument(op, "scales and biases must be aligned to their element size");
  return std::make_pair(N, K);
}

std::string dequant_key(kern::QWeight layout, DType tw, int bits, DType to) {
  if (layout == kern::QWeight::Ggml) return KernelRegistry::key({tw, to});
  return "affine" + std::to_string(bits) + "." + std::string(dtype_name(to));
}

namespace {
// Tuning knobs for runs on the GPU machine (the production values are the constants in ops/quant_weight.h).
int64_t knob(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoll(v) > 0 ? std::atoll(v) : fallback;
}
}  // namespace

bool use_qprefill(const Session& s, const kern::QMatmulParams& kp) {
  static const int64_t min_m = knob("MLXN_TUNE_QPREFILL_MIN_M", kQPrefillMinM);
  return s.device().backend() == Backend::Cuda && kp.M >= min_m && kp.N > 0;
}

Status record_qprefill(Session& s, const kern::QMatmulParams& kp, std::span<const MemRange> reads, const Buffer& y) {
  constexpr std::string_view op = "matmul";
  MLXN_TRY(s.device().kernels().require("dequantize", dequant_key(kp.layout, kp.tw, kp.bits, kp.tx)));
  // Chunks of whole 128-row tiles, as many as the scratch bound allows, then balanced so the last is not a sliver.
  constexpr int64_t kAlign = 128;
  const size_t row = static_cast<size_t>(kp.K) * dtype_size(kp.tx);
  static const size_t bound =
      static_cast<size_t>(knob("MLXN_TUNE_QPREFILL_SCRATCH_MIB", static_cast<int64_t>(kQPrefillScratchBytes >> 20)))
      << 20;
  int64_t rows = std::max<int64_t>(kAlign, static_cast<int64_t>(bound / row) / kAlign * kAlign);
  if (rows < kp.N) {
    const int64_t chunks = (kp.N + rows - 1) / rows;
    rows = std::min(rows, ((kp.N + chunks - 1) / chunks + kAlign - 1) / kAlign * kAlign);
  }
  rows = std::min(rows, kp.N);
  MLXN_ASSIGN_OR_RETURN(Buffer scratch, s.scratch(static_cast<size_t>(rows) * row));
  kern::QPrefillParams pp;
  pp.q = kp;
  pp.scratch = scratch.data();
  pp.scratch_bytes = scratch.nbytes();
  pp.chunk_rows = rows;
  // The scratch is shared by every op of the session that uses it: declared as written so automatic hazard
  // tracking orders those ops; in explicit mode, a barrier if an op since the last one used it.
  const MemRange sr = scratch.range();
  s.barrier_between({}, {sr});
  const MemRange writes[2] = {y.range(), sr};
  return s.record(op, reads, writes,
                  [pp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(qmatmul_prefill, pp, ctx); });
}

}  // namespace detail

namespace {

// out as [N, K]: contiguous, or a 2-D view with contiguous rows; fills n, cols, ldo, out, to.
Status check_out(std::string_view op, const Session& s, const Buffer& out, int64_t N, int64_t K,
                 kern::DequantParams& kp) {
  MLXN_TRY(detail::check_buffer(op, "out", s, out));
  MLXN_TRY(detail::check_float(op, "out", out));
  if (out.shape() != Shape{N, K})
    return invalid_argument(op, "out has shape ", out.shape(), ", expected [", N, ", ", K, "]");
  if (out.is_contiguous()) {
    kp.ldo = K;
  } else if (out.strides()[1] == 1 && out.strides()[0] >= K) {
    kp.ldo = out.strides()[0];
  } else {
    return invalid_argument(op, "out must be contiguous or a 2-D view with contiguous rows");
  }
  kp.out = out.data();
  kp.to = out.dtype();
  kp.n = N;
  kp.cols = K;
  return Status::ok();
}

Status record_dequantize(Session& s, std::string_view op, const kern::DequantParams& kp,
                         std::span<const MemRange> reads, const Buffer& out) {
  MLXN_TRY(s.device().kernels().require("dequantize", detail::dequant_key(kp.layout, kp.tw, kp.bits, kp.to)));
  if (kp.n == 0) return Status::ok();
  const MemRange writes[1] = {out.range()};
  return s.record(op, reads, writes, [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(dequantize, kp, ctx); });
}

}  // namespace

Status dequantize(Session& s, const Buffer& w, const Buffer& out) {
  constexpr std::string_view op = "dequantize";
  MLXN_TRY(detail::check_buffer(op, "w", s, w));
  const DType t = w.dtype();
  if (!detail::is_ggml_weight_format(t))
    return unsupported(op, "w has dtype ", t, "; expected a GGML weight format (q4_0 ... q6_K, iq4_nl, iq4_xs, mxfp4)");
  if (w.rank() != 2) return invalid_argument(op, "w must be [N, K], got ", w.shape());
  MLXN_TRY(detail::check_contiguous(op, "w", w));
  const auto& info = dtype_info(t);
  const int64_t N = w.shape()[0], K = w.shape()[1];
  if (K % info.block_elems != 0)
    return invalid_argument(op, "w has K = ", K, ", not a whole number of ", t, " blocks of ", info.block_elems);
  if (t != DType::MXFP4 && reinterpret_cast<uintptr_t>(w.data()) % 2 != 0)
    return invalid_argument(op, "w data is not 2-byte aligned");
  kern::DequantParams kp;
  MLXN_TRY(check_out(op, s, out, N, K, kp));
  if (out.range().overlaps(w.range())) return invalid_argument(op, "out overlaps w");
  kp.layout = kern::QWeight::Ggml;
  kp.w = w.data();
  kp.tw = t;
  kp.row_bytes = K / info.block_elems * info.block_bytes;
  const MemRange reads[1] = {w.range()};
  return record_dequantize(s, op, kp, reads, out);
}

Status dequantize_affine(Session& s, const AffineWeight& w, const Buffer& out) {
  constexpr std::string_view op = "dequantize_affine";
  MLXN_ASSIGN_OR_RETURN(auto nk, detail::check_affine_weight(op, s, w));
  const auto [N, K] = nk;
  kern::DequantParams kp;
  MLXN_TRY(check_out(op, s, out, N, K, kp));
  for (const Buffer* b : {&w.packed, &w.scales, &w.biases})
    if (out.range().overlaps(b->range())) return invalid_argument(op, "out overlaps the weight");
  kp.layout = kern::QWeight::Affine;
  kp.w = w.packed.data();
  kp.scales = w.scales.data();
  kp.biases = w.biases.data();
  kp.ts = w.scales.dtype();
  kp.bits = w.bits;
  kp.group = w.group_size;
  kp.row_bytes = K / 8 * w.bits;
  const MemRange reads[3] = {w.packed.range(), w.scales.range(), w.biases.range()};
  return record_dequantize(s, op, kp, reads, out);
}

}  // namespace mlxn::ops
