// Reference dequantization of the GGML block formats (ggml-common.h layouts). Each decoder performs the same float
// operations in the same order as ggml's dequantize_row_* so results are bit-identical; this file is compiled with
// -ffp-contract=off (src/io/sources.cmake) so no multiply-add is fused.
#include <bit>
#include <cstring>

#include "mlxn/core/half.h"
#include "mlxn/quant/blocks.h"
#include "mlxn/quant/quant.h"
#include "quant/internal.h"

static_assert(std::endian::native == std::endian::little, "the block decoders assume a little-endian host");

namespace mlxn::quant {
namespace {

template <typename Block>
Block load_block(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof(Block));
  return b;
}

inline void store(float* dst, int64_t i, float v) { std::memcpy(dst + i, &v, sizeof(float)); }

// Low nibbles hold elements [0, 16), high nibbles [16, 32).
void dq_q4_0(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ4_0>(p);
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    store(y, j, static_cast<float>((b.qs[j] & 0x0F) - 8) * d);
    store(y, j + kQK / 2, static_cast<float>((b.qs[j] >> 4) - 8) * d);
  }
}

void dq_q4_1(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ4_1>(p);
  const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
  for (int j = 0; j < kQK / 2; ++j) {
    store(y, j, static_cast<float>(b.qs[j] & 0x0F) * d + m);
    store(y, j + kQK / 2, static_cast<float>(b.qs[j] >> 4) * d + m);
  }
}

// Bit j of the 32-bit qh word is the fifth bit of element j.
inline uint32_t load_u32(const uint8_t* q) {
  uint32_t v;
  std::memcpy(&v, q, 4);
  return v;
}

void dq_q5_0(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ5_0>(p);
  const float d = f16_to_f32(b.d);
  const uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    store(y, j, static_cast<float>(lo - 16) * d);
    store(y, j + kQK / 2, static_cast<float>(hi - 16) * d);
  }
}

void dq_q5_1(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ5_1>(p);
  const float d = f16_to_f32(b.d), m = f16_to_f32(b.m);
  const uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (b.qs[j] & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (b.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    store(y, j, static_cast<float>(lo) * d + m);
    store(y, j + kQK / 2, static_cast<float>(hi) * d + m);
  }
}

void dq_q8_0(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ8_0>(p);
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK; ++j) store(y, j, static_cast<float>(b.qs[j]) * d);
}

void dq_q8_1(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ8_1>(p);
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK; ++j) store(y, j, static_cast<float>(b.qs[j]) * d);
}

// 16 sub-blocks of 16; each qs byte holds four 2-bit values, one for each of four sub-blocks 32 elements apart.
void dq_q2_K(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ2_K>(p);
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  int sub = 0;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = b.qs + 32 * half;
    for (int shift = 0; shift < 8; shift += 2) {
      for (int part = 0; part < 2; ++part, ++sub) {
        const uint8_t sc = b.scales[sub];
        const float dl = d * static_cast<float>(sc & 0x0F);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 0; l < 16; ++l)
          store(y, 16 * sub + l, dl * static_cast<float>((q[16 * part + l] >> shift) & 3) - ml);
      }
    }
  }
}

// Sixteen 6-bit scales: low nibbles in bytes 0..7 (two per byte), high 2 bits in bytes 8..11.
void q3_k_scales(const uint8_t* s, int out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (s[j] & 0x0F) : (s[j - 8] >> 4);
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = (low | (high << 4)) - 32;
  }
}

void dq_q3_K(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ3_K>(p);
  const float d = f16_to_f32(b.d);
  int sc[16];
  q3_k_scales(b.scales, sc);
  int sub = 0;
  uint8_t hbit = 1;
  for (int half = 0; half < 2; ++half) {
    const uint8_t* q = b.qs + 32 * half;
    for (int shift = 0; shift < 8; shift += 2, hbit = static_cast<uint8_t>(hbit << 1)) {
      for (int part = 0; part < 2; ++part, ++sub) {
        const float dl = d * static_cast<float>(sc[sub]);
        for (int l = 0; l < 16; ++l) {
          const int idx = 16 * part + l;
          const int v = ((q[idx] >> shift) & 3) - ((b.hmask[idx] & hbit) ? 0 : 4);
          store(y, 16 * sub + l, dl * static_cast<float>(v));
        }
      }
    }
  }
}

}  // namespace

void k4_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

namespace {

void dq_q4_K(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ4_K>(p);
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  for (int pair = 0; pair < 4; ++pair) {
    const uint8_t* q = b.qs + 32 * pair;
    uint8_t sc, m;
    k4_scale_min(2 * pair, b.scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    k4_scale_min(2 * pair + 1, b.scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) store(y, 64 * pair + l, d1 * static_cast<float>(q[l] & 0x0F) - m1);
    for (int l = 0; l < 32; ++l) store(y, 64 * pair + 32 + l, d2 * static_cast<float>(q[l] >> 4) - m2);
  }
}

void dq_q5_K(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ5_K>(p);
  const float d = f16_to_f32(b.d), dmin = f16_to_f32(b.dmin);
  for (int pair = 0; pair < 4; ++pair) {
    const uint8_t* ql = b.qs + 32 * pair;
    const uint8_t u1 = static_cast<uint8_t>(1u << (2 * pair)), u2 = static_cast<uint8_t>(2u << (2 * pair));
    uint8_t sc, m;
    k4_scale_min(2 * pair, b.scales, &sc, &m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    k4_scale_min(2 * pair + 1, b.scales, &sc, &m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l)
      store(y, 64 * pair + l, d1 * static_cast<float>((ql[l] & 0x0F) + ((b.qh[l] & u1) ? 16 : 0)) - m1);
    for (int l = 0; l < 32; ++l)
      store(y, 64 * pair + 32 + l, d2 * static_cast<float>((ql[l] >> 4) + ((b.qh[l] & u2) ? 16 : 0)) - m2);
  }
}

void dq_q6_K(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ6_K>(p);
  const float d = f16_to_f32(b.d);
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = b.ql + 64 * half;
    const uint8_t* qh = b.qh + 32 * half;
    const int8_t* sc = b.scales + 8 * half;
    float* out = y + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      store(out, l, d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1));
      store(out, l + 32, d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2));
      store(out, l + 64, d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3));
      store(out, l + 96, d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4));
    }
  }
}

void dq_q8_K(const uint8_t* p, float* y) {
  const auto b = load_block<BlockQ8_K>(p);
  for (int j = 0; j < kQK_K; ++j) store(y, j, b.d * static_cast<float>(b.qs[j]));
}

void dq_iq4_nl(const uint8_t* p, float* y) {
  const auto b = load_block<BlockIQ4_NL>(p);
  const float d = f16_to_f32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    store(y, j, d * static_cast<float>(kIQ4NLValues[b.qs[j] & 0x0F]));
    store(y, j + kQK / 2, d * static_cast<float>(kIQ4NLValues[b.qs[j] >> 4]));
  }
}

// Eight sub-blocks of 32 with 6-bit scales: low nibble in scales_l, high 2 bits in scales_h.
void dq_iq4_xs(const uint8_t* p, float* y) {
  const auto b = load_block<BlockIQ4_XS>(p);
  const float d = f16_to_f32(b.d);
  for (int ib = 0; ib < kQK_K / 32; ++ib) {
    const int ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0x0F) | (((b.scales_h >> (2 * ib)) & 3) << 4);
    const float dl = d * static_cast<float>(ls - 32);
    const uint8_t* qs = b.qs + 16 * ib;
    for (int j = 0; j < 16; ++j) {
      store(y, 32 * ib + j, dl * static_cast<float>(kIQ4NLValues[qs[j] & 0x0F]));
      store(y, 32 * ib + j + 16, dl * static_cast<float>(kIQ4NLValues[qs[j] >> 4]));
    }
  }
}

void dq_mxfp4(const uint8_t* p, float* y) {
  const auto b = load_block<BlockMXFP4>(p);
  const float d = e8m0_to_f32_half(b.e);
  for (int j = 0; j < kQK / 2; ++j) {
    store(y, j, static_cast<float>(kMXFP4Values[b.qs[j] & 0x0F]) * d);
    store(y, j + kQK / 2, static_cast<float>(kMXFP4Values[b.qs[j] >> 4]) * d);
  }
}

using BlockFn = void (*)(const uint8_t*, float*);

BlockFn block_decoder(DType t) {
  switch (t) {
    case DType::Q4_0: return dq_q4_0;
    case DType::Q4_1: return dq_q4_1;
    case DType::Q5_0: return dq_q5_0;
    case DType::Q5_1: return dq_q5_1;
    case DType::Q8_0: return dq_q8_0;
    case DType::Q8_1: return dq_q8_1;
    case DType::Q2_K: return dq_q2_K;
    case DType::Q3_K: return dq_q3_K;
    case DType::Q4_K: return dq_q4_K;
    case DType::Q5_K: return dq_q5_K;
    case DType::Q6_K: return dq_q6_K;
    case DType::Q8_K: return dq_q8_K;
    case DType::IQ4_NL: return dq_iq4_nl;
    case DType::IQ4_XS: return dq_iq4_xs;
    case DType::MXFP4: return dq_mxfp4;
    default: return nullptr;
  }
}

template <typename T>
void convert_plain(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    store(dst, i, static_cast<float>(v));
  }
}

}  // namespace

Status dequantize(DType t, const void* src, size_t src_bytes, float* dst, int64_t n) {
  MLXN_ASSIGN_OR_RETURN(size_t need, dtype_storage_bytes(t, n));
  if (src_bytes != need)
    return invalid_argument("dequantize", src_bytes, " bytes given for ", n, " ", t, " elements of ", need, " bytes");
  if (n == 0) return Status::ok();
  if (src == nullptr || dst == nullptr) return invalid_argument("dequantize", "null pointer");
  const auto* s = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::F32: std::memcpy(dst, s, need); return Status::ok();
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        store(dst, i, f16_to_f32(h));
      }
      return Status::ok();
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, s + 2 * i, 2);
        store(dst, i, bf16_to_f32(h));
      }
      return Status::ok();
    case DType::F64: convert_plain<double>(s, dst, n); return Status::ok();
    case DType::I8: convert_plain<int8_t>(s, dst, n); return Status::ok();
    case DType::U8: convert_plain<uint8_t>(s, dst, n); return Status::ok();
    case DType::I16: convert_plain<int16_t>(s, dst, n); return Status::ok();
    case DType::U16: convert_plain<uint16_t>(s, dst, n); return Status::ok();
    case DType::I32: convert_plain<int32_t>(s, dst, n); return Status::ok();
    case DType::U32: convert_plain<uint32_t>(s, dst, n); return Status::ok();
    case DType::I64: convert_plain<int64_t>(s, dst, n); return Status::ok();
    default: break;
  }
  const BlockFn fn = block_decoder(t);
  if (fn == nullptr) return unsupported("dequantize", "no decoder for ", t);
  const auto& info = dtype_info(t);
  const int64_t n_blocks = n / info.block_elems;
  for (int64_t i = 0; i < n_blocks; ++i) fn(s + i * info.block_bytes, dst + i * info.block_elems);
  return Status::ok();
}

}  // namespace mlxn::quant
