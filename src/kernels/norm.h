// Plain parameter struct of the normalisation kernels, and the backend entry points.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/exec.h"

namespace mlxn::kern {

// y[r, c] = x[r, c] * rsqrt(mean_c(x[r, :]^2) + eps) * (w[c] + w_offset); w may be null (no weight).
// x, w, y contiguous; rows x cols.
struct RmsNormParams {
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  DType tx = DType::F32, tw = DType::F32, ty = DType::F32;
  int64_t rows = 0, cols = 0;
  float eps = 1e-6f;
  float w_offset = 0.0f;
};

enum class NormKind : uint8_t { Rms, Layer, L2 };

// The general row normalisation behind layer_norm, l2_norm, group_rms_norm, add_rms_norm and rms_norm_add:
//   v = x, or with a residual added first (r != null, !residual_after): v = round_tx(x + r), written to h;
//   n = Rms: v * rsqrt(mean(v^2) + eps); Layer: (v - mean(v)) * rsqrt(mean((v - mean)^2) + eps);
//       L2: v / max(sqrt(sum(v^2)), eps);
//   o = n * (w + w_offset) (w optional) + b (b optional), plus r when residual_after; y = round_ty(o).
// x and h share dtype tx; r has dtype tr: tx, or (add_rms_norm only) f16 / bf16 with tx f32 (the f16 / bf16 block
// output added to an f32 residual stream: r is widened to f32 before the add). w and b share tw. All contiguous,
// rows x cols (w, b: cols).
struct NormParams {
  const void* x = nullptr;
  const void* r = nullptr;
  const void* w = nullptr;
  const void* b = nullptr;
  void* h = nullptr;
  void* y = nullptr;
  DType tx = DType::F32, tw = DType::F32, ty = DType::F32;
  DType tr = DType::F32;  // r's dtype (tx unless add_rms_norm's mixed case); ignored when r is null
  NormKind kind = NormKind::Rms;
  bool residual_after = false;
  int64_t rows = 0, cols = 0;
  float eps = 1e-6f;
  float w_offset = 0.0f;
  const char* op = "norm";  // the public op's name (registry key and messages); a string literal
};

// Registry key of the general normalisation: (x, w, y), (x, y) for L2, and (x, w, y, r) when r's dtype is not x's
// (add_rms_norm with an f16 / bf16 r on an f32 stream), so the same-dtype keys are unchanged.
inline std::string norm_key(const NormParams& p, DType tw) {
  if (p.kind == NormKind::L2) return KernelRegistry::key({p.tx, p.ty});
  if (p.r != nullptr && p.tr != p.tx) return KernelRegistry::key({p.tx, tw, p.ty, p.tr});
  return KernelRegistry::key({p.tx, tw, p.ty});
}

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status rms_norm(const kern::RmsNormParams& p, const ExecContext& ctx);
Status norm(const kern::NormParams& p, const ExecContext& ctx);
}  // namespace mlxn::cpu
namespace mlxn::cuda {
Status rms_norm(const kern::RmsNormParams& p, const ExecContext& ctx);
Status norm(const kern::NormParams& p, const ExecContext& ctx);
}  // namespace mlxn::cuda
