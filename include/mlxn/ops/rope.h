// Rotary position embedding (RoPE, Su et al. 2021) on q or k, with ggml's and Hugging Face's conventions.
//
// x and out are [tokens, heads, head_dim] (or [tokens, head_dim]: one head) with unit stride along head_dim; the
// token and head strides are free, so q / k views inside a fused qkv tensor work in place. The first rope_dim
// elements of each head are rotated in pairs, the rest copied:
//   Normal (ggml mode 0, GPT-J / Llama GGUF): pair i is (2i, 2i + 1)
//   Neox   (ggml NEOX, HF rotate_half):       pair i is (i, i + rope_dim / 2)
// (partial rotary pairs inside the rotated part, as ggml and HF do; the original library's (i, i + head_dim / 2)
// pairing for partial rotary is not followed). Pair i of token t turns by
//   theta = p * base^(-2i / rope_dim) / freq_factors[i]        (p the token's position, freq_factors optional)
//   (a, b) -> (a cos(theta) - b sin(theta), a sin(theta) + b cos(theta))
// Scaling follows ggml's rope_yarn: with theta_e = theta above and theta_i = freq_scale * theta_e,
//   ext_factor == 0: theta = theta_i, mscale = attn_factor                        (linear: freq_scale = 1 / factor)
//   ext_factor != 0: ramp = 1 - clamp((i - lo) / max(0.001, hi - lo), 0, 1) with (lo, hi) = yarn_corr_dims(...),
//                    theta = theta_i (1 - ramp ext_factor) + theta_e ramp ext_factor,
//                    mscale = attn_factor (1 + 0.1 ln(1 / freq_scale))
// and cos / sin are multiplied by mscale. Llama 3's rule is a set of frequency factors: llama3_freq_factors().
//
// Positions are int32 on the device: [tokens] or [n_streams, tokens] (n_streams <= 4). With sections (M-RoPE,
// Qwen2-VL; 2-D vision positions are M-RoPE with two streams), pair i picks a stream from sector = i % sum(sections):
//   Mrope:  sections are contiguous: sector < s0 -> 0, < s0 + s1 -> 1, < s0 + s1 + s2 -> 2, else 3
//   Imrope: interleaved (Qwen3-VL / 3.5, ggml's rule): sector % 3 == 1 && sector < 3 s1 -> 1,
//           sector % 3 == 2 && sector < 3 s2 -> 2, sector % 3 == 0 && sector < 3 s0 -> 0, else 3
// A stream index >= n_streams reads stream 0 (HF's default T stream for pairs past the interleaved sections).
//
// All arithmetic of the angle (powers, products, cos / sin) is done in double on both backends, so long positions
// lose nothing to f32 rounding; the rotation itself is f32, rounded once to out's dtype.
#pragma once

#include <cstdint>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

enum class RopeLayout : uint8_t { Normal, Neox };
enum class RopeSections : uint8_t { None, Mrope, Imrope };

struct RopeParams {
  RopeLayout layout = RopeLayout::Neox;
  int64_t rope_dim = 0;  // 0: head_dim (full rotary); else even and <= head_dim
  float base = 10000.0f;
  // ggml's scaling parameters (see above); defaults: no scaling.
  float freq_scale = 1.0f;
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int64_t n_ctx_orig = 0;  // YaRN's original context (needed when ext_factor != 0)
  RopeSections sections_mode = RopeSections::None;
  int32_t sections[4] = {0, 0, 0, 0};
};

// Per-head RMS norm before the rotation (Qwen3 / Gemma 3 q_norm, k_norm): each head's head_dim elements are
// scaled by rsqrt(mean(x^2) + eps) * (w + weight_offset) with one shared [head_dim] weight.
struct HeadNormParams {
  float eps = 1e-6f;
  float weight_offset = 0.0f;  // 1 for Gemma's (1 + w)
};

// out = rope(x). out may be x itself (in place) or a disjoint view; x and out share one float dtype (f32, f16,
// bf16). freq_factors: optional (invalid Buffer for none) f32 [rope_dim / 2].
Status rope(Session& s, const Buffer& x, const Buffer& positions, const Buffer& freq_factors, const Buffer& out,
            const RopeParams& p = {});

// out = rope(rms_norm_per_head(x) * (w + offset)) in one kernel, f32 in between (no rounding of the normed
// value). w: [head_dim] in x's dtype or f32, or an invalid Buffer for no weight.
Status rope_head_norm(Session& s, const Buffer& x, const Buffer& w, const Buffer& positions, const Buffer& freq_factors,
                      const Buffer& out, const RopeParams& p = {}, const HeadNormParams& np = {});

// ggml's YaRN correction range [lo, hi] in pair dimensions (ggml_rope_yarn_corr_dims).
void yarn_corr_dims(int64_t rope_dim, int64_t n_ctx_orig, float base, float beta_fast, float beta_slow, float out[2]);

// Llama 3.1's rope_scaling rule (HF "llama3") as frequency factors for rope(): pair i's inverse frequency
// f_i = base^(-2i / rope_dim) becomes f_i / factor below the low-frequency cutoff wavelength
// (original_max_positions / low_freq_factor), stays above the high one, and is interpolated between; the factor
// returned is f_i / f_i'. rope_dim / 2 values.
std::vector<float> llama3_freq_factors(int64_t rope_dim, float base, float factor, float low_freq_factor,
                                       float high_freq_factor, int64_t original_max_positions);

}  // namespace mlxn::ops
