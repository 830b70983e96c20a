// Reference quantizers: the deterministic, importance-free quantize_row_*_ref algorithms of ggml-quants.c,
// reimplemented step for step (same search grids, same float operation order) so that a block quantized here
// equals ggml's byte for byte. Compiled with -ffp-contract=off (src/io/sources.cmake).
//
// Where ggml's C relies on undefined behaviour for hostile input (NaN or huge values converted to int8), values
// saturate here instead; finite inputs of normal magnitude are unaffected.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "mlxn/core/half.h"
#include "mlxn/quant/blocks.h"
#include "mlxn/quant/quant.h"
#include "quant/internal.h"

namespace mlxn::quant {
namespace {

constexpr float kGroupMaxEps = 1e-15f;  // ggml's GROUP_MAX_EPS: a group below it is all zero

// Truncation toward zero of v into [lo, hi] (C's float-to-int conversion for in-range values); NaN gives lo.
inline int trunc_clamped(float v, int lo, int hi) {
  if (!(v == v)) return lo;
  if (v <= static_cast<float>(lo)) return lo;
  if (v >= static_cast<float>(hi)) return hi;
  return static_cast<int>(v);
}

template <typename Block>
void put_block(uint8_t* dst, const Block& b) {
  std::memcpy(dst, &b, sizeof(Block));
}

// ---- 32-element formats --------------------------------------------------------------------------------------

// The element of largest magnitude (the first one on ties) and that magnitude.
inline void signed_absmax(const float* x, int n, float* amax, float* max) {
  *amax = 0.f;
  *max = 0.f;
  for (int j = 0; j < n; ++j) {
    if (*amax < std::fabs(x[j])) {
      *amax = std::fabs(x[j]);
      *max = x[j];
    }
  }
}

void q_q4_0(const float* x, uint8_t* out) {
  BlockQ4_0 b{};
  float amax, max;
  signed_absmax(x, kQK, &amax, &max);
  const float d = max / -8;
  const float id = d != 0.f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = std::min(15, trunc_clamped(x[j] * id + 8.5f, 0, 127));
    const int hi = std::min(15, trunc_clamped(x[j + kQK / 2] * id + 8.5f, 0, 127));
    b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
  put_block(out, b);
}

inline void min_max(const float* x, int n, float* mn, float* mx) {
  *mn = FLT_MAX;
  *mx = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *mn) *mn = x[j];
    if (x[j] > *mx) *mx = x[j];
  }
}

void q_q4_1(const float* x, uint8_t* out) {
  BlockQ4_1 b{};
  float mn, mx;
  min_max(x, kQK, &mn, &mx);
  const float d = (mx - mn) / 15;
  const float id = d != 0.f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  b.m = f32_to_f16(mn);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = std::min(15, trunc_clamped((x[j] - mn) * id + 0.5f, 0, 127));
    const int hi = std::min(15, trunc_clamped((x[j + kQK / 2] - mn) * id + 0.5f, 0, 127));
    b.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
  put_block(out, b);
}

// Low 4 bits of each 5-bit value into the nibbles, the fifth bit into bit j (element j) of the qh word.
template <typename Block>
void pack5(Block& b, const int* q) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    b.qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    qh |= static_cast<uint32_t>((q[j + kQK / 2] >> 4) & 1) << (j + kQK / 2);
  }
  std::memcpy(b.qh, &qh, 4);
}

void q_q5_0(const float* x, uint8_t* out) {
  BlockQ5_0 b{};
  float amax, max;
  signed_absmax(x, kQK, &amax, &max);
  const float d = max / -16;
  const float id = d != 0.f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = std::min(31, trunc_clamped(x[j] * id + 16.5f, 0, 127));
  pack5(b, q);
  put_block(out, b);
}

void q_q5_1(const float* x, uint8_t* out) {
  BlockQ5_1 b{};
  float mn, mx;
  min_max(x, kQK, &mn, &mx);
  const float d = (mx - mn) / 31;
  const float id = d != 0.f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  b.m = f32_to_f16(mn);
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = std::min(31, trunc_clamped((x[j] - mn) * id + 0.5f, 0, 255));
  pack5(b, q);
  put_block(out, b);
}

inline int8_t round_i8(float v) { return static_cast<int8_t>(trunc_clamped(std::round(v), -128, 127)); }

void q_q8_0(const float* x, uint8_t* out) {
  BlockQ8_0 b{};
  float amax = 0.f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  for (int j = 0; j < kQK; ++j) b.qs[j] = round_i8(x[j] * id);
  put_block(out, b);
}

void q_q8_1(const float* x, uint8_t* out) {
  BlockQ8_1 b{};
  float amax = 0.f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  const float id = d != 0.f ? 1.0f / d : 0.0f;
  b.d = f32_to_f16(d);
  int sum = 0;
  for (int j = 0; j < kQK; ++j) {
    b.qs[j] = round_i8(x[j] * id);
    sum += b.qs[j];
  }
  b.s = f32_to_f16(static_cast<float>(sum) * d);
  put_block(out, b);
}

// Index of the IQ4_NL level nearest to v: level i is picked once v reaches the midpoint of levels i-1 and i.
// Comparing 2v with the (exact) integer sum of two levels keeps the midpoint test exact.
inline int nearest_level(const int8_t* levels, float v) {
  const float v2 = v + v;
  int idx = 0;
  for (int step = 8; step > 0; step >>= 1) {
    const int j = idx + step;
    if (v2 >= static_cast<float>(levels[j - 1] + levels[j])) idx = j;
  }
  return idx;
}

// ggml's quantize_row_iq4_nl_ref: one least-squares fit of the scale (weights x^2) on the levels picked with
// d = max / -127, without the scale search the importance-matrix path runs.
void q_iq4_nl(const float* x, uint8_t* out) {
  BlockIQ4_NL b{};
  float amax, max;
  signed_absmax(x, kQK, &amax, &max);
  uint8_t L[kQK] = {};
  float d = 0.f;
  if (!(amax < kGroupMaxEps)) {
    const float d0 = max / static_cast<float>(kIQ4NLValues[0]);
    const float id = 1 / d0;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < kQK; ++j) {
      const int l = nearest_level(kIQ4NLValues, id * x[j]);
      L[j] = static_cast<uint8_t>(l);
      const float q = kIQ4NLValues[l];
      const float w = x[j] * x[j];
      sumqx += w * q * x[j];
      sumq2 += w * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  }
  b.d = f32_to_f16(d);
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(L[j] | (L[j + kQK / 2] << 4));
  put_block(out, b);
}

void q_mxfp4(const float* x, uint8_t* out) {
  BlockMXFP4 b{};
  float amax = 0.f;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  int e = 0;
  // floor(log2(amax)) - 2 + 127, computed exactly (ilogb) and kept inside the E8M0 byte.
  if (amax > 0.f && std::isfinite(amax)) e = std::clamp(std::ilogb(amax) - 2 + 127, 0, 254);
  b.e = static_cast<uint8_t>(e);
  const float d = e8m0_to_f32_half(b.e);
  auto best = [&](float v) {
    int bi = 0;
    float be = std::fabs(static_cast<float>(kMXFP4Values[0]) * d - v);
    for (int i = 1; i < 16; ++i) {
      const float err = std::fabs(static_cast<float>(kMXFP4Values[i]) * d - v);
      if (err < be) {
        bi = i;
        be = err;
      }
    }
    return bi;
  };
  for (int j = 0; j < kQK / 2; ++j) b.qs[j] = static_cast<uint8_t>(best(x[j]) | (best(x[j + kQK / 2]) << 4));
  put_block(out, b);
}

// ---- K formats: scale searches ---------------------------------------------------------------------------------

// Symmetric levels in [-nmax, nmax) with weights x^2; tries 18 scales around nmax / max and keeps the best
// least-squares fit (ggml's make_qx_quants with rmse_type 1 and no importance weights). L gets l + nmax.
float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float amax, max;
  signed_absmax(x, n, &amax, &max);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  auto level = [&](float iscale, int i) { return std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1); };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = level(iscale, i);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0.f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = level(iscale, i);
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + level(iscale, i));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Q3_K's sub-block fit (ggml's make_q3_quants with do_rmse): levels in [-nmax, nmax), then up to five rounds of
// moving single levels while the weighted fit improves. L gets l + nmax.
float fit_q3(int n, int nmax, const float* x, int8_t* L) {
  float amax, max;
  signed_absmax(x, n, &amax, &max);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      float slx = sumlx - w * x[i] * static_cast<float>(L[i]);
      if (slx > 0) {
        float sl2 = suml2 - w * static_cast<float>(L[i]) * static_cast<float>(L[i]);
        const int new_l = std::clamp(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Asymmetric levels in [0, nmax] with a min <= 0 (ggml's make_qkx2_quants): starts from the min/max grid, then
// scans nstep + 1 scales, each refitted by weighted least squares for scale and min; keeps the lowest error
// (absolute error when use_mad, else squared). Returns the scale; *neg_min gets -min.
float fit_scale_min(int n, int nmax, const float* x, const float* weights, uint8_t* L, float* neg_min,
                    uint8_t* Laux, float rmin, float rdelta, int nstep, bool use_mad) {
  float mn = x[0], mx = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < mn) mn = x[i];
    if (x[i] > mx) mx = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (mn > 0) mn = 0;
  if (mx == mn) {
    std::fill(L, L + n, uint8_t{0});
    *neg_min = -mn;
    return 0.f;
  }
  auto err_of = [&](float diff) { return use_mad ? std::fabs(diff) : diff * diff; };
  float iscale = static_cast<float>(nmax) / (mx - mn);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - mn));
    L[i] = static_cast<uint8_t>(std::clamp(l, 0, nmax));
    const float diff = scale * static_cast<float>(L[i]) + mn - x[i];
    best_error += weights[i] * err_of(diff);
  }
  if (nstep < 1) {
    *neg_min = -mn;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (mx - mn);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = std::clamp(nearest_int(iscale * (x[i] - mn)), 0, nmax);
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(Laux[i]) + this_min - x[i];
        cur_error += weights[i] * err_of(diff);
      }
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        mn = this_min;
      }
    }
  }
  *neg_min = -mn;
  return scale;
}

// Four 2-bit values per byte, taken 32 elements apart within each half of 128 (Q2_K and Q3_K).
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < kQK_K; j += 128)
    for (int l = 0; l < 32; ++l)
      qs[j / 4 + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) |
                                           (L[j + l + 96] << 6));
}

void q_q2_K(const float* x, uint8_t* out) {
  BlockQ2_K b{};
  uint8_t L[kQK_K], Laux[16];
  float weights[16], mins[16], scales[16];
  const float q4scale = 15.f;
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 16; ++j) {
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
    scales[j] = fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  if (max_scale > 0) {
    const float iscale = q4scale / max_scale;
    for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<uint8_t>(std::clamp(nearest_int(iscale * scales[j]), 0, 15));
    b.d = f32_to_f16(max_scale / q4scale);
  } else {
    b.d = f32_to_f16(0.f);
  }
  if (max_min > 0) {
    const float iscale = q4scale / max_min;
    for (int j = 0; j < 16; ++j)
      b.scales[j] = static_cast<uint8_t>(b.scales[j] | (std::clamp(nearest_int(iscale * mins[j]), 0, 15) << 4));
    b.dmin = f32_to_f16(max_min / q4scale);
  } else {
    b.dmin = f32_to_f16(0.f);
  }
  for (int j = 0; j < 16; ++j) {
    const float d = f16_to_f32(b.d) * static_cast<float>(b.scales[j] & 0x0F);
    if (d == 0.f) continue;
    const float dm = f16_to_f32(b.dmin) * static_cast<float>(b.scales[j] >> 4);
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[16 * j + ii] + dm) / d), 0, 3));
  }
  pack_2bit(L, b.qs);
  put_block(out, b);
}

void q_q3_K(const float* x, uint8_t* out) {
  BlockQ3_K b{};
  int8_t L[kQK_K];
  float scales[16];
  float max_scale = 0, amax = 0;
  for (int j = 0; j < 16; ++j) {
    scales[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
    const float scale = std::fabs(scales[j]);
    if (scale > amax) {
      amax = scale;
      max_scale = scales[j];
    }
  }
  if (max_scale != 0.f) {
    const float iscale = -32.f / max_scale;
    for (int j = 0; j < 16; ++j) {
      int l = std::clamp(nearest_int(iscale * scales[j]), -32, 31) + 32;
      if (j < 8)
        b.scales[j] = static_cast<uint8_t>(l & 0x0F);
      else
        b.scales[j - 8] = static_cast<uint8_t>(b.scales[j - 8] | ((l & 0x0F) << 4));
      l >>= 4;
      b.scales[j % 4 + 8] = static_cast<uint8_t>(b.scales[j % 4 + 8] | (l << (2 * (j / 4))));
    }
    b.d = f32_to_f16(1 / iscale);
  } else {
    b.d = f32_to_f16(0.f);
  }
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (b.scales[j] & 0x0F) : (b.scales[j - 8] >> 4);
    const int sc = (low | (((b.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
    const float d = f16_to_f32(b.d) * static_cast<float>(sc);
    if (d == 0.f) continue;
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -4, 3) + 4);
  }
  // The third bit of element j goes to bit (j / 32) of hmask[j % 32].
  uint8_t L2[kQK_K];
  for (int j = 0; j < kQK_K; ++j) {
    int l = L[j];
    if (l > 3) {
      b.hmask[j % 32] = static_cast<uint8_t>(b.hmask[j % 32] | (1u << (j / 32)));
      l -= 4;
    }
    L2[j] = static_cast<uint8_t>(l);
  }
  pack_2bit(L2, b.qs);
  put_block(out, b);
}

// Sub-block scales and mins of Q4_K / Q5_K quantized to 6 bits against the largest of each, packed into 12 bytes.
void pack_k4_scales(const float* scales, const float* mins, uint8_t* packed, uint16_t* d, uint16_t* dmin) {
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < 8; ++j) {
    const int ls = std::clamp(nearest_int(inv_scale * scales[j]), 0, 63);
    const int lm = std::clamp(nearest_int(inv_min * mins[j]), 0, 63);
    if (j < 4) {
      packed[j] = static_cast<uint8_t>(ls);
      packed[j + 4] = static_cast<uint8_t>(lm);
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0x0F) | ((lm & 0x0F) << 4));
      packed[j - 4] = static_cast<uint8_t>(packed[j - 4] | ((ls >> 4) << 6));
      packed[j] = static_cast<uint8_t>(packed[j] | ((lm >> 4) << 6));
    }
  }
  *d = f32_to_f16(max_scale / 63.f);
  *dmin = f32_to_f16(max_min / 63.f);
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per sub-block fit, 6-bit scales, then requantize every element
// with the scales as stored.
void k4_levels(const float* x, int nmax, float rmin, int nstep, uint8_t* scales_packed, uint16_t* d_bits,
               uint16_t* dmin_bits, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32], mins[8], scales[8];
  for (int j = 0; j < 8; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = fit_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
  }
  pack_k4_scales(scales, mins, scales_packed, d_bits, dmin_bits);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, scales_packed, &sc, &m);
    const float d = f16_to_f32(*d_bits) * static_cast<float>(sc);
    if (d == 0.f) continue;
    const float dm = f16_to_f32(*dmin_bits) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii)
      L[32 * j + ii] = static_cast<uint8_t>(std::clamp(nearest_int((x[32 * j + ii] + dm) / d), 0, nmax));
  }
}

void q_q4_K(const float* x, uint8_t* out) {
  BlockQ4_K b{};
  uint8_t L[kQK_K];
  k4_levels(x, 15, -1.f, 20, b.scales, &b.d, &b.dmin, L);
  for (int pair = 0; pair < 4; ++pair)
    for (int l = 0; l < 32; ++l)
      b.qs[32 * pair + l] = static_cast<uint8_t>(L[64 * pair + l] | (L[64 * pair + 32 + l] << 4));
  put_block(out, b);
}

void q_q5_K(const float* x, uint8_t* out) {
  BlockQ5_K b{};
  uint8_t L[kQK_K];
  k4_levels(x, 31, -0.5f, 15, b.scales, &b.d, &b.dmin, L);
  for (int pair = 0; pair < 4; ++pair) {
    const uint8_t m1 = static_cast<uint8_t>(1u << (2 * pair)), m2 = static_cast<uint8_t>(2u << (2 * pair));
    for (int j = 0; j < 32; ++j) {
      int l1 = L[64 * pair + j], l2 = L[64 * pair + 32 + j];
      if (l1 > 15) {
        l1 -= 16;
        b.qh[j] = static_cast<uint8_t>(b.qh[j] | m1);
      }
      if (l2 > 15) {
        l2 -= 16;
        b.qh[j] = static_cast<uint8_t>(b.qh[j] | m2);
      }
      b.qs[32 * pair + j] = static_cast<uint8_t>(l1 | (l2 << 4));
    }
  }
  put_block(out, b);
}

void q_q6_K(const float* x, uint8_t* out) {
  BlockQ6_K b{};
  int8_t L[kQK_K];
  float scales[16];
  float max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < 16; ++ib) {
    scales[ib] = fit_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
    const float abs_scale = std::fabs(scales[ib]);
    if (abs_scale > max_abs_scale) {
      max_abs_scale = abs_scale;
      max_scale = scales[ib];
    }
  }
  if (max_abs_scale < kGroupMaxEps) {  // all zero: an all-zero block
    put_block(out, b);
    return;
  }
  const float iscale = -128.f / max_scale;
  b.d = f32_to_f16(1 / iscale);
  for (int ib = 0; ib < 16; ++ib) b.scales[ib] = static_cast<int8_t>(std::clamp(nearest_int(iscale * scales[ib]), -128, 127));
  for (int j = 0; j < 16; ++j) {
    const float d = f16_to_f32(b.d) * static_cast<float>(b.scales[j]);
    if (d == 0.f) continue;
    for (int ii = 0; ii < 16; ++ii)
      L[16 * j + ii] = static_cast<int8_t>(std::clamp(nearest_int(x[16 * j + ii] / d), -32, 31) + 32);
  }
  for (int half = 0; half < 2; ++half) {
    const int8_t* Lh = L + 128 * half;
    uint8_t* ql = b.ql + 64 * half;
    uint8_t* qh = b.qh + 32 * half;
    for (int l = 0; l < 32; ++l) {
      const int v0 = Lh[l], v1 = Lh[l + 32], v2 = Lh[l + 64], v3 = Lh[l + 96];
      ql[l] = static_cast<uint8_t>((v0 & 0x0F) | ((v2 & 0x0F) << 4));
      ql[l + 32] = static_cast<uint8_t>((v1 & 0x0F) | ((v3 & 0x0F) << 4));
      qh[l] = static_cast<uint8_t>((v0 >> 4) | ((v1 >> 4) << 2) | ((v2 >> 4) << 4) | ((v3 >> 4) << 6));
    }
  }
  put_block(out, b);
}

void q_q8_K(const float* x, uint8_t* out) {
  BlockQ8_K b{};
  float amax, max;
  signed_absmax(x, kQK_K, &amax, &max);
  if (amax == 0.f) {
    put_block(out, b);
    return;
  }
  const float iscale = -127.f / max;
  for (int j = 0; j < kQK_K; ++j) b.qs[j] = static_cast<int8_t>(std::min(127, std::max(-128, nearest_int(iscale * x[j]))));
  for (int j = 0; j < 16; ++j) {
    int sum = 0;
    for (int ii = 0; ii < 16; ++ii) sum += b.qs[16 * j + ii];
    b.bsums[j] = static_cast<int16_t>(sum);
  }
  b.d = 1 / iscale;
  put_block(out, b);
}

using BlockFn = void (*)(const float*, uint8_t*);

BlockFn block_encoder(DType t) {
  switch (t) {
    case DType::Q4_0: return q_q4_0;
    case DType::Q4_1: return q_q4_1;
    case DType::Q5_0: return q_q5_0;
    case DType::Q5_1: return q_q5_1;
    case DType::Q8_0: return q_q8_0;
    case DType::Q8_1: return q_q8_1;
    case DType::Q2_K: return q_q2_K;
    case DType::Q3_K: return q_q3_K;
    case DType::Q4_K: return q_q4_K;
    case DType::Q5_K: return q_q5_K;
    case DType::Q6_K: return q_q6_K;
    case DType::Q8_K: return q_q8_K;
    case DType::IQ4_NL: return q_iq4_nl;
    case DType::MXFP4: return q_mxfp4;
    default: return nullptr;
  }
}

}  // namespace

bool can_quantize(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || block_encoder(t) != nullptr;
}

Status quantize(DType t, const float* src, int64_t n, void* dst, size_t dst_bytes) {
  MLXN_ASSIGN_OR_RETURN(size_t need, dtype_storage_bytes(t, n));
  if (dst_bytes != need)
    return invalid_argument("quantize", dst_bytes, " bytes given for ", n, " ", t, " elements of ", need, " bytes");
  if (n == 0) return Status::ok();
  if (src == nullptr || dst == nullptr) return invalid_argument("quantize", "null pointer");
  auto* d = static_cast<uint8_t*>(dst);
  if (t == DType::F32) {
    std::memcpy(d, src, need);
    return Status::ok();
  }
  if (t == DType::F16 || t == DType::BF16) {
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t h = t == DType::F16 ? f32_to_f16(src[i]) : f32_to_bf16(src[i]);
      std::memcpy(d + 2 * i, &h, 2);
    }
    return Status::ok();
  }
  const BlockFn fn = block_encoder(t);
  if (fn == nullptr) return unsupported("quantize", "no reference quantizer for ", t);
  const auto& info = dtype_info(t);
  const int64_t n_blocks = n / info.block_elems;
  for (int64_t i = 0; i < n_blocks; ++i) fn(src + i * info.block_elems, d + i * info.block_bytes);
  return Status::ok();
}

}  // namespace mlxn::quant
