// y = x W^T with W in a GGML block format or MLX affine, for decode-sized M (1..16 per tile): the weights are read
// once, decoded in registers to small integers held exactly in f16, and multiplied on the tensor cores.
//
// Why tensor cores for a bandwidth-bound product: at M = 8 a CUDA-core kernel does 8 FMAs per weight element on top
// of the decode, which is more arithmetic than an H100 can do at 3 TB/s of 4-bit weights. With mma.sync the FMAs are
// free and the cost per element is the decode alone, the same at M = 1 and M = 16.
//
// Layout of the work. A warp owns 16 rows of W (the mma's M side) and a slice of K; the block's warps split K and
// meet in shared memory. x rows are the mma's N side (8 per tile, NT tiles). Each k16 step of the mma covers 16
// consecutive elements of one block of W; thread (g = lane / 4, c = lane % 4) holds rows g and g + 8 and the four
// physical elements 16 s + 4 c .. + 3 of step s. The mma's logical k order is a permutation of the physical one
// (logical 2c, 2c+1 <- physical 4c, 4c+1; logical 2c+8, 2c+9 <- physical 4c+2, 4c+3), applied to x in the same way,
// so the product is unchanged and every thread decodes four consecutive elements.
//
// Each format decodes its four elements to unsigned bytes u with a constant bias (q = u - bias, exact in f16 through
// the 0x6400 exponent trick), plus a scale d and a minimum term m per row and step: W = d * q + m. The block sum is
// d * (q . x) + m * sum(x); the mma computes q . x (and sum(x) with an all-ones A operand), the scales are applied in
// f32. x is rounded to f16 for the mma (f32 / bf16 inputs beyond +-65504 saturate).
#pragma once

#include <type_traits>

#include "cuda/common.cuh"
#include "kernels/qmatmul.h"
#include "mlxn/quant/blocks.h"

namespace mlxn::cuda::qmm {

// ---- loads of weight bytes through the read-only path (blocks are only 2-byte or 1-byte aligned) ----
__device__ __forceinline__ uint32_t ld8(const uint8_t* p) { return __ldg(p); }
__device__ __forceinline__ uint32_t ld16(const uint8_t* p) { return __ldg(reinterpret_cast<const uint16_t*>(p)); }
__device__ __forceinline__ uint32_t ld32(const uint8_t* p) { return __ldg(reinterpret_cast<const uint32_t*>(p)); }
// Four bytes at a 2-byte aligned address.
__device__ __forceinline__ uint32_t ld32_a2(const uint8_t* p) { return ld16(p) | (ld16(p + 2) << 16); }
// Four bytes at any address.
__device__ __forceinline__ uint32_t ld32_a1(const uint8_t* p) {
  return ld8(p) | (ld8(p + 1) << 8) | (ld8(p + 2) << 16) | (ld8(p + 3) << 24);
}
__device__ __forceinline__ float f16_bits(uint32_t h) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h & 0xFFFFu)));
}
__device__ __forceinline__ uint32_t byte_of(uint32_t w, int i) { return (w >> (8 * i)) & 0xFFu; }

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

// Where a thread's weights come from: the row's bytes plus, for MLX affine, the row's scales and biases.
struct RowSrc {
  const uint8_t* w;       // start of the row
  const uint8_t* scales;  // affine: start of the row's scales
  const uint8_t* biases;
};

// ---- formats ----
// Each format: kElems (elements per block), kBytes, kBias, kHasMin, a Raw struct with what one thread needs from one
// block of one row, load(row, block, c), and quants / scale for step s (s < kElems / 16).
template <DType T>
struct Fmt;

template <>
struct Fmt<DType::Q4_0> {
  static constexpr int kElems = 32, kBytes = 18, kBias = 8;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    return {ld32_a2(p + 2 + 4 * c), f16_bits(ld16(p))};
  }
  __device__ static uint32_t quants(const Raw& r, int s) { return s == 0 ? r.q & kLow4 : (r.q >> 4) & kLow4; }
  __device__ static void scale(const Raw& r, int, float& d, float&) { d = r.d; }
};

template <>
struct Fmt<DType::Q4_1> {
  static constexpr int kElems = 32, kBytes = 20, kBias = 0;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q; uint32_t dm; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    return {ld32(p + 4 + 4 * c), ld32(p)};
  }
  __device__ static uint32_t quants(const Raw& r, int s) { return s == 0 ? r.q & kLow4 : (r.q >> 4) & kLow4; }
  __device__ static void scale(const Raw& r, int, float& d, float& m) {
    d = f16_bits(r.dm);
    m = f16_bits(r.dm >> 16);
  }
};

// Bit i (i < 4) of `h4` to bit 4 of byte i.
__device__ __forceinline__ uint32_t spread_bit4(uint32_t h4) { return ((h4 * 0x00204081u) & 0x01010101u) << 4; }

template <>
struct Fmt<DType::Q5_0> {
  static constexpr int kElems = 32, kBytes = 22, kBias = 16;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q, h; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    // qh is whole-block (bit e = fifth bit of element e); the thread shifts out its own bits per step.
    const uint32_t h = ld32_a2(p + 2);
    return {ld32_a2(p + 6 + 4 * c), h >> (4 * c), f16_bits(ld16(p))};
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const uint32_t nib = s == 0 ? r.q & kLow4 : (r.q >> 4) & kLow4;
    return nib | spread_bit4((r.h >> (16 * s)) & 0xFu);
  }
  __device__ static void scale(const Raw& r, int, float& d, float&) { d = r.d; }
};

template <>
struct Fmt<DType::Q5_1> {
  static constexpr int kElems = 32, kBytes = 24, kBias = 0;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q, h, dm; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    return {ld32(p + 8 + 4 * c), ld32(p + 4) >> (4 * c), ld32(p)};
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const uint32_t nib = s == 0 ? r.q & kLow4 : (r.q >> 4) & kLow4;
    return nib | spread_bit4((r.h >> (16 * s)) & 0xFu);
  }
  __device__ static void scale(const Raw& r, int, float& d, float& m) {
    d = f16_bits(r.dm);
    m = f16_bits(r.dm >> 16);
  }
};

template <>
struct Fmt<DType::Q8_0> {
  static constexpr int kElems = 32, kBytes = 34, kBias = 128;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q0, q1; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    return {ld32_a2(p + 2 + 4 * c), ld32_a2(p + 18 + 4 * c), f16_bits(ld16(p))};
  }
  __device__ static uint32_t quants(const Raw& r, int s) { return (s == 0 ? r.q0 : r.q1) ^ 0x80808080u; }
  __device__ static void scale(const Raw& r, int, float& d, float&) { d = r.d; }
};

template <>
struct Fmt<DType::IQ4_NL> {
  static constexpr int kElems = 32, kBytes = 18, kBias = 128;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    return {ld32_a2(p + 2 + 4 * c), f16_bits(ld16(p))};
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    return Table16<quant::kIQ4NLValues>::map(s == 0 ? r.q & kLow4 : (r.q >> 4) & kLow4);
  }
  __device__ static void scale(const Raw& r, int, float& d, float&) { d = r.d; }
};

template <>
struct Fmt<DType::MXFP4> {
  static constexpr int kElems = 32, kBytes = 17, kBias = 128;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    return {ld32_a1(p + 1 + 4 * c), e8m0_half(ld8(p))};
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    return Table16<quant::kMXFP4Values>::map(s == 0 ? r.q & kLow4 : (r.q >> 4) & kLow4);
  }
  __device__ static void scale(const Raw& r, int, float& d, float&) { d = r.d; }
};

// K formats: 256 elements, 16 steps. Step s covers elements 16 s .. 16 s + 15 of the super-block.

// Q2_K: element 128 h + 32 j + 16 hi + l (l < 16) is bits 2j of qs[32 h + 16 hi + l], scale byte 8h + 2j + hi = s.
template <>
struct Fmt<DType::Q2_K> {
  static constexpr int kElems = 256, kBytes = 84, kBias = 0;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[4], sc[4], dd; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    Raw x;
#pragma unroll
    for (int i = 0; i < 4; ++i) x.q[i] = ld32(p + 16 + 16 * i + 4 * c);  // i = 2 h + hi
#pragma unroll
    for (int i = 0; i < 4; ++i) x.sc[i] = ld32(p + 4 * i);
    x.dd = ld32(p + 80);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const int h = s / 8, j = (s % 8) / 2, hi = s % 2;
    return (r.q[2 * h + hi] >> (2 * j)) & 0x03030303u;
  }
  __device__ static void scale(const Raw& r, int s, float& d, float& m) {
    const uint32_t sb = byte_of(r.sc[s / 4], s % 4);
    d = f16_bits(r.dd) * static_cast<float>(sb & 0xF);
    m = -f16_bits(r.dd >> 16) * static_cast<float>(sb >> 4);
  }
};

// Q3_K: as Q2_K for the low two bits; the third bit is bit (4 h + j) of hmask[16 hi + l], set meaning +0 and clear
// meaning -4; 6-bit scales packed in 12 bytes, minus 32.
template <>
struct Fmt<DType::Q3_K> {
  static constexpr int kElems = 256, kBytes = 110, kBias = 4;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[4], hm[2], sc[3]; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    Raw x;
#pragma unroll
    for (int i = 0; i < 4; ++i) x.q[i] = ld32_a2(p + 32 + 16 * i + 4 * c);
#pragma unroll
    for (int i = 0; i < 2; ++i) x.hm[i] = ld32_a2(p + 16 * i + 4 * c);
#pragma unroll
    for (int i = 0; i < 3; ++i) x.sc[i] = ld32_a2(p + 96 + 4 * i);
    x.d = f16_bits(ld16(p + 108));
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const int h = s / 8, j = (s % 8) / 2, hi = s % 2;
    const uint32_t low = (r.q[2 * h + hi] >> (2 * j)) & 0x03030303u;
    const uint32_t hb = (r.hm[hi] >> (4 * h + j)) & 0x01010101u;
    return low | (hb << 2);
  }
  __device__ static void scale(const Raw& r, int s, float& d, float&) {
    const int lo_byte = s % 8, hi_byte = 8 + s % 4;
    const uint32_t lo = (byte_of(r.sc[lo_byte / 4], lo_byte % 4) >> (4 * (s / 8))) & 0xF;
    const uint32_t hi = (byte_of(r.sc[hi_byte / 4], hi_byte % 4) >> (2 * (s / 4))) & 0x3;
    d = r.d * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
  }
};

// 6-bit scale and min of sub-block j (< 8) of Q4_K / Q5_K from the 12 packed bytes (ggml's get_scale_min_k4).
__device__ __forceinline__ void k4_scale_min(const uint32_t (&sc)[3], int j, uint32_t& d, uint32_t& m) {
  auto byte = [&](int i) { return byte_of(sc[i / 4], i % 4); };
  if (j < 4) {
    d = byte(j) & 63;
    m = byte(j + 4) & 63;
  } else {
    d = (byte(j + 4) & 0xF) | ((byte(j - 4) >> 6) << 4);
    m = (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4);
  }
}

// Q4_K: element 64 j + 32 hi + 16 rr + l is the (hi ? high : low) nibble of qs[32 j + 16 rr + l], sub-block 2 j + hi.
template <>
struct Fmt<DType::Q4_K> {
  static constexpr int kElems = 256, kBytes = 144, kBias = 0;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[8], sc[3], dd; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    Raw x;
#pragma unroll
    for (int i = 0; i < 8; ++i) x.q[i] = ld32(p + 16 + 16 * i + 4 * c);  // i = 2 j + rr
#pragma unroll
    for (int i = 0; i < 3; ++i) x.sc[i] = ld32(p + 4 + 4 * i);
    x.dd = ld32(p);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const int j = s / 4, hi = (s % 4) / 2, rr = s % 2;
    return hi ? (r.q[2 * j + rr] >> 4) & kLow4 : r.q[2 * j + rr] & kLow4;
  }
  __device__ static void scale(const Raw& r, int s, float& d, float& m) {
    uint32_t sd, sm;
    k4_scale_min(r.sc, 2 * (s / 4) + (s % 4) / 2, sd, sm);
    d = f16_bits(r.dd) * static_cast<float>(sd);
    m = -f16_bits(r.dd >> 16) * static_cast<float>(sm);
  }
};

// Q5_K: Q4_K plus a fifth bit: bit (2 j + hi) of qh[16 rr + l].
template <>
struct Fmt<DType::Q5_K> {
  static constexpr int kElems = 256, kBytes = 176, kBias = 0;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t q[8], h[2], sc[3], dd; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    Raw x;
#pragma unroll
    for (int i = 0; i < 8; ++i) x.q[i] = ld32(p + 48 + 16 * i + 4 * c);
#pragma unroll
    for (int i = 0; i < 2; ++i) x.h[i] = ld32(p + 16 + 16 * i + 4 * c);
#pragma unroll
    for (int i = 0; i < 3; ++i) x.sc[i] = ld32(p + 4 + 4 * i);
    x.dd = ld32(p);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const int j = s / 4, hi = (s % 4) / 2, rr = s % 2;
    const uint32_t nib = hi ? (r.q[2 * j + rr] >> 4) & kLow4 : r.q[2 * j + rr] & kLow4;
    return nib | (((r.h[rr] >> (2 * j + hi)) & 0x01010101u) << 4);
  }
  __device__ static void scale(const Raw& r, int s, float& d, float& m) {
    uint32_t sd, sm;
    k4_scale_min(r.sc, 2 * (s / 4) + (s % 4) / 2, sd, sm);
    d = f16_bits(r.dd) * static_cast<float>(sd);
    m = -f16_bits(r.dd >> 16) * static_cast<float>(sm);
  }
};

// Q6_K: element 128 h + 32 p + 16 hh + l: low four bits from ql[64 h + 32 (p % 2) + 16 hh + l] (high nibble when
// p >= 2), two high bits 2p of qh[32 h + 16 hh + l], minus 32; int8 scale s.
template <>
struct Fmt<DType::Q6_K> {
  static constexpr int kElems = 256, kBytes = 210, kBias = 32;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t ql[8], qh[4], sc[4]; float d; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    Raw x;
#pragma unroll
    for (int i = 0; i < 8; ++i) x.ql[i] = ld32_a2(p + 16 * i + 4 * c);  // i = 4 h + 2 (p % 2) + hh
#pragma unroll
    for (int i = 0; i < 4; ++i) x.qh[i] = ld32_a2(p + 128 + 16 * i + 4 * c);  // i = 2 h + hh
#pragma unroll
    for (int i = 0; i < 4; ++i) x.sc[i] = ld32_a2(p + 192 + 4 * i);
    x.d = f16_bits(ld16(p + 208));
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const int h = s / 8, pp = (s % 8) / 2, hh = s % 2;
    const uint32_t w = r.ql[4 * h + 2 * (pp % 2) + hh];
    const uint32_t nib = pp >= 2 ? (w >> 4) & kLow4 : w & kLow4;
    return nib | (((r.qh[2 * h + hh] >> (2 * pp)) & 0x03030303u) << 4);
  }
  __device__ static void scale(const Raw& r, int s, float& d, float&) {
    d = r.d * static_cast<float>(static_cast<int8_t>(byte_of(r.sc[s / 4], s % 4)));
  }
};

// IQ4_XS: eight sub-blocks of 32 laid out as IQ4_NL blocks without their own f16 scale; 6-bit sub-block scales
// (low four bits in scales_l, high two in scales_h) minus 32.
template <>
struct Fmt<DType::IQ4_XS> {
  static constexpr int kElems = 256, kBytes = 136, kBias = 128;
  static constexpr bool kHasMin = false;
  struct Raw { uint32_t q[8], hdr, sl; };
  __device__ static Raw load(const RowSrc& r, int64_t b, int c) {
    const uint8_t* p = r.w + b * kBytes;
    Raw x;
#pragma unroll
    for (int i = 0; i < 8; ++i) x.q[i] = ld32(p + 8 + 16 * i + 4 * c);
    x.hdr = ld32(p);
    x.sl = ld32(p + 4);
    return x;
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    const uint32_t w = r.q[s / 2];
    return Table16<quant::kIQ4NLValues>::map(s % 2 ? (w >> 4) & kLow4 : w & kLow4);
  }
  __device__ static void scale(const Raw& r, int s, float& d, float&) {
    const int ib = s / 2;
    const uint32_t lo = (byte_of(r.sl, ib / 2) >> (4 * (ib % 2))) & 0xF;
    const uint32_t hi = ((r.hdr >> 16) >> (2 * ib)) & 0x3;
    d = f16_bits(r.hdr) * static_cast<float>(static_cast<int>(lo | (hi << 4)) - 32);
  }
};

// MLX affine with BITS-bit codes: blocks of 32 elements (4 * BITS bytes of the row's bit stream, word aligned) that
// share one group's scale and bias (groups are multiples of 32).
template <int BITS, typename Ts>
struct Affine {
  static constexpr int kElems = 32, kBytes = 4 * BITS, kBias = 0;
  static constexpr bool kHasMin = true;
  struct Raw { uint32_t v[2]; float s, b; };
  int group;  // runtime group size
  // BITS * 4 bits starting at bit `pos` of the block (never past its end).
  __device__ static uint32_t bits_at(const uint8_t* blk, int pos) {
    const int wi = pos >> 5, off = pos & 31;
    const uint32_t lo = ld32(blk + 4 * wi);
    uint32_t v = lo >> off;
    if (off + 4 * BITS > 32) v |= ld32(blk + 4 * wi + 4) << (32 - off);
    return v;
  }
  __device__ Raw load(const RowSrc& r, int64_t b, int c) const {
    const uint8_t* p = r.w + b * kBytes;
    const int64_t gi = b * kElems / group;
    return {{bits_at(p, 4 * c * BITS), bits_at(p, (16 + 4 * c) * BITS)},
            to_f32(reinterpret_cast<const Ts*>(r.scales)[gi]), to_f32(reinterpret_cast<const Ts*>(r.biases)[gi])};
  }
  __device__ static uint32_t quants(const Raw& r, int s) {
    constexpr uint32_t mask = (1u << BITS) - 1;
    const uint32_t v = r.v[s];
    if constexpr (BITS == 8) return v;
    return (v & mask) | ((v >> BITS) & mask) << 8 | ((v >> (2 * BITS)) & mask) << 16 |
           ((v >> (3 * BITS)) & mask) << 24;
  }
  __device__ static void scale(const Raw& r, int, float& d, float& m) {
    d = r.s;
    m = r.b;
  }
};

// GGML formats need no runtime state; a thin adapter gives them the same (stateful) interface as Affine.
template <DType T>
struct Ggml : Fmt<T> {
  __device__ typename Fmt<T>::Raw load(const RowSrc& r, int64_t b, int c) const { return Fmt<T>::load(r, b, c); }
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

__device__ __forceinline__ float sat_f16_range(float v) { return fminf(fmaxf(v, -65504.0f), 65504.0f); }

__device__ __forceinline__ uint32_t pack_h2(float a, float b) {
  const __half2 h = __floats2half2_rn(sat_f16_range(a), sat_f16_range(b));
  return *reinterpret_cast<const uint32_t*>(&h);
}

// x[k .. k + 3] of one row as two f16 pairs; zeros past M.
template <typename Tx>
__device__ __forceinline__ void load_x4(const Tx* row, bool live, bool vec, uint32_t& b0, uint32_t& b1) {
  if (!live) {
    b0 = b1 = 0;
    return;
  }
  if constexpr (std::is_same_v<Tx, __half>) {
    if (vec) {
      const uint2 v = __ldg(reinterpret_cast<const uint2*>(row));
      b0 = v.x;
      b1 = v.y;
      return;
    }
  }
  float v[4];
  if (vec && sizeof(Tx) == 4) {
    const float4 f = __ldg(reinterpret_cast<const float4*>(row));
    v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
  } else if (vec && sizeof(Tx) == 2) {
    const uint2 raw = __ldg(reinterpret_cast<const uint2*>(row));
    const Tx* e = reinterpret_cast<const Tx*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = to_f32(e[i]);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = to_f32(row[i]);
  }
  b0 = pack_h2(v[0], v[1]);
  b1 = pack_h2(v[2], v[3]);
}

inline constexpr int kWarps = 8;

// One block: 16 rows of W, kWarps warps splitting K in chunks (4 blocks of the 32-element formats, one super-block
// of the K formats: the loads of a whole chunk are issued before its arithmetic), NT tiles of 8 rows of x. One tile
// (M <= 8) fits 128 registers, so two blocks (16 warps) stay resident per SM; two tiles need more for some formats.
template <typename F, typename Tx, int NT>
__global__ void __launch_bounds__(kWarps * 32, NT == 1 ? 2 : 1) qgemv_kernel(kern::QMatmulParams p, F fmt) {
  constexpr int kSteps = F::kElems / 16;
  constexpr int kPerChunk = F::kElems == 32 ? 4 : 1;  // blocks per chunk
  constexpr int kCols = 8 * NT;
  __shared__ float partial[kWarps][16 * kCols];
  pdl_wait();
  pdl_trigger();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, c = lane & 3;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kCols;
  const int64_t ra = row0 + g < p.N ? row0 + g : p.N - 1;  // rows past N repeat the last row, never written
  const int64_t rb = row0 + g + 8 < p.N ? row0 + g + 8 : p.N - 1;
  const int64_t groups_per_row = p.layout == kern::QWeight::Affine ? p.K / p.group : 0;
  const int64_t ts = p.layout == kern::QWeight::Affine ? (p.ts == DType::F32 ? 4 : 2) : 0;
  auto src = [&](int64_t r) {
    RowSrc s;
    s.w = static_cast<const uint8_t*>(p.w) + r * p.row_bytes;
    s.scales = static_cast<const uint8_t*>(p.scales) + r * groups_per_row * ts;
    s.biases = static_cast<const uint8_t*>(p.biases) + r * groups_per_row * ts;
    return s;
  };
  const RowSrc sa = src(ra), sb = src(rb);
  const Tx* x = static_cast<const Tx*>(p.x);
  const bool xvec = (reinterpret_cast<uintptr_t>(p.x) % (4 * sizeof(Tx))) == 0 && (p.ldx % 4) == 0;
  bool live[NT];
  const Tx* xrow[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    const int64_t m = m0 + t * 8 + g;
    live[t] = m < p.M;
    xrow[t] = x + (live[t] ? m : 0) * p.ldx + 4 * c;
  }
  constexpr uint32_t kOnes = 0x3C003C00u;  // f16 pair (1, 1)

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.0f;

  const int64_t nblk = p.K / F::kElems;
  for (int64_t b0 = static_cast<int64_t>(warp) * kPerChunk; b0 < nblk; b0 += kWarps * kPerChunk) {
    typename F::Raw wa[kPerChunk], wb[kPerChunk];
#pragma unroll
    for (int i = 0; i < kPerChunk; ++i) {
      if (b0 + i < nblk) {
        wa[i] = fmt.load(sa, b0 + i, c);
        wb[i] = fmt.load(sb, b0 + i, c);
      }
    }
#pragma unroll
    for (int i = 0; i < kPerChunk; ++i) {
      if (b0 + i >= nblk) break;
#pragma unroll
      for (int s = 0; s < kSteps; ++s) {
        const int64_t k = (b0 + i) * F::kElems + 16 * s;
        uint32_t bx[NT][2];
#pragma unroll
        for (int t = 0; t < NT; ++t) load_x4(xrow[t] + k, live[t], xvec, bx[t][0], bx[t][1]);
        uint32_t a0, a1, a2, a3;
        bytes_to_h2<F::kBias>(F::quants(wa[i], s), a0, a2);
        bytes_to_h2<F::kBias>(F::quants(wb[i], s), a1, a3);
        float da, ma = 0.0f, db, mb = 0.0f;
        F::scale(wa[i], s, da, ma);
        F::scale(wb[i], s, db, mb);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          float q[4] = {0.0f, 0.0f, 0.0f, 0.0f};
          mma_16816(q, a0, a1, a2, a3, bx[t][0], bx[t][1]);
          acc[t][0] = fmaf(da, q[0], acc[t][0]);
          acc[t][1] = fmaf(da, q[1], acc[t][1]);
          acc[t][2] = fmaf(db, q[2], acc[t][2]);
          acc[t][3] = fmaf(db, q[3], acc[t][3]);
          if constexpr (F::kHasMin) {
            float sx[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            mma_16816(sx, kOnes, kOnes, kOnes, kOnes, bx[t][0], bx[t][1]);
            acc[t][0] = fmaf(ma, sx[0], acc[t][0]);
            acc[t][1] = fmaf(ma, sx[1], acc[t][1]);
            acc[t][2] = fmaf(mb, sx[2], acc[t][2]);
            acc[t][3] = fmaf(mb, sx[3], acc[t][3]);
          }
        }
      }
    }
  }
  // Accumulator layout: acc[t][0..1] row g, x rows t*8 + 2c, + 1; acc[t][2..3] row g + 8.
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float* pw = partial[warp];
    pw[g * kCols + t * 8 + 2 * c] = acc[t][0];
    pw[g * kCols + t * 8 + 2 * c + 1] = acc[t][1];
    pw[(g + 8) * kCols + t * 8 + 2 * c] = acc[t][2];
    pw[(g + 8) * kCols + t * 8 + 2 * c + 1] = acc[t][3];
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
  return launch_status(wide ? launch_kernel(qgemv_kernel<F, Tx, 2>, grid, block, stream, true, p, fmt)
                            : launch_kernel(qgemv_kernel<F, Tx, 1>, grid, block, stream, true, p, fmt),
                       "matmul");
}

}  // namespace mlxn::cuda::qmm

namespace mlxn::cuda {

template <DType T, typename Tx>
Status launch_qmatmul_ggml(const kern::QMatmulParams& p, const ExecContext& ctx) {
  if (p.M == 0 || p.N == 0) return Status::ok();
  return qmm::launch_tiles<qmm::Ggml<T>, Tx>(p, qmm::Ggml<T>{}, static_cast<cudaStream_t>(ctx.stream));
}

template <int BITS, typename Tx>
Status launch_qmatmul_affine(const kern::QMatmulParams& p, const ExecContext& ctx) {
  if (p.M == 0 || p.N == 0) return Status::ok();
  auto stream = static_cast<cudaStream_t>(ctx.stream);
  return dispatch_float(p.ts, "matmul", "scales", [&](auto tag) {
    using Ts = typename decltype(tag)::type;
    qmm::Affine<BITS, Ts> f;
    f.group = p.group;
    return qmm::launch_tiles<qmm::Affine<BITS, Ts>, Tx>(p, f, stream);
  });
}

}  // namespace mlxn::cuda
