// Plain parameter struct of the sampling kernels, the workspace layout the CUDA path uses, and the backend entry
// points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"
#include "kernels/keys.h"

namespace mlxn::kern {

// One token per row of logits [rows, vocab]; see include/mlxn/ops/sample.h for the exact algorithm.
struct SampleParams {
  const void* logits = nullptr;
  DType tl = DType::F32;
  int64_t rows = 0, vocab = 0;
  const int32_t* history = nullptr;  // [rows, hist_len] or null
  int64_t hist_len = 0;
  int32_t* tokens = nullptr;
  float* logprobs = nullptr;  // may be null
  float temperature = 1.0f;
  int temperature_slot = -1;  // f32 slot overriding temperature when >= 0
  int top_k = 0;
  float top_p = 1.0f, min_p = 0.0f;
  float repetition_penalty = 1.0f, presence_penalty = 0.0f, frequency_penalty = 0.0f;
  uint32_t seed_lo = 0, seed_hi = 0;
  int seed_slot = -1;  // u32 slot overriding seed_lo when >= 0
  uint32_t step = 0;
  int step_slot = -1;  // u32 slot overriding step when >= 0
  void* ws = nullptr;
  const uint32_t* step_params = nullptr;  // filled by the launcher from ExecContext
  MLXN_HD bool penalties() const {
    return history != nullptr && hist_len > 0 &&
           (repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f);
  }
};

// CUDA workspace: each row is cut into chunks of kSampleChunk tokens; each chunk keeps its top `pool_per_chunk`
// tokens (the pool, at most kSamplePool per row), its max and sum of exp, and later a partial argmax; the
// penalized logits are kept as f32 when penalties apply.
inline constexpr int64_t kSampleChunk = 4096;
inline constexpr int64_t kSamplePool = 4096;

struct SampleLayout {
  int64_t chunks = 0, pool_per_chunk = 0;
  int64_t stats_off = 0, pool_off = 0, part_off = 0, state_off = 0, work_off = 0, bytes = 0;
};

inline SampleLayout sample_layout(int64_t rows, int64_t vocab) {
  SampleLayout l;
  l.chunks = (vocab + kSampleChunk - 1) / kSampleChunk;
  if (l.chunks < 1) l.chunks = 1;
  // A chunk never pools more tokens than it holds (small vocabularies: the whole row).
  l.pool_per_chunk = kSamplePool / l.chunks;
  if (l.pool_per_chunk > vocab) l.pool_per_chunk = vocab;
  if (l.pool_per_chunk < 1) l.pool_per_chunk = 1;
  auto up = [](int64_t b) { return (b + 255) / 256 * 256; };
  l.stats_off = 0;                                                       // float2 [rows, chunks]
  l.pool_off = up(l.stats_off + rows * l.chunks * 8);                    // uint2 (key, index) [rows, chunks * ppc]
  l.part_off = up(l.pool_off + rows * l.chunks * l.pool_per_chunk * 8);  // u64 [rows, chunks]
  l.state_off = up(l.part_off + rows * l.chunks * 8);                    // SampleRowState [rows]
  l.work_off = up(l.state_off + rows * 16);                              // f32 [rows, vocab]
  l.bytes = up(l.work_off + rows * vocab * 4);
  return l;
}

// What the pool kernel leaves for the full-vocabulary pass of a row it could not finish.
struct SampleRowState {
  uint32_t pending;     // 1: the kept set reaches past the pool, the full-vocabulary pass samples
  uint32_t thresh_key;  // keep logits whose key is >= this
  float max_logit;
  float log_z;
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status sample(const kern::SampleParams& p, const ExecContext& ctx);
}
namespace mlxn::cuda {
Status sample(const kern::SampleParams& p, const ExecContext& ctx);
}
