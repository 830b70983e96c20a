// Helpers shared by the entry points that read quantized weights (dequantize, embedding_affine) and the
// prefill-sized quantized matmul path of matmul / matmul_affine (src/ops/dequantize.cpp).
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "kernels/dequantize.h"
#include "mlxn/ops/matmul.h"

namespace mlxn::ops::detail {

// The GGML block types that are weight formats (the matmul and dequantize kernels decode them).
bool is_ggml_weight_format(DType t);

// Validates an MLX affine weight (buffers on the session's device, contiguous, u32 codes, scales / biases of one
// float type and the right shape, naturally aligned); returns (N, K).
Result<std::pair<int64_t, int64_t>> check_affine_weight(std::string_view op, const Session& s, const AffineWeight& w);

// Registry / kernel-table key of the dequantizer for a weight layout and output dtype.
std::string dequant_key(kern::QWeight layout, DType tw, int bits, DType to);

// Quantized matmul: from this many rows of x on (CUDA only), W is dequantized in chunks into the session's scratch
// and multiplied by cuBLASLt instead of running the decode kernel with W re-read per 16 rows. Below it the decode
// kernel wins: at M = 16 it costs about what M = 1 does (the weight read), while the chunked path pays a dequantize
// pass (about 2.5 bytes per weight moved) plus a bandwidth-bound bf16 GEMM; the cross-over estimated from the H100
// figures in docs/ANCHORS.md is near M = 64-96 for 4-bit formats (tune on the GPU: bench case "qmatmul prefill",
// with MLXN_TUNE_QPREFILL_MIN_M set).
inline constexpr int64_t kQPrefillMinM = 64;
// Scratch per chunk: bounded so that a 151936 x 4096 lm head needs 64 MiB, not 1.2 GiB. Larger chunks give cuBLASLt
// more tiles per GEMM (a 2048-row chunk at M = 512 is few tiles for 132 SMs); MLXN_TUNE_QPREFILL_SCRATCH_MIB
// overrides it for tuning runs.
inline constexpr size_t kQPrefillScratchBytes = size_t{64} << 20;

bool use_qprefill(const Session& s, const kern::QMatmulParams& kp);
// Records y = x W^T through the chunked dequantize + cuBLASLt path. `reads` are x's and W's ranges.
Status record_qprefill(Session& s, const kern::QMatmulParams& kp, std::span<const MemRange> reads, const Buffer& y);

}  // namespace mlxn::ops::detail
