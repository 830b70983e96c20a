// Helpers shared bit for bit by the CPU reference and the CUDA kernels of the reduce, moe and sample families:
// order-preserving float keys and the Philox4x32-10 counter-based generator.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MLXN_HD __host__ __device__ __forceinline__
#else
#define MLXN_HD inline
#endif

namespace mlxn::kern {

// A float's bits mapped to an unsigned key with the same order (larger float -> larger key). -0 maps to +0's key so
// the two compare equal, and every NaN maps to the largest key (NaN ranks above +inf, as torch.argmax / topk do).
MLXN_HD uint32_t float_key_bits(uint32_t bits) {
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0xffffffffu;  // NaN
  if (bits == 0x80000000u) bits = 0;                           // -0 -> +0
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}
// The inverse of float_key_bits for keys of non-NaN floats.
MLXN_HD uint32_t key_float_bits(uint32_t key) { return (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key; }

// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a 128-bit
// counter and a 64-bit key give four independent 32-bit words. Checked against Random123's known-answer vectors.
struct Philox4 {
  uint32_t v[4];
};

MLXN_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return {{c0, c1, c2, c3}};
}

// The sampling stream: the uniform of token `token` of row `row` at decode step `step` under a 64-bit seed, in
// (0, 1) with 24 random bits. Four consecutive tokens share one Philox call (counter = token / 4, row, step, 0).
MLXN_HD float sample_uniform(uint32_t seed_lo, uint32_t seed_hi, uint32_t step, uint32_t row, uint32_t token) {
  const Philox4 r = philox4x32_10(token >> 2, row, step, 0u, seed_lo, seed_hi);
  const uint32_t w = r.v[token & 3u];
  return (static_cast<float>(w >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

// llama.cpp's penalty of a token seen `count` > 0 times: the repetition penalty divides positive logits and
// multiplies the others, then frequency (per occurrence) and presence (once) penalties are subtracted.
MLXN_HD float apply_penalty(float l, int count, float repetition, float frequency, float presence) {
  l = l > 0.0f ? l / repetition : l * repetition;
  return l - (static_cast<float>(count) * frequency + presence);
}

// The Gumbel-max score of a logit at inverse temperature inv_t with uniform u: l / T - log(-log(u)).
MLXN_HD float gumbel_score(float l, float inv_t, float u) { return l * inv_t - logf(-logf(u)); }

}  // namespace mlxn::kern
