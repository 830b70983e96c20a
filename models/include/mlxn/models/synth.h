// Random-weight GGUF files of real architectures and sizes, for benchmarks and tests without downloads
// (`mlxn synth`). Tensors carry llama.cpp's names and metadata keys, so the file loads like a converted model.
//
// Tensor types follow llama.cpp's llama-quantize (src/llama-quant.cpp: llama_tensor_get_type and
// tensor_type_fallback), restricted to what our dense architectures contain (no Falcon, no experts, no fused QKV,
// no 70B-class attn_v bump, no importance matrix):
//   - A single type (Q4_0, Q4_K, Q6_K, Q8_0, F16, ...) is "pure": every matrix gets it, as `llama-quantize --pure`.
//   - A mixture name (Q4_K_M, Q4_K_S, Q5_K_M, Q5_K_S, Q3_K_S, Q3_K_M, Q3_K_L) starts every matrix at its base type
//     (Q4_K, Q5_K or Q3_K) and then, with n the layer count, i a layer and more(i) = i < n/8 || i >= 7n/8 ||
//     (i - n/8) % 3 == 2 (integer division):
//       output.weight, or token_embd.weight when the embeddings are tied: Q6_K (Q8_0 when its rows are not whole
//         blocks of the base type); an untied token_embd.weight keeps the base type;
//       attn_v: Q4_K_M / Q5_K_M: Q6_K where more(i); Q4_K_S: Q5_K for i < 4; Q3_K_M: Q5_K for i < 2, else Q4_K;
//         Q3_K_L: Q5_K;
//       ffn_down: Q4_K_M / Q5_K_M: Q6_K where more(i); Q4_K_S: Q5_K for i < n/8; Q3_K_M: Q5_K for i < n/16, else
//         Q4_K; Q3_K_L: Q5_K;
//       attn_output: Q3_K_M: Q4_K; Q3_K_L: Q5_K;
//       everything else (attn_q, attn_k, ffn_gate, ffn_up): the base type.
//     Also followed: Q2_K (attn_v Q4_K with 4+ query heads per KV head, else Q3_K; ffn_down and attn_output Q3_K),
//     IQ4_NL (attn_v Q5_K with 4+ query heads per KV head; ffn_down Q5_K for i < n/8) and MXFP4_MOE (no experts
//     here: every matrix Q8_0). With recipe Llama a single type gets the treatment of its llama.cpp file type
//     (Q4_0: output Q6_K; Q4_K: as Q4_K_M).
//   - Rows that are not whole blocks of the chosen type fall back as llama.cpp does, pure or not: Q2_K / Q3_K to
//     Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0; where that still does not fit (or for a 32-block type, where
//     llama.cpp stops with an error) the matrix is F16.
//   - Float types (F32, F16, BF16) apply to every matrix unchanged. Norms, biases and rope_freqs stay F32.
// general.file_type is llama.cpp's llama_ftype number of the name (Q4_K_M 15, Q4_K_S 14, Q5_K_M 17, Q5_K_S 16,
// Q3_K_M 12, Q6_K 18, Q8_0 7, Q4_0 2, F16 1, ...; a bare K type counts as its _M mixture, as llama-quantize's
// aliases do). The names and numbers are io::parse_quant_target's (mlxn/io/quantize_model.h), shared with
// `mlxn quantize`.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"
#include "mlxn/io/quantize_model.h"
#include "mlxn/models/config.h"

namespace mlxn::models {

// Presets (sizes from the published Hugging Face config.json of each model):
//   llama "8b" (Llama-3-8B), "tiny"; qwen3 "8b" (Qwen3-8B), "0.6b" (Qwen3-0.6B), "tiny"; gemma3 "27b" (Gemma-3-27B),
//   "12b" (Gemma-3-12B), "4b" (Gemma-3-4B), "270m" (Gemma 3 270M), "tiny"; qwen2 "tiny". The tiny ones are 2 to 6
//   layers of width 256 for tests.
Result<ModelConfig> synth_preset(Arch arch, std::string_view preset);
std::vector<std::string> synth_preset_names(Arch arch);

struct SynthOptions {
  // A --type name: a single type ("Q4_0", "Q4_K", "Q6_K", "F16", ...) or a llama.cpp mixture ("Q4_K_M", ...),
  // case-insensitive; see the rules above. Empty: `type`, pure.
  std::string type_name;
  std::optional<io::QuantRecipe> recipe;  // overrides the name's default (Pure for a type, Llama for a mixture)
  DType type = DType::Q4_0;               // used when type_name is empty
  uint64_t seed = 1;
  int threads = 0;                                              // quantizer threads; 0: all hardware threads
  std::function<void(uint64_t done, uint64_t total)> progress;  // elements written
};

// One tensor of a synth file.
struct SynthTensor {
  std::string name;
  Shape shape;  // outermost first: [rows, cols] or [n]
  DType type;
  std::string note;  // why the type differs from the target's base type ("" when it does not)
};

struct SynthPlan {
  io::QuantTarget target;            // the parsed type name (general.file_type is target.file_type)
  std::vector<SynthTensor> tensors;  // in file order
};

// The tensors write_synth_gguf writes for `c` and `o`, with their types; nothing is written. An unknown type name is
// InvalidArgument listing the accepted names.
Result<SynthPlan> synth_plan(const ModelConfig& c, const SynthOptions& o = {});

// Writes `c` as a GGUF with random weights, typed as synth_plan says: matrices uniform with standard deviation
// 1 / sqrt(fan_in), norm weights near 1 (in the file's convention), biases small. Returns the file size.
Result<uint64_t> write_synth_gguf(const ModelConfig& c, const std::string& path, const SynthOptions& o = {});

}  // namespace mlxn::models
