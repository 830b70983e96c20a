#include "mlxn/core/dtype.h"

#include <array>
#include <limits>
#include <ostream>

namespace mlxn {
namespace {

// Block sizes follow ggml's definitions (ggml-common.h): elements per block, bytes per block.
constexpr std::array<DTypeInfo, static_cast<size_t>(DType::Count_)> kInfo = {{
    {"f32", 1, 4, true, false},
    {"f16", 1, 2, true, false},
    {"bf16", 1, 2, true, false},
    {"f64", 1, 8, true, false},
    {"i8", 1, 1, false, false},
    {"u8", 1, 1, false, false},
    {"i16", 1, 2, false, false},
    {"u16", 1, 2, false, false},
    {"i32", 1, 4, false, false},
    {"u32", 1, 4, false, false},
    {"i64", 1, 8, false, false},
    {"q4_0", 32, 18, false, true},     // f16 d + 16 bytes of nibbles
    {"q4_1", 32, 20, false, true},     // f16 d, m + 16
    {"q5_0", 32, 22, false, true},     // f16 d + 4 high bits + 16
    {"q5_1", 32, 24, false, true},     // f16 d, m + 4 + 16
    {"q8_0", 32, 34, false, true},     // f16 d + 32 int8
    {"q8_1", 32, 36, false, true},     // f16 d, s + 32 int8
    {"q2_K", 256, 84, false, true},    // 16 scales + 64 qs + f16 d, dmin
    {"q3_K", 256, 110, false, true},   // 32 hmask + 64 qs + 12 scales + f16 d
    {"q4_K", 256, 144, false, true},   // f16 d, dmin + 12 scales + 128 qs
    {"q5_K", 256, 176, false, true},   // f16 d, dmin + 12 scales + 32 qh + 128 qs
    {"q6_K", 256, 210, false, true},   // 128 ql + 64 qh + 16 scales + f16 d
    {"q8_K", 256, 292, false, true},   // f32 d + 256 int8 + 16 int16 sums
    {"iq4_nl", 32, 18, false, true},   // f16 d + 16
    {"iq4_xs", 256, 136, false, true},  // f16 d + u16 scales_h + 4 scales_l + 128
    {"mxfp4", 32, 17, false, true},    // e8m0 scale + 16
}};

}  // namespace

const DTypeInfo& dtype_info(DType t) {
  const auto i = static_cast<size_t>(t);
  MLXN_CHECK(i < kInfo.size());
  return kInfo[i];
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < kInfo.size(); ++i)
    if (kInfo[i].name == name) return static_cast<DType>(i);
  return std::nullopt;
}

Result<size_t> dtype_storage_bytes(DType t, int64_t n_elems) {
  const auto& info = dtype_info(t);
  if (n_elems < 0) return invalid_argument("dtype", "negative element count ", n_elems);
  if (n_elems % info.block_elems != 0)
    return invalid_argument("dtype", n_elems, " elements are not a whole number of ", info.name, " blocks of ",
                            info.block_elems);
  const auto blocks = static_cast<uint64_t>(n_elems / info.block_elems);
  if (blocks > std::numeric_limits<size_t>::max() / static_cast<uint64_t>(info.block_bytes))
    return invalid_argument("dtype", n_elems, " elements of ", info.name, " overflow the address space");
  return static_cast<size_t>(blocks * static_cast<uint64_t>(info.block_bytes));
}

std::ostream& operator<<(std::ostream& os, DType t) { return os << dtype_name(t); }

}  // namespace mlxn
