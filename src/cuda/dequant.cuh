// Row dequantizer: GGML block formats (ggml-common.h layouts) and MLX affine rows to f32 / f16 / bf16, optionally
// gathering rows by id (the quantized embedding lookup) and scaling them. Included by the generated instance files;
// src/cuda/dequant.cu dispatches through the kernel table.
//
// Exactness: every element is formed by the same f32 operations, in the same order and without fused multiply-adds
// (the __f*_rn intrinsics are never contracted), as the CPU reference src/quant/dequantize.cpp (ggml's
// dequantize_row_*) and src/quant/affine.cpp (MLX: scale * q + bias), so f32 output is bit-identical to it and f16 /
// bf16 output is that value rounded once (nearest even).
//
// Work split: one thread per unit of 8 consecutive output elements, consecutive threads on consecutive units, so
// every warp writes 512 (f16 / bf16) or 1024 (f32) contiguous bytes with 16-byte stores; the block bytes a unit
// needs (a scale, 4 to 8 bytes of codes) are read with narrow loads that the neighbouring units of the same block
// share through L1. Blocks are 2-byte aligned at best (18-, 22-, 34-byte blocks), hence no wide loads of them.
#pragma once

#include "cuda/common.cuh"
#include "kernels/dequantize.h"
#include "kernels/embedding.h"
#include "mlxn/quant/blocks.h"

namespace mlxn::cuda::dq {

inline constexpr int kThreads = 256;

// f32 arithmetic that the compiler may not fuse into a multiply-add (the reference rounds each step).
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }

__device__ __forceinline__ uint32_t ld8(const uint8_t* p) { return __ldg(p); }
__device__ __forceinline__ uint32_t ld16(const uint8_t* p) { return __ldg(reinterpret_cast<const uint16_t*>(p)); }
__device__ __forceinline__ float f16(const uint8_t* p) { return __half2float(__ushort_as_half(ld16(p))); }

// 8 bytes at a 2-byte aligned address as two little-endian words.
__device__ __forceinline__ void ld8_a2(const uint8_t* p, uint32_t (&w)[2]) {
  w[0] = ld16(p) | ld16(p + 2) << 16;
  w[1] = ld16(p + 4) | ld16(p + 6) << 16;
}
// 8 bytes at any address.
__device__ __forceinline__ void ld8_a1(const uint8_t* p, uint32_t (&w)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h)
    w[h] = ld8(p + 4 * h) | ld8(p + 4 * h + 1) << 8 | ld8(p + 4 * h + 2) << 16 | ld8(p + 4 * h + 3) << 24;
}
__device__ __forceinline__ uint32_t byte_at(const uint32_t (&w)[2], int i) {
  return (w[i / 4] >> (8 * (i % 4))) & 0xFFu;
}
// Nibble i of the 8 bytes: low (hi = false) or high half of byte i.
__device__ __forceinline__ uint32_t nib_at(const uint32_t (&w)[2], int i, bool hi) {
  return (byte_at(w, i) >> (hi ? 4 : 0)) & 0xFu;
}

// Entry i of a 16-entry signed table as four packed words (a runtime index into a constant array would be a
// divergent constant-memory access).
template <const int8_t (&V)[16]>
struct Lut16 {
  static constexpr uint32_t word(int i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i])) |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 1])) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 2])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(V[4 * i + 3])) << 24;
  }
  static constexpr uint32_t kW0 = word(0), kW1 = word(1), kW2 = word(2), kW3 = word(3);
  __device__ static __forceinline__ int at(uint32_t i) {
    const uint32_t w = i < 8 ? (i < 4 ? kW0 : kW1) : (i < 12 ? kW2 : kW3);
    return static_cast<int8_t>((w >> (8 * (i & 3))) & 0xFFu);
  }
};

__device__ __forceinline__ float e8m0_half(uint32_t e) {
  return __uint_as_float(e < 2 ? (0x00200000u << e) : ((e - 1) << 23));
}

// ---- GGML formats: unit s of a block is its elements 8 s .. 8 s + 7 ----
template <DType T>
struct Fmt;

// Q4_0 / Q4_1 / Q5_x / IQ4_NL / MXFP4: element e < 16 is the low nibble of qs[e], e >= 16 the high nibble of
// qs[e - 16]; unit s reads qs[8 (s % 2) ..] and takes the high nibbles for s >= 2.
struct Small {
  static constexpr int kElems = 32, kUnits = 4;
};

template <>
struct Fmt<DType::Q4_0> : Small {
  static constexpr int kBytes = 18;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = f16(b);
    uint32_t q[2];
    ld8_a2(b + 2 + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = mul(static_cast<float>(static_cast<int>(nib_at(q, i, s >= 2)) - 8), d);
  }
};

template <>
struct Fmt<DType::Q4_1> : Small {
  static constexpr int kBytes = 20;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = f16(b), m = f16(b + 2);
    uint32_t q[2];
    ld8_a2(b + 4 + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = add(mul(static_cast<float>(nib_at(q, i, s >= 2)), d), m);
  }
};

// Bit e of the 32-bit qh word is the fifth bit of element e.
template <>
struct Fmt<DType::Q5_0> : Small {
  static constexpr int kBytes = 22;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = f16(b);
    const uint32_t qh = ld16(b + 2) | ld16(b + 4) << 16;
    uint32_t q[2];
    ld8_a2(b + 6 + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int code = static_cast<int>(nib_at(q, i, s >= 2) | ((qh >> (8 * s + i)) & 1u) << 4);
      v[i] = mul(static_cast<float>(code - 16), d);
    }
  }
};

template <>
struct Fmt<DType::Q5_1> : Small {
  static constexpr int kBytes = 24;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = f16(b), m = f16(b + 2);
    const uint32_t qh = ld16(b + 4) | ld16(b + 6) << 16;
    uint32_t q[2];
    ld8_a2(b + 8 + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t code = nib_at(q, i, s >= 2) | ((qh >> (8 * s + i)) & 1u) << 4;
      v[i] = add(mul(static_cast<float>(code), d), m);
    }
  }
};

template <>
struct Fmt<DType::Q8_0> : Small {
  static constexpr int kBytes = 34;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = f16(b);
    uint32_t q[2];
    ld8_a2(b + 2 + 8 * s, q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = mul(static_cast<float>(static_cast<int8_t>(byte_at(q, i))), d);
  }
};

template <>
struct Fmt<DType::IQ4_NL> : Small {
  static constexpr int kBytes = 18;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = f16(b);
    uint32_t q[2];
    ld8_a2(b + 2 + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = mul(d, static_cast<float>(Lut16<quant::kIQ4NLValues>::at(nib_at(q, i, s >= 2))));
  }
};

template <>
struct Fmt<DType::MXFP4> : Small {
  static constexpr int kBytes = 17;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const float d = e8m0_half(ld8(b));
    uint32_t q[2];
    ld8_a1(b + 1 + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = mul(static_cast<float>(Lut16<quant::kMXFP4Values>::at(nib_at(q, i, s >= 2))), d);
  }
};

// K formats: 256-element super-blocks, 32 units.
struct Super {
  static constexpr int kElems = 256, kUnits = 32;
};

// Q2_K / Q3_K: sixteen sub-blocks of 16; sub-block j = 8 h + 2 k + p (h half, k shift step, p part) takes bits
// 2 k .. 2 k + 1 of qs[32 h + 16 p + l], l < 16. Unit s is sub-block s / 2, l = 8 (s % 2) ...
template <>
struct Fmt<DType::Q2_K> : Super {
  static constexpr int kBytes = 84;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const int j = s / 2, h = j / 8, shift = 2 * ((j % 8) / 2), part = j % 2;
    const float d = f16(b + 80), dmin = f16(b + 82);
    const uint32_t sc = ld8(b + j);
    const float dl = mul(d, static_cast<float>(sc & 0xFu));
    const float ml = mul(dmin, static_cast<float>(sc >> 4));
    uint32_t q[2];
    ld8_a2(b + 16 + 32 * h + 16 * part + 8 * (s % 2), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = sub(mul(dl, static_cast<float>((byte_at(q, i) >> shift) & 3u)), ml);
  }
};

// Q3_K: hmask[32] at 0, qs[64] at 32, scales[12] at 96, d at 108. The third bit of element (h, k, p, l) is bit 4 h + k
// of hmask[16 p + l] (clear: minus 4); sixteen 6-bit scales, low nibbles in bytes 0..7, high pairs in bytes 8..11.
template <>
struct Fmt<DType::Q3_K> : Super {
  static constexpr int kBytes = 110;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const int j = s / 2, h = j / 8, k = (j % 8) / 2, part = j % 2;
    const float d = f16(b + 108);
    const uint32_t low = j < 8 ? ld8(b + 96 + j) & 0xFu : ld8(b + 96 + j - 8) >> 4;
    const uint32_t high = (ld8(b + 96 + 8 + j % 4) >> (2 * (j / 4))) & 3u;
    const float dl = mul(d, static_cast<float>(static_cast<int>(low | high << 4) - 32));
    const int idx = 16 * part + 8 * (s % 2);
    uint32_t q[2], hm[2];
    ld8_a2(b + 32 + 32 * h + idx, q);
    ld8_a2(b + idx, hm);
    const uint32_t hbit = 1u << (4 * h + k);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int code = static_cast<int>((byte_at(q, i) >> (2 * k)) & 3u) - ((byte_at(hm, i) & hbit) ? 0 : 4);
      v[i] = mul(dl, static_cast<float>(code));
    }
  }
};

// 6-bit scale and min of sub-block j from the 12 packed bytes of Q4_K / Q5_K (ggml's get_scale_min_k4).
__device__ __forceinline__ void k4_scale_min(const uint8_t* sc, int j, uint32_t& s, uint32_t& m) {
  if (j < 4) {
    s = ld8(sc + j) & 63u;
    m = ld8(sc + j + 4) & 63u;
  } else {
    s = (ld8(sc + j + 4) & 0xFu) | (ld8(sc + j - 4) >> 6) << 4;
    m = (ld8(sc + j + 4) >> 4) | (ld8(sc + j) >> 6) << 4;
  }
}

// Q4_K: d, dmin, scales[12], qs[128]. Pair p (64 elements) reads qs[32 p ..]: low nibbles are sub-block 2 p, high
// nibbles sub-block 2 p + 1. Unit s: pair s / 8, high for s % 8 >= 4, bytes 8 (s % 4) ...
template <>
struct Fmt<DType::Q4_K> : Super {
  static constexpr int kBytes = 144;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const int pair = s / 8;
    const bool hi = (s % 8) >= 4;
    uint32_t sc, m;
    k4_scale_min(b + 4, 2 * pair + (hi ? 1 : 0), sc, m);
    const float dd = mul(f16(b), static_cast<float>(sc)), mm = mul(f16(b + 2), static_cast<float>(m));
    uint32_t q[2];
    ld8_a2(b + 16 + 32 * pair + 8 * (s % 4), q);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = sub(mul(dd, static_cast<float>(nib_at(q, i, hi))), mm);
  }
};

// Q5_K: Q4_K plus qh[32] at 16 (qs at 48): bit 2 p (low nibbles) or 2 p + 1 (high) of qh[l] adds 16.
template <>
struct Fmt<DType::Q5_K> : Super {
  static constexpr int kBytes = 176;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const int pair = s / 8;
    const bool hi = (s % 8) >= 4;
    uint32_t sc, m;
    k4_scale_min(b + 4, 2 * pair + (hi ? 1 : 0), sc, m);
    const float dd = mul(f16(b), static_cast<float>(sc)), mm = mul(f16(b + 2), static_cast<float>(m));
    const int l0 = 8 * (s % 4);
    uint32_t q[2], qh[2];
    ld8_a2(b + 48 + 32 * pair + l0, q);
    ld8_a2(b + 16 + l0, qh);
    const uint32_t u = (hi ? 2u : 1u) << (2 * pair);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t code = nib_at(q, i, hi) + ((byte_at(qh, i) & u) ? 16u : 0u);
      v[i] = sub(mul(dd, static_cast<float>(code)), mm);
    }
  }
};

// Q6_K: ql[128] at 0, qh[64] at 128, int8 scales[16] at 192, d at 208. Half h (128 elements) uses ql[64 h ..],
// qh[32 h ..], scales[8 h ..]; its quarter r, element l < 32: nibble (r >= 2: high) of ql[l + 32 (r % 2)], bits
// 2 r .. 2 r + 1 of qh[l], scale index l / 16 + 2 r; the value is (d * scale) * (code - 32).
template <>
struct Fmt<DType::Q6_K> : Super {
  static constexpr int kBytes = 210;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const int h = s / 16, r = (s % 16) / 4, l0 = 8 * (s % 4);
    const float d = f16(b + 208);
    const int scale = static_cast<int8_t>(ld8(b + 192 + 8 * h + l0 / 16 + 2 * r));
    const float ds = mul(d, static_cast<float>(scale));
    uint32_t ql[2], qh[2];
    ld8_a2(b + 64 * h + 32 * (r % 2) + l0, ql);
    ld8_a2(b + 128 + 32 * h + l0, qh);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int code = static_cast<int>(nib_at(ql, i, r >= 2) | ((byte_at(qh, i) >> (2 * r)) & 3u) << 4) - 32;
      v[i] = mul(ds, static_cast<float>(code));
    }
  }
};

// IQ4_XS: d, scales_h (u16), scales_l[4], qs[128] at 8. Sub-block ib (32 elements, 16 bytes of qs) has the 6-bit
// scale (nibble ib % 2 of scales_l[ib / 2]) | (bits 2 ib of scales_h) << 4, minus 32. Unit s: ib = s / 4.
template <>
struct Fmt<DType::IQ4_XS> : Super {
  static constexpr int kBytes = 136;
  __device__ static void unit(const uint8_t* b, int s, float (&v)[8]) {
    const int ib = s / 4, w0 = 8 * (s % 4);
    const uint32_t ls = ((ld8(b + 4 + ib / 2) >> (4 * (ib % 2))) & 0xFu) | ((ld16(b + 2) >> (2 * ib)) & 3u) << 4;
    const float dl = mul(f16(b), static_cast<float>(static_cast<int>(ls) - 32));
    uint32_t q[2];
    ld8_a2(b + 8 + 16 * ib + w0 % 16, q);
#pragma unroll
    for (int i = 0; i < 8; ++i)
      v[i] = mul(dl, static_cast<float>(Lut16<quant::kIQ4NLValues>::at(nib_at(q, i, w0 >= 16))));
  }
};

// Unit u of a row of GGML blocks.
template <DType T>
struct Ggml {
  __device__ static __forceinline__ void unit(const kern::DequantParams& p, int64_t r, uint32_t u, float (&v)[8]) {
    using F = Fmt<T>;
    const uint8_t* b =
        static_cast<const uint8_t*>(p.w) + r * p.row_bytes + static_cast<int64_t>(u / F::kUnits) * F::kBytes;
    F::unit(b, static_cast<int>(u % F::kUnits), v);
  }
};

// MLX affine, BITS-bit codes as a little-endian bit stream: the 8 codes of unit u are exactly bytes
// [BITS u, BITS (u + 1)) of the row. One scale and bias per unit (groups are multiples of 32).
template <int BITS>
struct Affine {
  __device__ static __forceinline__ float scale_at(const void* base, DType t, int64_t i) {
    const uint8_t* q = static_cast<const uint8_t*>(base);
    if (t == DType::F32) return __ldg(reinterpret_cast<const float*>(q) + i);
    const uint32_t h = __ldg(reinterpret_cast<const uint16_t*>(q) + i);
    return t == DType::F16 ? __half2float(__ushort_as_half(static_cast<unsigned short>(h))) : __uint_as_float(h << 16);
  }
  __device__ static __forceinline__ void unit(const kern::DequantParams& p, int64_t r, uint32_t u, float (&v)[8]) {
    const uint8_t* q = static_cast<const uint8_t*>(p.w) + r * p.row_bytes + static_cast<int64_t>(u) * BITS;
    uint64_t bits = 0;
#pragma unroll
    for (int i = 0; i < BITS; ++i) bits |= static_cast<uint64_t>(ld8(q + i)) << (8 * i);
    const int64_t gi = r * (p.cols / p.group) + static_cast<int64_t>(u) * 8 / p.group;
    const float scale = scale_at(p.scales, p.ts, gi), bias = scale_at(p.biases, p.ts, gi);
    constexpr uint64_t kMask = (1u << BITS) - 1u;
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = add(mul(scale, static_cast<float>((bits >> (BITS * i)) & kMask)), bias);
  }
};

// One thread per unit over the n x cols / 8 units (fewer than 2^32, checked by the launcher).
template <typename Dec, typename To, bool VEC>
__global__ void __launch_bounds__(kThreads) dequant_kernel(kern::DequantParams p) {
  pdl_wait();  // W, ids or (prefill) the scratch's previous reader may be earlier ops
  pdl_trigger();
  const uint32_t per_row = static_cast<uint32_t>(p.cols / 8);
  const uint64_t g = static_cast<uint64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (g >= static_cast<uint64_t>(p.n) * per_row) return;
  const uint32_t g32 = static_cast<uint32_t>(g);
  const uint32_t t = g32 / per_row, u = g32 - t * per_row;
  int64_t r = t;
  float v[8];
  bool zero = false;
  if (p.ids != nullptr) {
    r = __ldg(p.ids + t);
    zero = r < 0 || r >= p.vocab;
  }
  if (zero) {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = 0.0f;
  } else {
    Dec::unit(p, r, u, v);
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = mul(v[i], p.scale);
  }
  To* out = static_cast<To*>(p.out) + static_cast<int64_t>(t) * p.ldo + static_cast<int64_t>(u) * 8;
  if constexpr (VEC) {
    // Plain (not evict-first) stores: the prefill matmul reads the chunk right back, partly from L2.
    if constexpr (sizeof(To) == 4) {
      reinterpret_cast<float4*>(out)[0] = make_float4(v[0], v[1], v[2], v[3]);
      reinterpret_cast<float4*>(out)[1] = make_float4(v[4], v[5], v[6], v[7]);
    } else {
      uint4 raw;
      To* e = reinterpret_cast<To*>(&raw);
#pragma unroll
      for (int i = 0; i < 8; ++i) e[i] = from_f32<To>(v[i]);
      *reinterpret_cast<uint4*>(out) = raw;
    }
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = from_f32<To>(v[i]);
  }
}

template <typename Dec, typename To>
Status launch(const kern::DequantParams& p, cudaStream_t stream) {
  if (p.n == 0 || p.cols == 0) return Status::ok();
  const uint64_t units = static_cast<uint64_t>(p.n) * static_cast<uint64_t>(p.cols / 8);
  if (units >= (uint64_t{1} << 32)) return unsupported("dequantize", "more than 2^35 elements in one call");
  const bool vec = aligned16(p.out) && (p.ldo * static_cast<int64_t>(sizeof(To))) % 16 == 0;
  const unsigned grid = static_cast<unsigned>((units + kThreads - 1) / kThreads);
  return launch_status(vec ? launch_kernel(dequant_kernel<Dec, To, true>, grid, kThreads, stream, true, p)
                           : launch_kernel(dequant_kernel<Dec, To, false>, grid, kThreads, stream, true, p),
                       "dequantize");
}

}  // namespace mlxn::cuda::dq

namespace mlxn::cuda {

template <DType T, typename To>
Status launch_dequant_ggml(const kern::DequantParams& p, const ExecContext& ctx) {
  return dq::launch<dq::Ggml<T>, To>(p, static_cast<cudaStream_t>(ctx.stream));
}

template <int BITS, typename To>
Status launch_dequant_affine(const kern::DequantParams& p, const ExecContext& ctx) {
  return dq::launch<dq::Affine<BITS>, To>(p, static_cast<cudaStream_t>(ctx.stream));
}

// Embedding lookup of a GGML block-type table: the row dequantizer gathering rows by id.
template <DType T, typename To>
Status launch_embedding_ggml(const kern::EmbeddingParams& e, const ExecContext& ctx) {
  kern::DequantParams p;
  p.layout = kern::QWeight::Ggml;
  p.w = e.table;
  p.out = e.out;
  p.tw = T;
  p.to = e.to;
  p.n = e.n;
  p.cols = e.dim;
  p.row_bytes = e.row_bytes;
  p.ldo = e.dim;
  p.ids = e.ids;
  p.vocab = e.vocab;
  p.scale = e.scale;
  return dq::launch<dq::Ggml<T>, To>(p, static_cast<cudaStream_t>(ctx.stream));
}

}  // namespace mlxn::cuda
