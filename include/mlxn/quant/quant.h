// Host (CPU) reference dequantize and quantize for the GGML block formats and the plain types.
// Dequantize follows ggml's dequantize_row_* in the same float operation order, so its output is bit-identical to
// ggml's and to the `gguf` Python package's (tests/oracle). Quantize follows ggml's quantize_row_*_ref: the
// deterministic round-to-nearest reference quantizers without an importance matrix.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mlxn/core/dtype.h"
#include "mlxn/core/status.h"

namespace mlxn::quant {

// Converts `n` elements of type `t` stored in `src` (`src_bytes` bytes, exactly the storage of n elements) to f32.
// Handles every DType: plain floats and integers are converted, block formats decoded. `n` must be a whole number of
// blocks. No alignment is required of `src` or `dst`.
Status dequantize(DType t, const void* src, size_t src_bytes, float* dst, int64_t n);

// True where a reference quantizer exists: the block formats except IQ4_XS, plus F32, F16 and BF16.
bool can_quantize(DType t);

// Quantizes `n` f32 values (a whole number of blocks) into `dst` (`dst_bytes` bytes, exactly their storage).
Status quantize(DType t, const float* src, int64_t n, void* dst, size_t dst_bytes);

}  // namespace mlxn::quant
