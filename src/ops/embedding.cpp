#include "mlxn/ops/embedding.h"

#include <cmath>

#include "kernels/dequantize.h"
#include "kernels/embedding.h"
#include "ops/common.h"
#include "ops/quant_weight.h"

namespace mlxn::ops {

Status embedding(Session& s, const Buffer& table, const Buffer& ids, const Buffer& out, const EmbeddingParams& p) {
  constexpr std::string_view op = "embedding";
  MLXN_TRY(detail::check_buffer(op, "table", s, table));
  MLXN_TRY(detail::check_buffer(op, "ids", s, ids));
  MLXN_TRY(detail::check_buffer(op, "out", s, out));
  if (!is_compute_float(table.dtype()) && !is_quantized(table.dtype()))
    return unsupported(op, "table has dtype ", table.dtype(), "; expected f32, f16, bf16 or a GGML block type");
  MLXN_TRY(detail::check_float(op, "out", out));
  MLXN_TRY(detail::check_contiguous(op, "table", table));
  MLXN_TRY(detail::check_contiguous(op, "ids", ids));
  MLXN_TRY(detail::check_contiguous(op, "out", out));
  if (table.rank() != 2) return invalid_argument(op, "table has shape ", table.shape(), "; expected [vocab, dim]");
  if (ids.dtype() != DType::I32) return invalid_argument(op, "ids has dtype ", ids.dtype(), "; expected i32");
  const int64_t n = ids.numel(), vocab = table.shape()[0], dim = table.shape()[1];
  if (out.shape() != Shape{n, dim})
    return invalid_argument(op, "out has shape ", out.shape(), ", expected [", n, ", ", dim, "]");
  if (!std::isfinite(p.scale)) return invalid_argument(op, "scale must be finite");
  if (out.range().overlaps(table.range()) || out.range().overlaps(ids.range()))
    return invalid_argument(op, "out overlaps table or ids");
  // Block rows are decoded with 2-byte loads (MXFP4's 17-byte blocks with byte loads).
  if (is_quantized(table.dtype()) && table.dtype() != DType::MXFP4 && reinterpret_cast<uintptr_t>(table.data()) % 2)
    return invalid_argument(op, "table data is not 2-byte aligned");
  auto row = dtype_storage_bytes(table.dtype(), dim);
  if (!row.is_ok()) return invalid_argument(op, "table rows: ", row.status().message());

  kern::EmbeddingParams kp;
  kp.table = table.data();
  kp.ids = ids.data_as<const int32_t>();
  kp.out = out.data();
  kp.tt = table.dtype();
  kp.to = out.dtype();
  kp.n = n;
  kp.vocab = vocab;
  kp.dim = dim;
  kp.row_bytes = static_cast<int64_t>(row.value());
  kp.scale = p.scale;
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tt, kp.to})));
  if (n == 0 || dim == 0) return Status::ok();
  return s.record(op, {table.range(), ids.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(embedding, kp, ctx); });
}

Status embedding_affine(Session& s, const AffineWeight& table, const Buffer& ids, const Buffer& out,
                        const EmbeddingParams& p) {
  constexpr std::string_view op = "embedding_affine";
  MLXN_ASSIGN_OR_RETURN(auto vd, detail::check_affine_weight(op, s, table));
  const auto [vocab, dim] = vd;
  MLXN_TRY(detail::check_buffer(op, "ids", s, ids));
  MLXN_TRY(detail::check_buffer(op, "out", s, out));
  MLXN_TRY(detail::check_float(op, "out", out));
  MLXN_TRY(detail::check_contiguous(op, "ids", ids));
  MLXN_TRY(detail::check_contiguous(op, "out", out));
  if (ids.dtype() != DType::I32) return invalid_argument(op, "ids has dtype ", ids.dtype(), "; expected i32");
  const int64_t n = ids.numel();
  if (out.shape() != Shape{n, dim})
    return invalid_argument(op, "out has shape ", out.shape(), ", expected [", n, ", ", dim, "]");
  if (!std::isfinite(p.scale)) return invalid_argument(op, "scale must be finite");
  for (const Buffer* b : {&table.packed, &table.scales, &table.biases, &ids})
    if (out.range().overlaps(b->range())) return invalid_argument(op, "out overlaps table or ids");

  kern::DequantParams kp;
  kp.layout = kern::QWeight::Affine;
  kp.w = table.packed.data();
  kp.scales = table.scales.data();
  kp.biases = table.biases.data();
  kp.out = out.data();
  kp.ts = table.scales.dtype();
  kp.to = out.dtype();
  kp.bits = table.bits;
  kp.group = table.group_size;
  kp.n = n;
  kp.cols = dim;
  kp.row_bytes = dim / 8 * table.bits;
  kp.ldo = dim;
  kp.ids = ids.data_as<const int32_t>();
  kp.vocab = vocab;
  kp.scale = p.scale;
  MLXN_TRY(s.device().kernels().require("dequantize", detail::dequant_key(kp.layout, kp.tw, kp.bits, kp.to)));
  if (n == 0) return Status::ok();
  return s.record(op, {table.packed.range(), table.scales.range(), table.biases.range(), ids.range()}, {out.range()},
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(dequantize, kp, ctx); });
}

}  // namespace mlxn::ops
