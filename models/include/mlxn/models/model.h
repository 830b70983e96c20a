// A decoder-only transformer (Llama 3, Qwen2, Qwen3, Gemma 3 text) assembled from mlxn's public ops: weights on a
// device, a preallocated KV cache, chunked prefill and a single-token decode step that is captured once as a Graph
// and replayed per token.
//
// Dataflow of one layer (the residual stream x is f32; matmul inputs and attention run in the activation dtype):
//   h  = rms_norm(x) * w_attn_norm
//   q, k, v = h Wq^T (+ bq), h Wk^T (+ bk), h Wv^T (+ bv)
//   q, k = rope(q_norm(q)), rope(k_norm(k))            (per-head norms: Qwen3, Gemma 3)
//   cache <- k, v;  a = attention(q, cache)            (causal; Gemma 3 sliding layers see `sliding_window` keys)
//   x += a Wo^T                                       (Gemma 3: x += rms_norm(a Wo^T) * w_post_attn)
//   h  = rms_norm(x) * w_ffn_norm
//   x += (act(h Wg^T) * (h Wu^T)) Wd^T                 (SwiGLU; Gemma 3 GeGLU with tanh GELU and a post-FFN norm)
// logits = (rms_norm(x_last) * w_out_norm) W_out^T, optionally softcapped; W_out is the embedding when tied.
//
// Decode-step fusions (fewer kernels in the captured graph; on by default, off with MLXN_MODEL_FUSE=0 or
// ModelOptions::fuse = false; the arithmetic is the same, only the order of f32 reductions may differ):
//   - wq | wk | wv and w_gate | w_up are loaded back to back into one allocation each (the separate matrices are
//     views of it), so a single-token step runs one q|k|v matmul into [1, Nq + Nk + Nv] and one gate|up matmul into
//     [1, 2 ff] followed by glu_split; prefill (n > 1) keeps the separate matmuls on the views.
//   - Without q / k norms, one RoPE launch rotates q and k (adjacent heads of the q|k|v row) at n == 1.
//   - With quantized weights where ops::matmul_fuses holds (CUDA: the int8 decode kernel), a single-token step runs
//     the norms and residual adds inside the matmuls (ops::MatmulFusion): q|k|v and gate|up read the f32 stream x and
//     normalise it in their prologue, o and down add their result into x in their epilogue, and the LM head takes
//     output_norm: two kernels fewer per layer; a GGML gate|up matmul also applies the gated activation in its store
//     (no glu_split). Otherwise every residual add is fused with the norm after it
//     (add_rms_norm, an f16 / bf16 block output widened into the f32 stream): the post-attention add with ffn_norm,
//     a layer's final add with the next layer's attn_norm, and the last layer's with output_norm at n == 1.
//     Gemma 3's post norms (rms_norm_add) are unchanged.
//
// Per-token values of the decode step live in step-parameter slots (kSlot*) that the ops read through Buffer views
// of the session's step block: the position (RoPE), the KV length (cache write and attention) and the sampling
// step. The sampled token id is written to the device token buffer that the next replay embeds, so the host only
// reads that id back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/session.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/models/config.h"
#include "mlxn/ops/attention.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/sample.h"

namespace mlxn::models {

// Step-parameter slots the model uses (the top of the block, leaving the low slots to the caller).
inline constexpr int kSlotPosition = 60;    // i32: position of the decoded token
inline constexpr int kSlotKvLen = 61;       // i32: KV length after this step
inline constexpr int kSlotSampleStep = 62;  // u32: the sampler's step (a fresh draw per token)

struct LayerWeights {
  Buffer attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, post_attn_norm;
  Buffer ffn_norm, w_gate, w_up, w_down, post_ffn_norm;
  // Fused storage (load_weights with fuse): [Nq + Nk + Nv, K] and [2 ff, K] in the stored type, and the f32
  // [Nq + Nk + Nv] bias; wq / wk / wv, w_gate / w_up and bq / bk / bv are then views of them. Empty when not fused
  // (fusion off, parts of different types, or a part that would not start 16-byte aligned).
  Buffer wqkv, w_gate_up, bqkv;
  // MLX affine-quantized checkpoints: a quantized matrix is held here and its Buffer above stays empty.
  struct Affine {
    ops::AffineWeight wq, wk, wv, wo, w_gate, w_up, w_down;
    ops::AffineWeight wqkv, w_gate_up;  // fused (same bits, group size and scale dtype), as above
  } affine;
};

// Matrices stay in their stored format (GGML blocks, f32 / f16 / bf16, or MLX affine: packed u32 + scales + biases)
// as [out, in]; norm weights and biases are f32 (the Gemma offset folded in).
struct ModelWeights {
  Buffer tok_embd;    // [vocab, d] as stored
  Buffer tok_lookup;  // what the embedding lookup reads: tok_embd, or on CUDA an f16 copy of a block-type table
  Buffer output_norm;
  Buffer output;      // [vocab, d]; tok_embd when tied
  Buffer rope_freqs;  // f32 [rope_dim / 2] frequency factors (Llama 3.1 scaling), or empty
  // MLX affine-quantized checkpoints: the quantized embedding (tok_embd / tok_lookup then hold its dequantized
  // copy, f32 on the CPU and f16 on CUDA, for the lookup) and the quantized LM head (the embedding when tied;
  // `output` then stays empty).
  ops::AffineWeight tok_affine, output_affine;
  std::vector<LayerWeights> layers;
  uint64_t bytes = 0;  // device bytes allocated or mapped for the weights
};

// Loads and checks every tensor the configuration needs. A missing tensor is NotFound and a wrong shape
// InvalidArgument, both naming the tensor. `fuse`: hold wq | wk | wv and w_gate | w_up in one allocation each
// (LayerWeights::wqkv, w_gate_up) where their stored types agree.
Result<ModelWeights> load_weights(const io::GgufFile& f, const ModelConfig& c, const Device& dev, bool fuse = true);
Result<ModelWeights> load_weights(const io::SafetensorsModel& m, const ModelConfig& c, const Device& dev,
                                  bool fuse = true);

// The default of ModelOptions::fuse: false when the environment variable MLXN_MODEL_FUSE is "0" (read once).
bool fusion_default();

struct ModelOptions {
  int64_t max_context = 2048;      // KV-cache capacity in tokens
  int64_t max_chunk = 128;         // rows of the activation buffers: the largest prefill chunk
  std::optional<DType> act_dtype;  // default: f32 on the CPU; on CUDA bf16 for Gemma and bf16 checkpoints, else f16
  std::optional<DType> kv_dtype;   // default: bf16 when the activations are bf16, else f16
  std::optional<bool> fuse;        // decode-step fusions (see the top of this file); default: fusion_default()
  SessionOptions session;
};

struct MemoryUse {
  uint64_t weights = 0, kv_cache = 0, activations = 0;
  uint64_t total() const { return weights + kv_cache + activations; }
};

class Model {
 public:
  // `path`: a .gguf file, or a Hugging Face checkpoint folder (config.json + *.safetensors).
  static Result<std::unique_ptr<Model>> load(const std::string& path, const Device& dev, const ModelOptions& o = {});
  static Result<std::unique_ptr<Model>> create(ModelConfig config, ModelWeights weights, const Device& dev,
                                               const ModelOptions& o = {});
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  Session& session() { return session_; }
  Device device() const { return device_; }
  DType act_dtype() const { return act_; }
  DType kv_dtype() const { return kv_; }
  MemoryUse memory() const { return mem_; }
  int64_t position() const { return pos_; }  // tokens in the KV cache
  bool fused() const { return fuse_; }       // whether the decode-step fusions are on
  int64_t capacity() const { return opt_.max_context; }
  void reset() { pos_ = 0; }  // forget the cached tokens (their rows are overwritten later)

  // Appends `tokens` at the current position, in chunks of at most `chunk` tokens (0: max_chunk), and leaves the
  // last token's logits in logits(). Runs eagerly; read_logits() waits for it.
  Status prefill(std::span<const int32_t> tokens, int64_t chunk = 0);
  // Appends one token (eager).
  Status decode(int32_t token);

  // Records the decode step (reading the token buffer) into a Graph without running it; with `sample`, the graph
  // ends with the sampler writing the next token into the token buffer (its step is read from kSlotSampleStep).
  Result<Graph> capture_decode(const ops::SampleParams* sample = nullptr);
  // Replays a captured decode step for the token in the token buffer at the current position; advances it.
  Status replay_decode(Graph& g, uint32_t sample_step = 0);

  // Samples the current logits into the token buffer (eager).
  Status sample(const ops::SampleParams& p);
  Status set_token(int32_t token);           // waits for the session, then uploads
  Result<int32_t> read_token();              // waits for the session, then downloads
  Result<std::vector<float>> read_logits();  // [vocab] f32
  const Buffer& logits() const { return logits_; }

 private:
  Model(ModelConfig config, ModelWeights weights, Device dev, Session session, const ModelOptions& o);
  // create(), with bf16 activations on CUDA for bf16 weights when o leaves act_dtype open (load() uses it).
  static Result<std::unique_ptr<Model>> create_for_weights(ModelConfig config, ModelWeights weights, const Device& dev,
                                                           const ModelOptions& o);
  Status init();
  Result<Buffer> alloc(DType t, const Shape& shape, uint64_t* counter);
  Result<Buffer> step_view(int slot) const;
  // Records the forward pass of n tokens (ids and positions on the device); logits of the last row if asked.
  Status forward(int64_t n, const Buffer& ids, const Buffer& positions, bool want_logits);
  // `normed`: xn already holds rms_norm(x) * attn_norm (the previous layer's last add was fused with it);
  // `next_norm` / `next_out`: when valid, the layer's final residual add also writes rms_norm(x) * next_norm there.
  Status layer(int64_t il, int64_t n, const Buffer& positions, const Buffer& kv_lens, bool normed,
               const Buffer& next_norm, const Buffer& next_out);
  // x += delta (delta in any float dtype), then out = rms_norm(x) * w when w is given (one kernel when fusing or
  // when the dtypes match).
  Status residual_add_norm(const Buffer& x, const Buffer& delta, const Buffer& w, const Buffer& out);
  // x += rms_norm(delta) * w (Gemma's post norms).
  Status residual_norm_add(const Buffer& x, const Buffer& delta, const Buffer& w, int64_t n);
  // Whether layer il's single-token step runs its norms and residual adds inside the matmuls (ops::MatmulFusion).
  bool matmul_fused(int64_t il, int64_t n) const;
  // Whether the LM head at n == 1 takes output_norm inside its matmul.
  bool head_fused() const;

  ModelConfig config_;
  ModelWeights weights_;
  Device device_;
  Session session_;
  ModelOptions opt_;
  DType act_ = DType::F32;
  DType kv_ = DType::F16;
  MemoryUse mem_;
  int64_t pos_ = 0;
  bool fuse_ = true;

  std::vector<ops::KvCache> cache_;
  Buffer step_block_;  // the session's step parameters as i32 [kStepParamSlots]
  Buffer resid_, tmp_, xn_, q_, k_, v_, attn_, o_, gate_, up_, xf_, logits_;
  Buffer qkv_, gate_up_;  // [1, Nq + Nk + Nv] and [1, 2 ff]: the fused single-token projections
  Buffer ids_, positions_, token_, attn_ws_, sample_ws_;
};

}  // namespace mlxn::models
