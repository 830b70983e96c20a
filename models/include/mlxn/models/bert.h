// BERT-style sentence encoders (all-MiniLM-L6-v2, bge-small-en-v1.5, ...) assembled from mlxn's public ops.
//
// Conventions (Hugging Face transformers' BertModel + sentence-transformers, and llama.cpp's "bert" graph):
//   x   = word_emb[id] + pos_emb[position] + type_emb[0]            (positions 0 .. len - 1; token type 0)
//   x   = LayerNorm(x)
//   per layer (post-LN):
//     q, k, v = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv
//     a   = softmax(q k^T / sqrt(head_dim)) v      bidirectional; a sequence's keys are its own valid tokens only
//     x   = LayerNorm(x + a Wo^T + bo)
//     x   = LayerNorm(x + gelu(x Wi^T + bi) Wd^T + bd)      gelu: the exact erf form (HF "gelu")
//   pooled = mean of x over the sequence's valid tokens (padding excluded), or x of the first token ([CLS])
//   out    = pooled / max(||pooled||_2, 1e-12)    when normalisation is on (sentence-transformers' Normalize)
//
// A batch of texts of different lengths is padded to the longest; the padding is excluded from attention (each
// sequence's key length is its own) and from mean pooling, so an embedding does not depend on its batch-mates.
// Precision: the residual stream, LayerNorm and pooling are f32 on every backend; matmuls and attention run in the
// activation dtype (f32 on the CPU, f16 on CUDA); K and V are stored f16 (the attention op's cache types), which
// the CPU tests' reference models. CUDA attention has no kernels for head dims below 64 (MiniLM and bge-small use
// 32): where the build lacks the head dim, the q / k / v projections get zero rows and Wo zero columns at load time
// so each head is padded to a size it has; the dot products and outputs are unchanged and the scale stays
// 1 / sqrt(real head_dim).
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
#include "mlxn/io/json_config.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/models/config.h"
#include "mlxn/ops/activation.h"

namespace mlxn::models {

enum class Pooling : uint8_t { Mean, Cls };
const char* pooling_name(Pooling p);

struct BertConfig {
  WeightFormat format = WeightFormat::HuggingFace;
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_vocab = 0;
  int64_t n_pos = 512;  // max_position_embeddings
  int64_t n_type = 2;   // type_vocab_size
  float ln_eps = 1e-12f;
  ops::Activation act = ops::Activation::Gelu;  // HF "gelu" (erf); "gelu_new" / "gelu_pytorch_tanh": GeluTanh
  Pooling pooling = Pooling::Mean;
  bool normalize = true;
  int64_t max_seq_len = 512;  // tokens per text, [CLS] and [SEP] included (sentence-transformers max_seq_length)

  Status validate() const;
  std::string summary() const;  // "bert: 6 layers, d 384, 12 heads x 32, ff 1536, vocab 30522, mean pooling, l2"
};

// From a Hugging Face config.json (model_type "bert", absolute position embeddings).
Result<BertConfig> bert_config_from_hf(const io::JsonConfig& c);
// From GGUF metadata of llama.cpp's "bert" architecture (bert.block_count, bert.pooling_type: 1 mean, 2 cls, ...).
Result<BertConfig> bert_config_from_gguf(const io::GgufFile& f);
// sentence-transformers' files in `dir`, where present: modules.json (a Normalize module turns normalisation on, its
// absence off), 1_Pooling/config.json (or the Pooling module's folder: mean or CLS; other modes Unsupported) and
// sentence_bert_config.json (max_seq_length). Without modules.json the config is left as it is.
Status apply_sentence_transformers(const std::string& dir, BertConfig& c);

struct BertLayerWeights {
  Buffer wq, bq, wk, bk, wv, bv, wo, bo;  // q / k / v rows and Wo columns padded per head to head_dim_padded
  Buffer attn_ln_w, attn_ln_b;
  Buffer w_up, b_up, w_down, b_down;
  Buffer out_ln_w, out_ln_b;
};

// Matrices in the matmul dtype (f32 on the CPU, the activation dtype on CUDA), embedding tables, biases and
// LayerNorm parameters in f32.
struct BertWeights {
  Buffer tok_embd, pos_embd, type_embd, embd_ln_w, embd_ln_b;
  std::vector<BertLayerWeights> layers;
  int64_t head_dim_padded = 0;
  uint64_t bytes = 0;
};

struct BertOptions {
  std::optional<DType> act_dtype;  // default: f32 on the CPU, f16 on CUDA
  // Head dim the projections are padded to: 0 picks (head_dim when the device has attention kernels for it, else
  // the smallest larger size it has: 64 for MiniLM on CUDA); a value >= head_dim forces it (tests on the CPU).
  int64_t pad_head_dim = 0;
  SessionOptions session;
};

// Loads a safetensors BERT (HF names, optionally under "bert.") or a llama.cpp "bert" GGUF. `matmul_dtype` is the
// type the matrices get; head dims are padded to `padded_head_dim` (>= c.head_dim).
Result<BertWeights> load_bert_weights(const io::SafetensorsModel& m, const BertConfig& c, const Device& dev,
                                      DType matmul_dtype, int64_t padded_head_dim);
Result<BertWeights> load_bert_weights(const io::GgufFile& f, const BertConfig& c, const Device& dev, DType matmul_dtype,
                                      int64_t padded_head_dim);

class BertModel {
 public:
  // `path`: a Hugging Face / sentence-transformers folder (config.json + *.safetensors, modules.json etc. where
  // present) or a .gguf file of llama.cpp's bert architecture.
  static Result<std::unique_ptr<BertModel>> load(const std::string& path, const Device& dev, const BertOptions& o = {});
  static Result<std::unique_ptr<BertModel>> create(BertConfig config, BertWeights weights, const Device& dev,
                                                   const BertOptions& o = {});
  ~BertModel();
  BertModel(const BertModel&) = delete;
  BertModel& operator=(const BertModel&) = delete;

  const BertConfig& config() const { return config_; }
  const BertWeights& weights() const { return weights_; }
  Session& session() { return session_; }
  DType act_dtype() const { return act_; }

  // One embedding of n_embd floats per sequence of token ids (each already framed by [CLS] ... [SEP], at most
  // min(n_pos, max_seq_len) ids, ids in [0, n_vocab)), with the config's pooling and normalisation.
  Result<std::vector<std::vector<float>>> embed(std::span<const std::vector<int32_t>> batch);
  // The same with the pooling and normalisation given.
  Result<std::vector<std::vector<float>>> embed(std::span<const std::vector<int32_t>> batch, Pooling pooling,
                                                bool normalize);

 private:
  BertModel(BertConfig config, BertWeights weights, Device dev, Session session, DType act);
  Status layer(int64_t il, int64_t B, int64_t T, const Buffer& lens);

  BertConfig config_;
  BertWeights weights_;
  Device device_;
  Session session_;
  DType act_ = DType::F32;
  DType kv_ = DType::F16;
  // Per-call activations (allocated for the batch shape of each call).
  Buffer x_, tmp_, xa_, q_, k_, v_, kc_, vc_, att_, o_, up_, ws_;
};

// Cosine similarity of two vectors (float64 accumulation); 0 when either is zero.
double cosine_similarity(std::span<const float> a, std::span<const float> b);

}  // namespace mlxn::models
