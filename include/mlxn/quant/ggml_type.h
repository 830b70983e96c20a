// GGML tensor type ids as ggml.h numbers them (GGUF stores these), and their mapping to mlxn DTypes.
// Every id ggml defines is listed so a file holding a type we cannot decode still opens and reports it by name;
// only the ids with a DType can be loaded or dequantized.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "mlxn/core/dtype.h"

namespace mlxn::quant {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  // 4 and 5 were Q4_2 / Q4_3, removed from ggml.
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  // 31..33 were Q4_0_4_4 / Q4_0_4_8 / Q4_0_8_8, removed from ggml.
  TQ1_0 = 34,
  TQ2_0 = 35,
  // 36..38 were IQ4_NL_4_4 / _4_8 / _8_8, removed from ggml.
  MXFP4 = 39,
};

struct GgmlTypeInfo {
  std::string_view name;  // ggml's type name: "q4_K", "iq2_xs", ...
  int32_t block_elems;
  int32_t block_bytes;
  std::optional<DType> dtype;  // empty: ggml type this library does not decode
};

// nullopt for an id ggml does not define (or that it removed).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);
std::optional<DType> dtype_from_ggml(uint32_t id);
// The GGML id of a DType; nullopt for U16 / U32 (no GGML equivalent).
std::optional<uint32_t> ggml_from_dtype(DType t);

}  // namespace mlxn::quant
