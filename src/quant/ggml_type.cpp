#include "mlxn/quant/ggml_type.h"

namespace mlxn::quant {
namespace {

struct Row {
  uint32_t id;
  GgmlTypeInfo info;
};

// Block sizes from ggml's type traits (ggml.c); the ids ggml removed are absent.
const Row kRows[] = {
    {0, {"f32", 1, 4, DType::F32}},
    {1, {"f16", 1, 2, DType::F16}},
    {2, {"q4_0", 32, 18, DType::Q4_0}},
    {3, {"q4_1", 32, 20, DType::Q4_1}},
    {6, {"q5_0", 32, 22, DType::Q5_0}},
    {7, {"q5_1", 32, 24, DType::Q5_1}},
    {8, {"q8_0", 32, 34, DType::Q8_0}},
    {9, {"q8_1", 32, 36, DType::Q8_1}},
    {10, {"q2_K", 256, 84, DType::Q2_K}},
    {11, {"q3_K", 256, 110, DType::Q3_K}},
    {12, {"q4_K", 256, 144, DType::Q4_K}},
    {13, {"q5_K", 256, 176, DType::Q5_K}},
    {14, {"q6_K", 256, 210, DType::Q6_K}},
    {15, {"q8_K", 256, 292, DType::Q8_K}},
    {16, {"iq2_xxs", 256, 66, std::nullopt}},
    {17, {"iq2_xs", 256, 74, std::nullopt}},
    {18, {"iq3_xxs", 256, 98, std::nullopt}},
    {19, {"iq1_s", 256, 50, std::nullopt}},
    {20, {"iq4_nl", 32, 18, DType::IQ4_NL}},
    {21, {"iq3_s", 256, 110, std::nullopt}},
    {22, {"iq2_s", 256, 82, std::nullopt}},
    {23, {"iq4_xs", 256, 136, DType::IQ4_XS}},
    {24, {"i8", 1, 1, DType::I8}},
    {25, {"i16", 1, 2, DType::I16}},
    {26, {"i32", 1, 4, DType::I32}},
    {27, {"i64", 1, 8, DType::I64}},
    {28, {"f64", 1, 8, DType::F64}},
    {29, {"iq1_m", 256, 56, std::nullopt}},
    {30, {"bf16", 1, 2, DType::BF16}},
    {34, {"tq1_0", 256, 54, std::nullopt}},
    {35, {"tq2_0", 256, 66, std::nullopt}},
    {39, {"mxfp4", 32, 17, DType::MXFP4}},
};

}  // namespace

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id) {
  for (const auto& r : kRows)
    if (r.id == id) return r.info;
  return std::nullopt;
}

std::optional<DType> dtype_from_ggml(uint32_t id) {
  auto info = ggml_type_info(id);
  return info ? info->dtype : std::nullopt;
}

std::optional<uint32_t> ggml_from_dtype(DType t) {
  for (const auto& r : kRows)
    if (r.info.dtype && *r.info.dtype == t) return r.id;
  return std::nullopt;
}

}  // namespace mlxn::quant
