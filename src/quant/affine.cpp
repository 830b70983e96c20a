#include "mlxn/quant/affine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "mlxn/core/half.h"

namespace mlxn::quant {
namespace {

float load_scale(DType t, const uint8_t* p, int64_t i) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p + 2 * i, 2);
  return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

void store_scale(DType t, uint8_t* p, int64_t i, float v) {
  if (t == DType::F32) {
    std::memcpy(p + 4 * i, &v, 4);
    return;
  }
  const uint16_t h = t == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
  std::memcpy(p + 2 * i, &h, 2);
}

bool scale_dtype_ok(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

}  // namespace

Status affine_check(const AffineSpec& spec, int64_t rows, int64_t cols) {
  const int b = spec.bits;
  if (b != 2 && b != 3 && b != 4 && b != 5 && b != 6 && b != 8)
    return invalid_argument("affine", "bits ", b, " is not one of 2, 3, 4, 5, 6, 8");
  if (spec.group_size <= 0 || spec.group_size % 32 != 0)
    return invalid_argument("affine", "group size ", spec.group_size, " is not a positive multiple of 32");
  if (rows < 0 || cols <= 0) return invalid_argument("affine", "invalid matrix [", rows, ", ", cols, "]");
  if (cols % spec.group_size != 0)
    return invalid_argument("affine", "row length ", cols, " is not a multiple of the group size ", spec.group_size);
  if (rows > 0 && cols > std::numeric_limits<int64_t>::max() / rows)
    return invalid_argument("affine", "matrix [", rows, ", ", cols, "] overflows");
  return Status::ok();
}

size_t affine_packed_bytes(const AffineSpec& spec, int64_t rows, int64_t cols) {
  // cols is a multiple of 32, so a row is a whole number of uint32 words.
  return static_cast<size_t>(rows) * static_cast<size_t>(cols / 8) * static_cast<size_t>(spec.bits);
}

Status affine_dequantize(const AffineSpec& spec, int64_t rows, int64_t cols, const void* packed, size_t packed_bytes,
                         DType scale_dtype, const void* scales, const void* biases, float* out) {
  MLXN_TRY(affine_check(spec, rows, cols));
  if (!scale_dtype_ok(scale_dtype))
    return invalid_argument("affine", "scales and biases of type ", scale_dtype, "; expected f16, bf16 or f32");
  if (packed_bytes != affine_packed_bytes(spec, rows, cols))
    return invalid_argument("affine", "packed weight of ", packed_bytes, " bytes; [", rows, ", ", cols, "] at ",
                            spec.bits, " bits needs ", affine_packed_bytes(spec, rows, cols));
  if (rows == 0) return Status::ok();
  const auto* q = static_cast<const uint8_t*>(packed);
  const auto* s = static_cast<const uint8_t*>(scales);
  const auto* bi = static_cast<const uint8_t*>(biases);
  const int64_t groups = cols / spec.group_size;
  const size_t row_bytes = static_cast<size_t>(cols / 8) * static_cast<size_t>(spec.bits);
  const uint32_t mask = (1u << spec.bits) - 1u;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = q + static_cast<size_t>(r) * row_bytes;
    for (int64_t g = 0; g < groups; ++g) {
      const float scale = load_scale(scale_dtype, s, r * groups + g);
      const float bias = load_scale(scale_dtype, bi, r * groups + g);
      for (int64_t c = g * spec.group_size; c < (g + 1) * spec.group_size; ++c) {
        const uint64_t bit = static_cast<uint64_t>(c) * static_cast<uint64_t>(spec.bits);
        // Two bytes always hold a value of at most 8 bits starting anywhere in the first; the second may be the
        // byte past the row end only when the value fits in the first.
        uint32_t v = row[bit / 8];
        if ((bit % 8) + static_cast<uint64_t>(spec.bits) > 8) v |= static_cast<uint32_t>(row[bit / 8 + 1]) << 8;
        const uint32_t level = (v >> (bit % 8)) & mask;
        const float w = scale * static_cast<float>(level) + bias;
        std::memcpy(out + r * cols + c, &w, 4);
      }
    }
  }
  return Status::ok();
}

Result<AffineQuantized> affine_quantize(const AffineSpec& spec, int64_t rows, int64_t cols, const float* w,
                                        DType scale_dtype) {
  MLXN_TRY(affine_check(spec, rows, cols));
  if (!scale_dtype_ok(scale_dtype))
    return invalid_argument("affine", "scale type ", scale_dtype, "; expected f16, bf16 or f32");
  AffineQuantized out;
  const int64_t groups = cols / spec.group_size;
  out.packed.assign(affine_packed_bytes(spec, rows, cols), 0);
  out.scales.assign(static_cast<size_t>(rows * groups) * dtype_size(scale_dtype), 0);
  out.biases.assign(out.scales.size(), 0);
  const float n_bins = static_cast<float>((1 << spec.bits) - 1);
  const float eps = 1e-7f;
  const size_t row_bytes = static_cast<size_t>(cols / 8) * static_cast<size_t>(spec.bits);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = out.packed.data() + static_cast<size_t>(r) * row_bytes;
    for (int64_t g = 0; g < groups; ++g) {
      const float* x = w + r * cols + g * spec.group_size;
      float w_min = std::numeric_limits<float>::infinity(), w_max = -w_min;
      for (int j = 0; j < spec.group_size; ++j) {
        w_max = std::max(w_max, x[j]);
        w_min = std::min(w_min, x[j]);
      }
      // The edge of larger magnitude is hit exactly (q = 0 there) unless it rounds to level 0.
      const bool min_side = std::fabs(w_min) > std::fabs(w_max);
      float scale = std::max((w_max - w_min) / n_bins, eps);
      scale = min_side ? scale : -scale;
      const float edge = min_side ? w_min : w_max;
      const float q0 = std::rint(edge / scale);
      float bias = 0;
      if (q0 != 0) {
        scale = edge / q0;
        bias = edge;
      }
      for (int j = 0; j < spec.group_size; ++j) {
        float qv = std::rint((x[j] - bias) / scale);
        qv = std::min(std::max(qv, 0.0f), n_bins);
        const uint32_t level = qv == qv ? static_cast<uint32_t>(qv) : 0u;
        const uint64_t bit = static_cast<uint64_t>(g * spec.group_size + j) * static_cast<uint64_t>(spec.bits);
        row[bit / 8] = static_cast<uint8_t>(row[bit / 8] | ((level << (bit % 8)) & 0xFFu));
        if ((bit % 8) + static_cast<uint64_t>(spec.bits) > 8)
          row[bit / 8 + 1] = static_cast<uint8_t>(row[bit / 8 + 1] | (level >> (8 - bit % 8)));
      }
      store_scale(scale_dtype, out.scales.data(), r * groups + g, scale);
      store_scale(scale_dtype, out.biases.data(), r * groups + g, bias);
    }
  }
  return out;
}

}  // namespace mlxn::quant
