// Helpers shared by the reference quantizers and decoders.
#pragma once

#include <cmath>
#include <cstdint>

namespace mlxn::quant {

// Scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K / Q5_K (ggml's get_scale_min_k4).
void k4_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m);

// Round to nearest, ties to even, as ggml's nearest_int does inside its valid range |v| <= 4194303; outside it
// (and for NaN, where ggml asserts) the value saturates instead of invoking undefined behaviour.
inline int nearest_int(float v) {
  if (!(v == v)) return 0;
  if (v > 4194303.f) return 4194303;
  if (v < -4194303.f) return -4194303;
  return static_cast<int>(std::nearbyint(v));
}

}  // namespace mlxn::quant
