// Plain parameter struct of the RoPE kernels (include/mlxn/ops/rope.h has the math), and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// x and out: rows = tokens * heads of head_dim elements, element (t, h, e) at t * stride_t + h * stride_h + e.
struct RopeParams {
  const void* x = nullptr;
  void* out = nullptr;
  const int32_t* pos = nullptr;         // [n_streams, tokens]
  const float* freq_factors = nullptr;  // [rope_dim / 2] or null
  const void* norm_w = nullptr;         // [head_dim] or null (used when norm)
  DType t = DType::F32;                 // x and out
  DType tw = DType::F32;                // norm_w
  int64_t tokens = 0, heads = 0, head_dim = 0, rope_dim = 0;
  int64_t x_stride_t = 0, x_stride_h = 0, out_stride_t = 0, out_stride_h = 0;
  int n_streams = 1;
  bool neox = true;
  bool in_place = false;  // out is x: the copied tail needs no writes (without norm)
  // Angle: theta_e = pos * base^(-2i / rope_dim) / ff[i]; ggml rope_yarn with corr_lo / corr_hi.
  double log2_base = 0;  // log2(base)
  float freq_scale = 1.0f, ext_factor = 0.0f, attn_factor = 1.0f;
  float corr_lo = 0.0f, corr_hi = 0.0f;
  int sections_mode = 0;  // 0 none, 1 mrope, 2 imrope
  int32_t sections[4] = {0, 0, 0, 0};
  // Per-head RMS norm first.
  bool norm = false;
  float eps = 1e-6f, w_offset = 0.0f;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status rope(const kern::RopeParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status rope(const kern::RopeParams& p, const ExecContext& ctx);
}
