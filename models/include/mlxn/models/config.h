// ModelConfig: the hyper-parameters of a decoder-only transformer (Llama 3, Qwen2, Qwen3, Gemma 3 text), read from
// GGUF metadata (llama.cpp's key names) or from a Hugging Face config.json.
//
// The conventions are those of llama.cpp and Hugging Face transformers (not the original library's):
//   - RoPE pairs: llama in GGUF uses ggml's Normal (interleaved) pairs because llama.cpp's converter permutes the
//     q / k rows; every other case (llama from safetensors, Qwen, Gemma) is NeoX / rotate_half.
//   - Gemma's RMSNorm multiplies by (1 + w). llama.cpp's converter stores w + 1 in GGUF, a checkpoint stores w:
//     norm_weight_offset says which (the loader folds it into the f32 norm weights).
//   - Gemma 3: every sliding_window_pattern-th layer (1-based) is global, the others see a window of
//     sliding_window keys; sliding layers use rope_base_local (10000) and no RoPE scaling.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/status.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/json_config.h"
#include "mlxn/ops/activation.h"
#include "mlxn/ops/rope.h"

namespace mlxn::models {

enum class Arch : uint8_t { Llama, Qwen2, Qwen3, Gemma3 };
std::string_view arch_name(Arch a);  // "llama", "qwen2", "qwen3", "gemma3" (GGUF general.architecture)
std::optional<Arch> arch_from_name(std::string_view name);

enum class RopeScaling : uint8_t { None, Linear, Llama3, Yarn };

// Where the weights come from: decides tensor names and stored conventions.
enum class WeightFormat : uint8_t { Gguf, HuggingFace };

struct ModelConfig {
  Arch arch = Arch::Llama;
  WeightFormat format = WeightFormat::Gguf;
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_vocab = 0;
  int64_t n_ctx_train = 0;
  float rms_eps = 1e-5f;
  float norm_weight_offset = 0.0f;  // added to every stored RMSNorm weight (Gemma checkpoints: 1)

  // RoPE
  ops::RopeLayout rope_layout = ops::RopeLayout::Neox;
  int64_t rope_dim = 0;  // rotated elements per head (head_dim for full rotary)
  float rope_base = 10000.0f;
  float rope_base_local = 10000.0f;  // Gemma 3 sliding layers
  RopeScaling rope_scaling = RopeScaling::None;
  float rope_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;   // llama3
  float rope_high_freq_factor = 4.0f;  // llama3
  int64_t rope_orig_ctx = 0;           // llama3 / yarn original context

  // Attention
  bool qkv_bias = false;            // Qwen2
  bool qk_norm = false;             // Qwen3, Gemma 3
  float attn_scale = 0.0f;          // 0: 1 / sqrt(head_dim)
  float attn_softcap = 0.0f;        // Gemma 2 style score softcap (0: off)
  int32_t sliding_window = 0;       // keys a sliding layer sees
  std::vector<bool> layer_sliding;  // per layer: true for a sliding-window layer (empty or all false: none)

  // Block
  ops::Activation ffn_act = ops::Activation::Silu;  // Silu: SwiGLU; GeluTanh: Gemma's GeGLU
  bool post_norms = false;                          // Gemma 3: post-attention and post-FFN norms
  float embed_scale = 1.0f;                         // Gemma: sqrt(n_embd)
  float final_softcap = 0.0f;                       // logits softcap (0: off)
  bool tied_embeddings = false;                     // the LM head is the token embedding

  bool sliding(int64_t layer) const {
    return layer >= 0 && static_cast<size_t>(layer) < layer_sliding.size() && layer_sliding[layer];
  }
  // The checks every loader relies on (positive sizes, heads dividing, even rope_dim, ...).
  Status validate() const;
  std::string summary() const;  // one line: "qwen3: 28 layers, d 1024, 16/8 heads x 128, ff 3072, vocab 151936"
};

// From GGUF metadata (general.architecture, <arch>.block_count, ...). Missing required keys are NotFound naming
// the key; an architecture other than the four is Unsupported. Whether embeddings are tied is decided by the
// absence of output.weight.
Result<ModelConfig> config_from_gguf(const io::GgufFile& f);

// From a Hugging Face config.json (model_type llama / qwen2 / qwen3 / gemma3_text, or gemma3 with a text_config).
Result<ModelConfig> config_from_hf(const io::JsonConfig& c);

}  // namespace mlxn::models
