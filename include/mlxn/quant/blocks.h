// Byte layouts of the GGML block formats (ggml-common.h), as plain structs of little-endian fields. f16 fields are
// raw IEEE binary16 bits (uint16_t); the E8M0 scale of MXFP4 is a raw exponent byte. Host code reads blocks from
// files with memcpy (file data need not be aligned); device kernels can use the structs directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mlxn/core/dtype.h"

namespace mlxn::quant {

inline constexpr int kQK = 32;    // elements per block of the 32-wide formats
inline constexpr int kQK_K = 256;  // elements per super-block of the K formats and IQ4_XS
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

struct BlockQ4_0 { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[kQK / 2]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[kQK / 2]; };
struct BlockQ8_0 { uint16_t d; int8_t qs[kQK]; };
struct BlockQ8_1 { uint16_t d; uint16_t s; int8_t qs[kQK]; };  // s = d * sum(qs)
struct BlockQ2_K { uint8_t scales[kQK_K / 16]; uint8_t qs[kQK_K / 4]; uint16_t d; uint16_t dmin; };
struct BlockQ3_K { uint8_t hmask[kQK_K / 8]; uint8_t qs[kQK_K / 4]; uint8_t scales[12]; uint16_t d; };
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qs[kQK_K / 2]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[kKScaleBytes]; uint8_t qh[kQK_K / 8]; uint8_t qs[kQK_K / 2]; };
struct BlockQ6_K { uint8_t ql[kQK_K / 2]; uint8_t qh[kQK_K / 4]; int8_t scales[kQK_K / 16]; uint16_t d; };
struct BlockQ8_K { float d; int8_t qs[kQK_K]; int16_t bsums[kQK_K / 16]; };
struct BlockIQ4_NL { uint16_t d; uint8_t qs[kQK / 2]; };
struct BlockIQ4_XS { uint16_t d; uint16_t scales_h; uint8_t scales_l[kQK_K / 64]; uint8_t qs[kQK_K / 2]; };
struct BlockMXFP4 { uint8_t e; uint8_t qs[kQK / 2]; };

// Block struct of each quantized DType, tied to the (elements, bytes) the dtype table declares.
template <DType T> struct BlockOf;
template <> struct BlockOf<DType::Q4_0> { using type = BlockQ4_0; };
template <> struct BlockOf<DType::Q4_1> { using type = BlockQ4_1; };
template <> struct BlockOf<DType::Q5_0> { using type = BlockQ5_0; };
template <> struct BlockOf<DType::Q5_1> { using type = BlockQ5_1; };
template <> struct BlockOf<DType::Q8_0> { using type = BlockQ8_0; };
template <> struct BlockOf<DType::Q8_1> { using type = BlockQ8_1; };
template <> struct BlockOf<DType::Q2_K> { using type = BlockQ2_K; };
template <> struct BlockOf<DType::Q3_K> { using type = BlockQ3_K; };
template <> struct BlockOf<DType::Q4_K> { using type = BlockQ4_K; };
template <> struct BlockOf<DType::Q5_K> { using type = BlockQ5_K; };
template <> struct BlockOf<DType::Q6_K> { using type = BlockQ6_K; };
template <> struct BlockOf<DType::Q8_K> { using type = BlockQ8_K; };
template <> struct BlockOf<DType::IQ4_NL> { using type = BlockIQ4_NL; };
template <> struct BlockOf<DType::IQ4_XS> { using type = BlockIQ4_XS; };
template <> struct BlockOf<DType::MXFP4> { using type = BlockMXFP4; };

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);
static_assert(sizeof(BlockIQ4_NL) == 18 && sizeof(BlockIQ4_XS) == 136 && sizeof(BlockMXFP4) == 17);

// The 16 non-linear levels of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl).
inline constexpr int8_t kIQ4NLValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};
// FP4 E2M1 levels times two (ggml's kvalues_mxfp4); the E8M0 scale is halved to match.
inline constexpr int8_t kMXFP4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 127) / 2 as f32 bits (ggml_e8m0_to_fp32_half): e < 2 gives a subnormal.
inline float e8m0_to_f32_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e - 1) << 23);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace mlxn::quant
