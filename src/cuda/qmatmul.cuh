// y = x W^T with W in a GGML block format or MLX affine, for M > 4 (16 rows of x per tile; M <= 4 runs the int8
// kernel of qgemv.cuh, which also uses the loaders and tables here): the weights are read once per tile, decoded in
// registers to small integers held exactly in f16, and multiplied on the tensor cores.
//
// Why tensor cores for a bandwidth-bound product: at M = 8 a CUDA-core kernel does 8 FMAs per weight element on top
// of the decode, which is more arithmetic than an H100 can do at 3 TB/s of 4-bit weights. With mma.sync the FMAs are
// free and the cost per element is the decode alone, the same at M = 1 and M = 16.
//
// Layout of the work. A warp owns 16 rows of W (the mma's M side) and a slice of K; the block's warps split K and
// meet in shared memory. x rows are the mma's N side (8 per tile, NT tiles). K is walked in chunks of 256 elements;
// in a chunk, thread (g = lane / 4, c = lane % 4) holds rows g and g + 8 and owns the 64 elements 64 c .. 64 c + 63,
// four per k16 step. The mma's logical k order is a permutation of the physical one (for step s, logical 2c, 2c+1
// <- physical 64c + 4s, +1; logical 2c+8, 2c+9 <- physical 64c + 4s + 2, +3), applied to x in the same way, so the
// product is unchanged, each thread reads one contiguous stretch of every row's chunk (wide loads, few scales), and
// its x values are consecutive.
//
// Each format decodes its four elements to unsigned bytes u with a constant bias (code q = u - bias, exact in f16
// through the 0x6400 exponent trick) and gives a scale d and an offset m per row and sub-block; the weight
// d * q + m is formed in f16 (one rounding, 2^-11 relative) and fed to the mma, which accumulates in f32. x is
// rounded to f16 for the mma (f32 / bf16 inputs beyond +-65504 saturate, as do scales beyond the f16 range).
#pragma once

#include <type_traits>

#include "cuda/common.cuh"
#include "kernels/qmatmul.h"
#include "mlxn/quant/blocks.h"

namespace mlxn::cuda::qmm {

// ---- loads of weight bytes, from the chunk staged in shared memory (blocks are only 2-byte or 1-byte aligned) ----
__device__ __forceinline__ uint32_t ld8(const uint8_t* p) { return *p; }
__device__ __forceinline__ uint32_t ld16(const uint8_t* p) { return *reinterpret_cast<const uint16_t*>(p); }
__device__ __forceinline__ uint32_t ld32(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
// N little-endian words starting at any byte address: aligned word loads and funnel shifts (one load per word
// rather than two or four narrow ones). The aligned words may extend up to three bytes before and after the range,
// inside the staged copy of the chunk.
template <int N>
__device__ __forceinline__ void load_words(const uint8_t* p, uint32_t (&out)[N]) {
  // Aligned down by pointer arithmetic (not an integer round trip) so the compiler keeps the shared-memory address
  // space and emits LDS rather than generic loads.
  const uint32_t mis = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(p)) & 3u;
  const uint32_t* base = reinterpret_cast<const uint32_t*>(p - mis);
  const uint32_t sh = mis * 8;
  uint32_t w[N + 1];
#pragma unroll
  for (int i = 0; i < N; ++i) w[i] = base[i];
  w[N] = sh ? base[N] : 0u;
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = __funnelshift_r(w[i], w[i + 1], sh);
}

__device__ __forceinline__ float sat_f16_range(float v) { return fminf(fmaxf(v, -65504.0f), 65504.0f); }

__device__ __forceinline__ float f16_bits(uint32_t h) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h & 0xFFFFu)));
}
__device__ __forceinline__ uint32_t byte_of(uint32_t w, int i) { return (w >> (8 * i)) & 0xFFu; }
// Byte i (< 12) of three words, by selects rather than an indexed array (a runtime index into a register array
// would put it in local memory).
__device__ __forceinline__ uint32_t byte_of3(const uint32_t (&w)[3], int i) {
  const uint32_t v = i < 4 ? w[0] : i < 8 ? w[1] : w[2];
  return byte_of(v, i % 4);
}

inline constexpr uint32_t kLow4 = 0x0F0F0F0Fu;

// 16-entry byte table lookup for four 4-bit indices (one per byte of `idx`): two byte permutes (entries 0-7 and
// 8-15) and a select on bit 3.
__device__ __forceinline__ uint32_t lookup16(uint32_t idx, uint32_t t0, uint32_t t1, uint32_t t2, uint32_t t3) {
  uint32_t x = idx & 0x07070707u;
  x |= x >> 4;
  const uint32_t sel = (x & 0xFFu) | ((x >> 8) & 0xFF00u);
  const uint32_t lo = __byte_perm(t0, t1, sel);
  const uint32_t hi = __byte_perm(t2, t3, sel);
  const uint32_t m = ((idx >> 3) & 0x01010101u) * 0xFFu;
  return (lo & ~m) | (hi & m);
}

// Four bytes of a table given as 16 signed values, stored +128 (unsigned), packed 4 per word.
template <const int8_t (&V)[16]>
struct Table16 {
  static constexpr uint32_t word(int i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i] + 128)) |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 1] + 128)) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 2] + 128)) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 3] + 128)) << 24;
  }
  static constexpr uint32_t kW0 = word(0), kW1 = word(1), kW2 = word(2), kW3 = word(3);
  __device__ static __forceinline__ uint32_t map(uint32_t idx) { return lookup16(idx, kW0, kW1, kW2, kW3); }
};

// 2^(e - 127) / 2 (ggml's E8M0 half scale of MXFP4).
__device__ __forceinline__ float e8m0_half(uint32_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : ((e - 1) << 23);
  return __uint_as_float(bits);
}

// What a row needs besides its staged bytes: for MLX affine, the row's scales and biases in global memory.
struct RowSrc {
  const uint8_t* scales;  // affine: start of the row's scales
  const uint8_t* biases;
};

// ---- formats ----
// The kernel walks K in chunks of 256 elements; in each chunk, thread c (lane % 4) owns elements 64 c .. 64 c + 63
// and step s (< 16) of the chunk covers its elements 64 c + 4 s .. + 3. A format gives:
//   Raw                    what one thread needs from one row of one chunk (loaded before any arithmetic)
//   load(row, chunk, c)    never reads blocks at or past K (the 32-element formats may end inside a chunk)
//   quants(raw, s, c)      the four elements of step s as unsigned bytes u, the code being u - kBias
//   scale(raw, s, c, d, m) the element is d * code + m; constant over kScaleSteps consecutive steps
template <DType T>
struct Fmt;

// 32-element formats: thread c owns blocks 2c and 2c + 1 of the chunk's eight; step s is in block s / 8, at
// elements 4 (s % 8) .. + 3 of it: low nibbles of qs[4 (s % 4) ..] for s % 8 < 4, high nibbles after.
struct Blocks32 {
  static constexpr int kElems = 32, kScaleSteps = 8;
  __device__ static bool live(int64_t chunk, int c, int j, int64_t nblk) { return chunk * 8 + 2 * c + j < nblk; }
  __device__ static uint32_t nibbles(const uint32_t (&q)[2][4], int s) {
    const uint32_t w = q[s / 8][s % 4];
    return (s % 8) < 4 ? w & kLow4 : (w >> 4) & kLow4;
  }
};

template <>
struct Fmt<DType::Q4_0> : Blocks32 {
  static constexpr int kBytes = 18, kBias = 8;
  static constexpr int kChunkBytes = 8 * kBytes;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[2][4]; float d[2]; };
  __device__ static Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) {
    Raw x{};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!live(ch, c, j, nblk)) continue;
      const uint8_t* p = cp + (2 * c + j) * kBytes;
      x.d[j] = f16_bits(ld16(p));
      load_words(p + 2, x.q[j]);
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) { return nibbles(r.q, s); }
  __device__ static void scale(const Raw& r, int s, int, float& d, float&) { d = r.d[s / 8]; }
};

template <>
struct Fmt<DType::Q4_1> : Blocks32 {
  static constexpr int kBytes = 20, kBias = 0;
  static constexpr int kChunkBytes = 8 * kBytes;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[2][4]; uint32_t dm[2]; };
  __device__ static Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) {
    Raw x{};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!live(ch, c, j, nblk)) continue;
      const uint8_t* p = cp + (2 * c + j) * kBytes;
      x.dm[j] = ld32(p);
#pragma unroll
      for (int w = 0; w < 4; ++w) x.q[j][w] = ld32(p + 4 + 4 * w);
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) { return nibbles(r.q, s); }
  __device__ static void scale(const Raw& r, int s, int, float& d, float& m) {
    d = f16_bits(r.dm[s / 8]);
    m = f16_bits(r.dm[s / 8] >> 16);
  }
};

// Bit i (i < 4) of `h4` to bit 4 of byte i.
__device__ __forceinline__ uint32_t spread_bit4(uint32_t h4) { return ((h4 * 0x00204081u) & 0x01010101u) << 4; }

// Q5_0 / Q5_1: the fifth bit of element e of a block is bit e of qh.
template <>
struct Fmt<DType::Q5_0> : Blocks32 {
  static constexpr int kBytes = 22, kBias = 16;
  static constexpr int kChunkBytes = 8 * kBytes;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[2][4]; uint32_t h[2]; float d[2]; };
  __device__ static Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) {
    Raw x{};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!live(ch, c, j, nblk)) continue;
      const uint8_t* p = cp + (2 * c + j) * kBytes;
      x.d[j] = f16_bits(ld16(p));
      uint32_t w[5];
      load_words(p + 2, w);
      x.h[j] = w[0];
#pragma unroll
      for (int i = 0; i < 4; ++i) x.q[j][i] = w[i + 1];
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) {
    return nibbles(r.q, s) | spread_bit4((r.h[s / 8] >> (4 * (s % 8))) & 0xFu);
  }
  __device__ static void scale(const Raw& r, int s, int, float& d, float&) { d = r.d[s / 8]; }
};

template <>
struct Fmt<DType::Q5_1> : Blocks32 {
  static constexpr int kBytes = 24, kBias = 0;
  static constexpr int kChunkBytes = 8 * kBytes;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[2][4]; uint32_t h[2], dm[2]; };
  __device__ static Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) {
    Raw x{};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!live(ch, c, j, nblk)) continue;
      const uint8_t* p = cp + (2 * c + j) * kBytes;
      x.dm[j] = ld32(p);
      x.h[j] = ld32(p + 4);
#pragma unroll
      for (int w = 0; w < 4; ++w) x.q[j][w] = ld32(p + 8 + 4 * w);
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) {
    return nibbles(r.q, s) | spread_bit4((r.h[s / 8] >> (4 * (s % 8))) & 0xFu);
  }
  __device__ static void scale(const Raw& r, int s, int, float& d, float& m) {
    d = f16_bits(r.dm[s / 8]);
    m = f16_bits(r.dm[s / 8] >> 16);
  }
};

template <>
struct Fmt<DType::Q8_0> : Blocks32 {
  static constexpr int kBytes = 34, kBias = 128;
  static constexpr int kChunkBytes = 8 * kBytes;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[2][8]; float d[2]; };
  __device__ static Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) {
    Raw x{};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!live(ch, c, j, nblk)) continue;
      const uint8_t* p = cp + (2 * c + j) * kBytes;
      x.d[j] = f16_bits(ld16(p));
      load_words(p + 2, x.q[j]);
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) { return r.q[s / 8][s % 8] ^ 0x80808080u; }
  __device__ static void scale(const Raw& r, int s, int, float& d, float&) { d = r.d[s / 8]; }
};

template <>
struct Fmt<DType::IQ4_NL> : Fmt<DType::Q4_0> {
  static constexpr int kBias = 128;
  __device__ static uint32_t quants(const Raw& r, int s, int) {
    return Table16<quant::kIQ4NLValues>::map(nibbles(r.q, s));
  }
};

template <>
struct Fmt<DType::MXFP4> : Blocks32 {
  static constexpr int kBytes = 17, kBias = 128;
  static constexpr int kChunkBytes = 8 * kBytes;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[2][4]; float d[2]; };
  __device__ static Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) {
    Raw x{};
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      if (!live(ch, c, j, nblk)) continue;
      const uint8_t* p = cp + (2 * c + j) * kBytes;
      x.d[j] = e8m0_half(ld8(p));
      load_words(p + 1, x.q[j]);
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) {
    return Table16<quant::kMXFP4Values>::map(nibbles(r.q, s));
  }
  __device__ static void scale(const Raw& r, int s, int, float& d, float&) { d = r.d[s / 8]; }
};

// K formats: one 256-element super-block per chunk.
struct Blocks256 {
  static constexpr int kElems = 256;
};

// Q2_K: element 128 h + 32 j + 16 hi + l has bits 2j of qs[32 h + 16 hi + l] and scale byte 8 h + 2 j + hi. For
// thread c, step s: h = c / 2, j = 2 (c % 2) + s / 8, bytes 32 h + 4 (s % 8) .., scale byte 4 c + s / 4.
template <>
struct Fmt<DType::Q2_K> : Blocks256 {
  static constexpr int kBytes = 84, kBias = 0, kScaleSteps = 4;
  static constexpr int kChunkBytes = kBytes;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[8], sc, dd; };
  __device__ static Raw load(const RowSrc&, const uint8_t* cp, int64_t ch, int c, int64_t) {
    const uint8_t* p = cp;
    Raw x;
#pragma unroll
    for (int w = 0; w < 8; ++w) x.q[w] = ld32(p + 16 + 32 * (c / 2) + 4 * w);
    x.sc = ld32(p + 4 * c);
    x.dd = ld32(p + 80);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int c) {
    return (r.q[s % 8] >> (2 * (2 * (c % 2) + s / 8))) & 0x03030303u;
  }
  __device__ static void scale(const Raw& r, int s, int, float& d, float& m) {
    const uint32_t sb = byte_of(r.sc, s / 4);
    d = f16_bits(r.dd) * static_cast<float>(sb & 0xF);
    m = -f16_bits(r.dd >> 16) * static_cast<float>(sb >> 4);
  }
};

// Q3_K: the low two bits as Q2_K; the third is bit 4 h + j = 2 c + s / 8 of hmask[4 (s % 8) ..], set meaning +0
// and clear meaning -4; sixteen 6-bit scales packed in 12 bytes, minus 32.
template <>
struct Fmt<DType::Q3_K> : Blocks256 {
  static constexpr int kBytes = 110, kBias = 4, kScaleSteps = 4;
  static constexpr int kChunkBytes = kBytes;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[8], hm[8], sc[3]; float d; };
  __device__ static Raw load(const RowSrc&, const uint8_t* cp, int64_t ch, int c, int64_t) {
    const uint8_t* p = cp;
    Raw x;
    load_words(p + 32 + 32 * (c / 2), x.q);
    load_words(p, x.hm);
    load_words(p + 96, x.sc);
    x.d = f16_bits(ld16(p + 108));
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int c) {
    const uint32_t low = (r.q[s % 8] >> (2 * (2 * (c % 2) + s / 8))) & 0x03030303u;
    const uint32_t hb = (r.hm[s % 8] >> (2 * c + s / 8)) & 0x01010101u;
    return low | (hb << 2);
  }
  __device__ static void scale(const Raw& r, int s, int c, float& d, float&) {
    const int idx = 4 * c + s / 4;
    const int lo_byte = idx % 8, hi_byte = 8 + idx % 4;
    const uint32_t lo = (byte_of3(r.sc, lo_byte) >> (4 * (idx / 8))) & 0xF;
    const uint32_t hi = (byte_of3(r.sc, hi_byte) >> (2 * (idx / 4))) & 0x3;
    d = r.d * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
  }
};

// 6-bit scale and min of sub-block j (< 8) of Q4_K / Q5_K from the 12 packed bytes (ggml's get_scale_min_k4).
__device__ __forceinline__ void k4_scale_min(const uint32_t (&sc)[3], int j, uint32_t& d, uint32_t& m) {
  auto byte = [&](int i) { return byte_of3(sc, i); };
  if (j < 4) {
    d = byte(j) & 63;
    m = byte(j + 4) & 63;
  } else {
    d = (byte(j + 4) & 0xF) | ((byte(j - 4) >> 6) << 4);
    m = (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4);
  }
}

// Q4_K: element 64 j + 32 hi + l is nibble hi of qs[32 j + l], sub-block 2 j + hi. Thread c: j = c, so its bytes
// are qs[32 c ..+ 32], low nibbles for s < 8, sub-block 2 c + s / 8.
template <>
struct Fmt<DType::Q4_K> : Blocks256 {
  static constexpr int kBytes = 144, kBias = 0, kScaleSteps = 8;
  static constexpr int kChunkBytes = kBytes;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[8], sc[3], dd; };
  __device__ static Raw load(const RowSrc&, const uint8_t* cp, int64_t ch, int c, int64_t) {
    const uint8_t* p = cp;
    Raw x;
#pragma unroll
    for (int w = 0; w < 8; ++w) x.q[w] = ld32(p + 16 + 32 * c + 4 * w);
#pragma unroll
    for (int i = 0; i < 3; ++i) x.sc[i] = ld32(p + 4 + 4 * i);
    x.dd = ld32(p);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) { return (r.q[s % 8] >> (4 * (s / 8))) & kLow4; }
  __device__ static void scale(const Raw& r, int s, int c, float& d, float& m) {
    uint32_t sd, sm;
    k4_scale_min(r.sc, 2 * c + s / 8, sd, sm);
    d = f16_bits(r.dd) * static_cast<float>(sd);
    m = -f16_bits(r.dd >> 16) * static_cast<float>(sm);
  }
};

// Q5_K: Q4_K plus a fifth bit, bit 2 j + hi = 2 c + s / 8 of qh[4 (s % 8) ..].
template <>
struct Fmt<DType::Q5_K> : Blocks256 {
  static constexpr int kBytes = 176, kBias = 0, kScaleSteps = 8;
  static constexpr int kChunkBytes = kBytes;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[8], h[8], sc[3], dd; };
  __device__ static Raw load(const RowSrc&, const uint8_t* cp, int64_t ch, int c, int64_t) {
    const uint8_t* p = cp;
    Raw x;
#pragma unroll
    for (int w = 0; w < 8; ++w) x.q[w] = ld32(p + 48 + 32 * c + 4 * w);
#pragma unroll
    for (int w = 0; w < 8; ++w) x.h[w] = ld32(p + 16 + 4 * w);
#pragma unroll
    for (int i = 0; i < 3; ++i) x.sc[i] = ld32(p + 4 + 4 * i);
    x.dd = ld32(p);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int c) {
    const uint32_t nib = (r.q[s % 8] >> (4 * (s / 8))) & kLow4;
    return nib | (((r.h[s % 8] >> (2 * c + s / 8)) & 0x01010101u) << 4);
  }
  __device__ static void scale(const Raw& r, int s, int c, float& d, float& m) {
    uint32_t sd, sm;
    k4_scale_min(r.sc, 2 * c + s / 8, sd, sm);
    d = f16_bits(r.dd) * static_cast<float>(sd);
    m = -f16_bits(r.dd >> 16) * static_cast<float>(sm);
  }
};

// Q6_K: element 128 h + 32 p + 16 hh + l: low four bits are nibble (p >= 2) of ql[64 h + 32 (p % 2) + 16 hh + l],
// high two are bits 2p of qh[32 h + 16 hh + l], minus 32; int8 scale 8 h + 2 p + hh. Thread c: h = c / 2,
// p = 2 (c % 2) + s / 8, so its ql bytes are 64 h + 4 s .., its qh bytes 32 h + 4 (s % 8) .., scale 4 c + s / 4.
template <>
struct Fmt<DType::Q6_K> : Blocks256 {
  static constexpr int kBytes = 210, kBias = 32, kScaleSteps = 4;
  static constexpr int kChunkBytes = kBytes;
  static constexpr bool kHasMin = false;
  // The thread uses one nibble of each of its 64 ql bytes: they are packed two steps per word at load time.
  struct Raw { uint32_t ql[8], qh[8], sc; float d; };
  __device__ static Raw load(const RowSrc&, const uint8_t* cp, int64_t ch, int c, int64_t) {
    const uint8_t* p = cp;
    Raw x;
    const int sh = 4 * (c % 2);
    uint32_t ql[16], sc[1];
    load_words(p + 64 * (c / 2), ql);
#pragma unroll
    for (int w = 0; w < 8; ++w) x.ql[w] = ((ql[2 * w] >> sh) & kLow4) | (((ql[2 * w + 1] >> sh) & kLow4) << 4);
    load_words(p + 128 + 32 * (c / 2), x.qh);
    load_words(p + 192 + 4 * c, sc);
    x.sc = sc[0];
    x.d = f16_bits(ld16(p + 208));
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int c) {
    const uint32_t nib = (r.ql[s / 2] >> (4 * (s % 2))) & kLow4;
    return nib | (((r.qh[s % 8] >> (2 * (2 * (c % 2) + s / 8))) & 0x03030303u) << 4);
  }
  __device__ static void scale(const Raw& r, int s, int, float& d, float&) {
    d = r.d * static_cast<float>(static_cast<int8_t>(byte_of(r.sc, s / 4)));
  }
};

// IQ4_XS: eight IQ4_NL-like sub-blocks of 32 (16 bytes each) under one f16 scale, 6-bit sub-block scales minus 32.
// Thread c owns sub-blocks 2c, 2c + 1: bytes qs[32 c + 16 (s / 8) + 4 (s % 4) ..], nibble (s % 8) / 4.
template <>
struct Fmt<DType::IQ4_XS> : Blocks256 {
  static constexpr int kBytes = 136, kBias = 128, kScaleSteps = 8;
  static constexpr int kChunkBytes = kBytes;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[8], hdr, sl; };
  __device__ static Raw load(const RowSrc&, const uint8_t* cp, int64_t ch, int c, int64_t) {
    const uint8_t* p = cp;
    Raw x;
#pragma unroll
    for (int w = 0; w < 8; ++w) x.q[w] = ld32(p + 8 + 32 * c + 4 * w);
    x.hdr = ld32(p);
    x.sl = ld32(p + 4);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) {
    const uint32_t w = r.q[4 * (s / 8) + s % 4];
    return Table16<quant::kIQ4NLValues>::map((s % 8) < 4 ? w & kLow4 : (w >> 4) & kLow4);
  }
  __device__ static void scale(const Raw& r, int s, int c, float& d, float&) {
    const int ib = 2 * c + s / 8;
    const uint32_t lo = (byte_of(r.sl, ib / 2) >> (4 * (ib % 2))) & 0xF;
    const uint32_t hi = ((r.hdr >> 16) >> (2 * ib)) & 0x3;
    d = f16_bits(r.hdr) * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
  }
};

// MLX affine with BITS-bit codes: the row is a little-endian bit stream; thread c's 64 elements are 2 * BITS
// consecutive words, read from the staged chunk as each step needs them (holding them all would cost 4 * BITS
// registers). Blocks of 32 elements share one group's scale and bias (groups are multiples of 32).
template <int BITS, typename Ts>
struct Affine {
  static constexpr int kElems = 32, kBias = 0, kScaleSteps = 8, kChunkBytes = 32 * BITS;
  static constexpr bool kHasMin = true;
  // The stretch (word aligned: rows are whole words) and each half's scale and bias as one f16 pair (the kernel
  // rounds them to f16 anyway).
  struct Raw { const uint32_t* v; __half2 sb[2]; };
  int group;  // runtime group size
  __device__ Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) const {
    Raw x{};
    x.v = reinterpret_cast<const uint32_t*>(cp + 8 * c * BITS);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int64_t b = ch * 8 + 2 * c + j;
      if (b >= nblk) continue;
      const int64_t gi = b * 32 / group;
      x.sb[j] = __floats2half2_rn(sat_f16_range(to_f32(reinterpret_cast<const Ts*>(r.scales)[gi])),
                                  sat_f16_range(to_f32(reinterpret_cast<const Ts*>(r.biases)[gi])));
    }
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s, int) {
    constexpr uint32_t mask = (1u << BITS) - 1;
    const int pos = 4 * s * BITS, w = pos / 32, off = pos % 32;
    uint32_t v = r.v[w] >> off;
    if (off + 4 * BITS > 32) v |= r.v[w + 1] << (32 - off);
    if constexpr (BITS == 8) return v;
    return (v & mask) | ((v >> BITS) & mask) << 8 | ((v >> (2 * BITS)) & mask) << 16 |
           ((v >> (3 * BITS)) & mask) << 24;
  }
  __device__ static void scale(const Raw& r, int s, int, float& d, float& m) {
    d = __low2float(r.sb[s / 8]);
    m = __high2float(r.sb[s / 8]);
  }
};

// GGML formats need no runtime state; a thin adapter gives them the same (stateful) interface as Affine.
template <DType T>
struct Ggml : Fmt<T> {
  __device__ typename Fmt<T>::Raw load(const RowSrc& r, const uint8_t* cp, int64_t ch, int c, int64_t nblk) const {
    return Fmt<T>::load(r, cp, ch, c, nblk);
  }
};

// ---- tensor-core step ----
// d += A(16x16, f16) * B(16x8, f16) with f32 accumulation.
__device__ __forceinline__ void mma_16816(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                          uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Four unsigned bytes to two f16 pairs holding u - bias exactly: (0x6400 | u) is 1024 + u in f16.
template <int BIAS>
__device__ __forceinline__ void bytes_to_h2(uint32_t u, uint32_t& lo, uint32_t& hi) {
  constexpr unsigned short kOff = 0x6400 + BIAS;  // f16 bits of 1024 + BIAS (BIAS < 1024: same exponent)
  const __half2 off = __halves2half2(__ushort_as_half(kOff), __ushort_as_half(kOff));
  const uint32_t l = __byte_perm(u, 0x64646464u, 0x4140);
  const uint32_t h = __byte_perm(u, 0x64646464u, 0x4342);
  const __half2 lh = __hsub2(*reinterpret_cast<const __half2*>(&l), off);
  const __half2 hh = __hsub2(*reinterpret_cast<const __half2*>(&h), off);
  lo = *reinterpret_cast<const uint32_t*>(&lh);
  hi = *reinterpret_cast<const uint32_t*>(&hh);
}


__device__ __forceinline__ uint32_t pack_h2(float a, float b) {
  const __half2 h = __floats2half2_rn(sat_f16_range(a), sat_f16_range(b));
  return *reinterpret_cast<const uint32_t*>(&h);
}

// x[k .. k + 7] of one row (two steps) as four f16 pairs; zeros past M. `vec`: 8 elements are one aligned vector.
template <typename Tx>
__device__ __forceinline__ void load_x8(const Tx* row, bool live, bool vec, uint32_t (&b)[4]) {
  if (!live) {
    b[0] = b[1] = b[2] = b[3] = 0;
    return;
  }
  if constexpr (std::is_same_v<Tx, __half>) {
    if (vec) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(row));
      b[0] = v.x, b[1] = v.y, b[2] = v.z, b[3] = v.w;
      return;
    }
  }
  float v[8];
  if (vec && sizeof(Tx) == 4) {
    const float4 f0 = __ldg(reinterpret_cast<const float4*>(row));
    const float4 f1 = __ldg(reinterpret_cast<const float4*>(row) + 1);
    v[0] = f0.x, v[1] = f0.y, v[2] = f0.z, v[3] = f0.w, v[4] = f1.x, v[5] = f1.y, v[6] = f1.z, v[7] = f1.w;
  } else if (vec && sizeof(Tx) == 2) {
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(row));
    const Tx* e = reinterpret_cast<const Tx*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = to_f32(e[i]);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = to_f32(row[i]);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) b[i] = pack_h2(v[2 * i], v[2 * i + 1]);
}

inline constexpr int kWarps = 8;

// Decoded codes of one step as f16 pairs, scaled: d * (u - bias) + m, rounded once to f16.
template <typename F>
__device__ __forceinline__ void decode_step(uint32_t u, __half2 d2, __half2 m2, uint32_t& lo, uint32_t& hi) {
  bytes_to_h2<F::kBias>(u, lo, hi);
  __half2 l = *reinterpret_cast<const __half2*>(&lo), h = *reinterpret_cast<const __half2*>(&hi);
  if constexpr (F::kHasMin) {
    l = __hfma2(l, d2, m2);
    h = __hfma2(h, d2, m2);
  } else {
    l = __hmul2(l, d2);
    h = __hmul2(h, d2);
  }
  lo = *reinterpret_cast<const uint32_t*>(&l);
  hi = *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ __half2 sat_h2(float v) { return __float2half2_rn(sat_f16_range(v)); }

// Shared-memory row stride of a staged chunk: its bytes plus up to 15 of misalignment on each side, in 16-byte pieces.
template <typename F>
constexpr int stage_stride() {
  return (F::kChunkBytes + 30) / 16 * 16 + 16;
}
template <typename F>
constexpr int stage_bytes() {
  return kWarps * 2 * 16 * stage_stride<F>();
}

// One block: 16 rows of W, kWarps warps splitting K in 256-element chunks, NT tiles of 8 rows of x. Each warp
// stages its chunks of the 16 rows into its own shared-memory buffers with 16-byte asynchronous copies (coalesced:
// the threads' own reads of their stretches touch up to eight rows each, which from global memory would cost one
// cache wavefront per row per load), two chunks in flight. One tile (M <= 8) fits 128 registers, so two blocks
// (16 warps) stay resident per SM; two tiles need more for some formats.
template <typename F, typename Tx, int NT>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 ? 2 : 1) qgemv_kernel(kern::QMatmulParams p, F fmt) {
  constexpr int kCols = 8 * NT;
  constexpr int kStride = stage_stride<F>();
  constexpr int kPieces = (F::kChunkBytes + 30) / 16;  // 16-byte pieces per staged row
  __shared__ float partial[kWarps][16 * kCols];
  extern __shared__ __align__(16) uint8_t stage[];
  pdl_wait();
  pdl_trigger();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kCols;
  auto row_of = [&](int r) { return row0 + r < p.N ? row0 + r : p.N - 1; };  // rows past N repeat, never written
  const int64_t groups_per_row = p.layout == kern::QWeight::Affine ? p.K / p.group : 0;
  const int64_t ts = p.layout == kern::QWeight::Affine ? (p.ts == DType::F32 ? 4 : 2) : 0;
  auto src = [&](int64_t r) {
    RowSrc s;
    s.scales = static_cast<const uint8_t*>(p.scales) + r * groups_per_row * ts;
    s.biases = static_cast<const uint8_t*>(p.biases) + r * groups_per_row * ts;
    return s;
  };
  const RowSrc sa = src(row_of(g)), sb = src(row_of(g + 8));
  const Tx* x = static_cast<const Tx*>(p.x);
  const bool xvec = (reinterpret_cast<uintptr_t>(p.x) % (8 * sizeof(Tx))) == 0 && (p.ldx % 8) == 0;
  bool live[NT];
  const Tx* xrow[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const int64_t m = m0 + t * 8 + g;
    live[t] = m < p.M;
    xrow[t] = x + (live[t] ? m : 0) * p.ldx + 64 * c;
  }

  // Two accumulator sets, for even and odd steps: consecutive mma's do not wait on each other.
  float acc[2][NT][4];
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[h][t][i] = 0.0f;

  const int64_t nblk = p.K / F::kElems;
  const int64_t nchunk = (p.K + 255) / 256;
  uint8_t* mine = stage + warp * 2 * 16 * kStride;
  const uint8_t* wbase = static_cast<const uint8_t*>(p.w);
  // Copies the 16 rows' bytes of chunk `ch` (the aligned 16-byte pieces covering them) into buffer `buf`.
  auto stage_chunk = [&](int64_t ch, int buf) {
    const int64_t valid = min(static_cast<int64_t>(F::kChunkBytes), p.row_bytes - ch * F::kChunkBytes);
    for (int i = lane; i < 16 * kPieces; i += 32) {
      const int r = i / kPieces, q = i % kPieces;
      const uint8_t* start = wbase + row_of(r) * p.row_bytes + ch * F::kChunkBytes;
      const uint8_t* a = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(start) & ~uintptr_t{15});
      if (a + 16 * q < start + valid) cp_async16(mine + (buf * 16 + r) * kStride + 16 * q, a + 16 * q, true);
    }
  };
  // Where row r's bytes of the chunk start in buffer `buf`.
  auto staged = [&](int64_t ch, int buf, int r) -> const uint8_t* {
    const uintptr_t start = reinterpret_cast<uintptr_t>(wbase + row_of(r) * p.row_bytes + ch * F::kChunkBytes);
    return mine + (buf * 16 + r) * kStride + (start & 15);
  };

  // All chunks but the last are whole; the last may end inside (32-element formats with K % 256 != 0): its steps
  // past K contribute zeros and read nothing.
  auto run_chunk = [&](int64_t ch, int buf, auto whole) {
    constexpr bool kWhole = decltype(whole)::value;
    const typename F::Raw wa = fmt.load(sa, staged(ch, buf, g), ch, c, nblk);
    const typename F::Raw wb = fmt.load(sb, staged(ch, buf, g + 8), ch, c, nblk);
    const int64_t k0 = ch * 256;
    __half2 da2, ma2, db2, mb2;
    uint32_t xs[NT][4];
#pragma unroll
    for (int s = 0; s < 16; ++s) {
      const bool in = kWhole || k0 + 64 * c + 4 * s < p.K;
      if (s % F::kScaleSteps == 0) {
        float da, ma = 0.0f, db, mb = 0.0f;
        F::scale(wa, s, c, da, ma);
        F::scale(wb, s, c, db, mb);
        da2 = sat_h2(da), ma2 = sat_h2(ma), db2 = sat_h2(db), mb2 = sat_h2(mb);
      }
      // x for this step and the next, loaded on even steps (a step never ends a partial chunk's live part
      // on an odd boundary: live lengths are whole 32-element blocks).
      if (s % 2 == 0) {
#pragma unroll
        for (int t = 0; t < NT; ++t) load_x8(xrow[t] + k0 + 4 * s, live[t] && in, xvec, xs[t]);
      }
      uint32_t bx[NT][2];
#pragma unroll
      for (int t = 0; t < NT; ++t) bx[t][0] = xs[t][2 * (s % 2)], bx[t][1] = xs[t][2 * (s % 2) + 1];
      uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      if (in) {
        decode_step<F>(F::quants(wa, s, c), da2, ma2, a0, a2);
        decode_step<F>(F::quants(wb, s, c), db2, mb2, a1, a3);
      }
#pragma unroll
      for (int t = 0; t < NT; ++t) mma_16816(acc[s % 2][t], a0, a1, a2, a3, bx[t][0], bx[t][1]);
    }
  };
  int buf = 0;
  if (warp < nchunk) stage_chunk(warp, 0);
  cp_async_commit();
  for (int64_t ch = warp; ch < nchunk; ch += kWarps) {
    if (ch + kWarps < nchunk) stage_chunk(ch + kWarps, buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncwarp();
    if (F::kElems == 256 || ch + 1 < nchunk || p.K % 256 == 0) {
      run_chunk(ch, buf, std::true_type{});
    } else {
      run_chunk(ch, buf, std::false_type{});
    }
    __syncwarp();  // every lane is done with `buf` before the next iteration's copies refill it
    buf ^= 1;
  }
  // Accumulator layout: acc[.][t][0..1] row g, x rows t*8 + 2c, + 1; acc[.][t][2..3] row g + 8.
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float* pw = partial[warp];
    pw[g * kCols + t * 8 + 2 * c] = acc[0][t][0] + acc[1][t][0];
    pw[g * kCols + t * 8 + 2 * c + 1] = acc[0][t][1] + acc[1][t][1];
    pw[(g + 8) * kCols + t * 8 + 2 * c] = acc[0][t][2] + acc[1][t][2];
    pw[(g + 8) * kCols + t * 8 + 2 * c + 1] = acc[0][t][3] + acc[1][t][3];
  }
  __syncthreads();
  Tx* y = static_cast<Tx*>(p.y);
  for (int i = threadIdx.x; i < 16 * kCols; i += kWarps * 32) {
    const int r = i / kCols, mcol = i % kCols;
    const int64_t n = row0 + r, m = m0 + mcol;
    if (n >= p.N || m >= p.M) continue;
    float s = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += partial[w][i];
    y[m * p.ldy + n] = from_f32<Tx>(s);
  }
}

template <typename F, typename Tx>
Status launch_tiles(const kern::QMatmulParams& p, const F& fmt, cudaStream_t stream) {
  const int64_t gx = (p.N + 15) / 16;
  // M <= 8: one tile of 8 x rows; above, tiles of 16.
  const bool wide = p.M > 8;
  const int64_t gy = (p.M + (wide ? 15 : 7)) / (wide ? 16 : 8);
  if (gx > 0x7fffffff || gy > 65535) return unsupported("matmul", "shape exceeds one launch");
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy));
  const dim3 block(kWarps * 32);
  auto kernel = wide ? qgemv_kernel<F, Tx, 2> : qgemv_kernel<F, Tx, 1>;
  constexpr int smem = stage_bytes<F>();
  // Above 48 KiB of dynamic shared memory needs an opt-in, once per kernel (a failure shows up at launch).
  static const bool opted_in = [] {
    cudaFuncSetAttribute(qgemv_kernel<F, Tx, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    cudaFuncSetAttribute(qgemv_kernel<F, Tx, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    return true;
  }();
  (void)opted_in;
  return launch_status(launch_kernel_smem(kernel, grid, block, smem, stream, true, p, fmt), "matmul");
}

}  // namespace mlxn::cuda::qmm
