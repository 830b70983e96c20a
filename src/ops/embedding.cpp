#include "mlxn/ops/embedding.h"

#include <cmath>

#include "kernels/embedding.h"
#include "ops/common.h"

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

}  // namespace mlxn::ops
