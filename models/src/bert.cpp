// The BERT encoder forward pass over a padded batch, pooling and L2 normalisation (conventions in bert.h).
#include "mlxn/models/bert.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "mlxn/core/kernel_registry.h"
#include "mlxn/ops/attention.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/embedding.h"
#include "mlxn/ops/layout.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/norm.h"
#include "mlxn/ops/reduce.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "bert";

// The head dim to pad to: d itself when this build has attention kernels for it on `dev`, else the smallest
// larger size it has (CUDA has none below 64); d when none fits (attention then names what the build has).
int64_t attention_head_dim(const Device& dev, DType act, DType kv, int64_t d) {
  auto has = [&](int64_t hd) {
    return dev.kernels().supports("attention", KernelRegistry::key({act, kv, act}) + ".d" + std::to_string(hd));
  };
  if (has(d)) return d;
  for (int64_t cand : {32, 64, 80, 96, 128, 192, 256, 512})
    if (cand > d && has(cand)) return cand;
  return d;
}

Result<Buffer> rows_of(const Buffer& b, int64_t n) { return b.view(0, b.dtype(), Shape{n, b.shape()[1]}); }

}  // namespace

double cosine_similarity(std::span<const float> a, std::span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

BertModel::BertModel(BertConfig config, BertWeights weights, Device dev, Session session, DType act)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      device_(std::move(dev)),
      session_(std::move(session)),
      act_(act),
      kv_(act == DType::BF16 ? DType::BF16 : DType::F16) {}

BertModel::~BertModel() { (void)session_.finish(); }

Result<std::unique_ptr<BertModel>> BertModel::load(const std::string& path, const Device& dev, const BertOptions& o) {
  namespace fs = std::filesystem;
  const bool cuda = dev.backend() == Backend::Cuda;
  const DType act = o.act_dtype.value_or(cuda ? DType::F16 : DType::F32);
  const DType kv = act == DType::BF16 ? DType::BF16 : DType::F16;
  auto pad_for = [&](const BertConfig& c) -> int64_t {
    return o.pad_head_dim > 0 ? o.pad_head_dim : attention_head_dim(dev, act, kv, c.head_dim);
  };
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    MLXN_ASSIGN_OR_RETURN(auto st, io::SafetensorsModel::open(path));
    if (!st.config()) return error(StatusCode::NotFound, kOp, path, " has no config.json");
    MLXN_ASSIGN_OR_RETURN(BertConfig c, bert_config_from_hf(*st.config()));
    MLXN_TRY(apply_sentence_transformers(path, c));
    MLXN_ASSIGN_OR_RETURN(BertWeights w, load_bert_weights(st, c, dev, act, pad_for(c)));
    return create(std::move(c), std::move(w), dev, o);
  }
  MLXN_ASSIGN_OR_RETURN(auto f, io::GgufFile::open(path));
  MLXN_ASSIGN_OR_RETURN(BertConfig c, bert_config_from_gguf(f));
  MLXN_ASSIGN_OR_RETURN(BertWeights w, load_bert_weights(f, c, dev, act, pad_for(c)));
  return create(std::move(c), std::move(w), dev, o);
}

Result<std::unique_ptr<BertModel>> BertModel::create(BertConfig config, BertWeights weights, const Device& dev,
                                                     const BertOptions& o) {
  MLXN_TRY(config.validate());
  if (static_cast<int64_t>(weights.layers.size()) != config.n_layer)
    return invalid_argument(kOp, "weights have ", weights.layers.size(), " layers, the config ", config.n_layer);
  if (weights.head_dim_padded < config.head_dim)
    return invalid_argument(kOp, "weights' padded head dim ", weights.head_dim_padded, " < head_dim ", config.head_dim);
  const bool cuda = dev.backend() == Backend::Cuda;
  const DType act = o.act_dtype.value_or(cuda ? DType::F16 : DType::F32);
  if (!is_compute_float(act)) return invalid_argument(kOp, "act_dtype ", act, " is not f32, f16 or bf16");
  if (cuda && act == DType::F32) return unsupported(kOp, "act_dtype f32 on CUDA (attention needs f16 or bf16)");
  MLXN_ASSIGN_OR_RETURN(Session s, Session::create(dev, o.session));
  return std::unique_ptr<BertModel>(new BertModel(std::move(config), std::move(weights), dev, std::move(s), act));
}

Status BertModel::layer(int64_t il, int64_t B, int64_t T, const Buffer& lens) {
  const auto& c = config_;
  const auto& L = weights_.layers[static_cast<size_t>(il)];
  const int64_t N = B * T, H = c.n_head, Dp = weights_.head_dim_padded;
  Session& s = session_;
  // The matmul input: the f32 stream itself on the CPU, an activation-dtype copy otherwise.
  const Buffer& xin = act_ == DType::F32 ? x_ : xa_;
  MLXN_TRY(ops::matmul(s, xin, L.wq, q_));
  MLXN_TRY(ops::add(s, q_, L.bq, q_));
  // K and V go to the f16 / bf16 "cache" the attention op reads: directly when the activations have that dtype.
  MLXN_ASSIGN_OR_RETURN(Buffer kc2, kc_.view(0, kv_, Shape{N, H * Dp}));
  MLXN_ASSIGN_OR_RETURN(Buffer vc2, vc_.view(0, kv_, Shape{N, H * Dp}));
  if (act_ == kv_) {
    MLXN_TRY(ops::matmul(s, xin, L.wk, kc2));
    MLXN_TRY(ops::add(s, kc2, L.bk, kc2));
    MLXN_TRY(ops::matmul(s, xin, L.wv, vc2));
    MLXN_TRY(ops::add(s, vc2, L.bv, vc2));
  } else {
    MLXN_TRY(ops::matmul(s, xin, L.wk, k_));
    MLXN_TRY(ops::add(s, k_, L.bk, kc2));
    MLXN_TRY(ops::matmul(s, xin, L.wv, v_));
    MLXN_TRY(ops::add(s, v_, L.bv, vc2));
  }
  MLXN_ASSIGN_OR_RETURN(Buffer q4, q_.view(0, act_, Shape{B, T, H, Dp}));
  MLXN_ASSIGN_OR_RETURN(Buffer o4, att_.view(0, act_, Shape{B, T, H, Dp}));
  ops::KvCache cache;
  cache.k = kc_;
  cache.v = vc_;
  ops::AttentionParams ap;
  ap.causal = false;
  ap.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)));  // the real head dim
  // Each sequence sees its own keys (kv_len) and its padded query rows come out as zeros (q_len).
  MLXN_TRY(ops::attention(s, q4, cache, ops::SeqLens{lens, lens}, o4, ap, {}, {}, ws_));
  MLXN_TRY(ops::matmul(s, att_, L.wo, o_));
  MLXN_TRY(ops::add(s, x_, o_, x_));
  MLXN_TRY(ops::add(s, x_, L.bo, x_));
  MLXN_TRY(ops::layer_norm(s, x_, L.attn_ln_w, L.attn_ln_b, x_, {c.ln_eps}));
  if (act_ != DType::F32) MLXN_TRY(ops::cast(s, x_, xa_));

  MLXN_TRY(ops::matmul(s, xin, L.w_up, up_));
  MLXN_TRY(ops::add(s, up_, L.b_up, up_));
  MLXN_TRY(ops::activation(s, c.act, up_, up_));
  MLXN_TRY(ops::matmul(s, up_, L.w_down, o_));
  MLXN_TRY(ops::add(s, x_, o_, x_));
  MLXN_TRY(ops::add(s, x_, L.b_down, x_));
  MLXN_TRY(ops::layer_norm(s, x_, L.out_ln_w, L.out_ln_b, x_, {c.ln_eps}));
  if (act_ != DType::F32) MLXN_TRY(ops::cast(s, x_, xa_));
  return Status::ok();
}

Result<std::vector<std::vector<float>>> BertModel::embed(std::span<const std::vector<int32_t>> batch) {
  return embed(batch, config_.pooling, config_.normalize);
}

Result<std::vector<std::vector<float>>> BertModel::embed(std::span<const std::vector<int32_t>> batch, Pooling pooling,
                                                         bool normalize) {
  const auto& c = config_;
  const auto B = static_cast<int64_t>(batch.size());
  if (B == 0) return std::vector<std::vector<float>>{};
  const int64_t limit = std::min(c.n_pos, c.max_seq_len);
  int64_t T = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto& seq = batch[static_cast<size_t>(b)];
    const auto n = static_cast<int64_t>(seq.size());
    if (n == 0) return invalid_argument(kOp, "sequence ", b, " of the batch is empty");
    if (n > limit)
      return invalid_argument(kOp, "sequence ", b, " has ", n, " tokens; the model takes at most ", limit,
                              " (truncate when tokenizing)");
    for (int32_t t : seq)
      if (t < 0 || t >= c.n_vocab)
        return invalid_argument(kOp, "token id ", t, " in sequence ", b, " is not in [0, ", c.n_vocab, ")");
    T = std::max(T, n);
  }
  const int64_t N = B * T, d = c.n_embd, H = c.n_head, Dp = weights_.head_dim_padded;

  // Host-side inputs: ids and positions padded with 0, the lengths, and the pooling weights.
  std::vector<int32_t> ids(static_cast<size_t>(N), 0), pos(static_cast<size_t>(N), 0), lens(static_cast<size_t>(B));
  std::vector<float> mask(static_cast<size_t>(N), 0.0f), inv_len(static_cast<size_t>(B));
  std::vector<int32_t> first(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto& seq = batch[static_cast<size_t>(b)];
    const auto n = static_cast<int64_t>(seq.size());
    for (int64_t t = 0; t < n; ++t) {
      ids[static_cast<size_t>(b * T + t)] = seq[static_cast<size_t>(t)];
      pos[static_cast<size_t>(b * T + t)] = static_cast<int32_t>(t);
      mask[static_cast<size_t>(b * T + t)] = 1.0f;
    }
    lens[static_cast<size_t>(b)] = static_cast<int32_t>(n);
    inv_len[static_cast<size_t>(b)] = static_cast<float>(1.0 / static_cast<double>(n));
    first[static_cast<size_t>(b)] = static_cast<int32_t>(b * T);
  }

  // Activations for this batch shape (an encoder call is one pass: no reuse across calls is attempted).
  MLXN_TRY(session_.finish());
  auto alloc = [&](DType t, const Shape& sh) { return device_.alloc(t, sh); };
  MLXN_ASSIGN_OR_RETURN(Buffer ids_d, alloc(DType::I32, Shape{N}));
  MLXN_ASSIGN_OR_RETURN(Buffer pos_d, alloc(DType::I32, Shape{N}));
  MLXN_ASSIGN_OR_RETURN(Buffer lens_d, alloc(DType::I32, Shape{B}));
  MLXN_ASSIGN_OR_RETURN(Buffer mask_d, alloc(DType::F32, Shape{N, 1}));
  MLXN_ASSIGN_OR_RETURN(Buffer inv_d, alloc(DType::F32, Shape{B, 1}));
  MLXN_ASSIGN_OR_RETURN(Buffer first_d, alloc(DType::I32, Shape{B}));
  MLXN_TRY(ids_d.upload(ids.data(), ids.size() * 4));
  MLXN_TRY(pos_d.upload(pos.data(), pos.size() * 4));
  MLXN_TRY(lens_d.upload(lens.data(), lens.size() * 4));
  MLXN_TRY(mask_d.upload(mask.data(), mask.size() * 4));
  MLXN_TRY(inv_d.upload(inv_len.data(), inv_len.size() * 4));
  MLXN_TRY(first_d.upload(first.data(), first.size() * 4));
  MLXN_ASSIGN_OR_RETURN(x_, alloc(DType::F32, Shape{N, d}));
  MLXN_ASSIGN_OR_RETURN(tmp_, alloc(DType::F32, Shape{N, d}));
  if (act_ != DType::F32) {
    MLXN_ASSIGN_OR_RETURN(xa_, alloc(act_, Shape{N, d}));
  }
  MLXN_ASSIGN_OR_RETURN(q_, alloc(act_, Shape{N, H * Dp}));
  if (act_ != kv_) {
    MLXN_ASSIGN_OR_RETURN(k_, alloc(act_, Shape{N, H * Dp}));
    MLXN_ASSIGN_OR_RETURN(v_, alloc(act_, Shape{N, H * Dp}));
  }
  MLXN_ASSIGN_OR_RETURN(kc_, alloc(kv_, Shape{B, T, H, Dp}));
  MLXN_ASSIGN_OR_RETURN(vc_, alloc(kv_, Shape{B, T, H, Dp}));
  MLXN_ASSIGN_OR_RETURN(att_, alloc(act_, Shape{N, H * Dp}));
  MLXN_ASSIGN_OR_RETURN(o_, alloc(act_, Shape{N, d}));
  MLXN_ASSIGN_OR_RETURN(up_, alloc(act_, Shape{N, c.n_ff}));
  {
    MLXN_ASSIGN_OR_RETURN(Buffer q4, q_.view(0, act_, Shape{B, T, H, Dp}));
    ops::KvCache cache;
    cache.k = kc_;
    cache.v = vc_;
    const size_t ws = ops::attention_workspace_bytes(device_, q4, cache);
    MLXN_ASSIGN_OR_RETURN(ws_, alloc(DType::U8, Shape{static_cast<int64_t>(std::max<size_t>(ws, 16))}));
  }

  Session& s = session_;
  // Embeddings: word + position + token type 0, then LayerNorm.
  MLXN_TRY(ops::embedding(s, weights_.tok_embd, ids_d, x_));
  MLXN_TRY(ops::embedding(s, weights_.pos_embd, pos_d, tmp_));
  MLXN_TRY(ops::add(s, x_, tmp_, x_));
  MLXN_ASSIGN_OR_RETURN(Buffer type0, rows_of(weights_.type_embd, 1));
  MLXN_TRY(ops::add(s, x_, type0, x_));
  MLXN_TRY(ops::layer_norm(s, x_, weights_.embd_ln_w, weights_.embd_ln_b, x_, {c.ln_eps}));
  if (act_ != DType::F32) MLXN_TRY(ops::cast(s, x_, xa_));
  for (int64_t il = 0; il < c.n_layer; ++il) MLXN_TRY(layer(il, B, T, lens_d));

  // Pooling into [B, d] f32.
  // Scratch buffers recorded ops read must outlive the session's work: declared here, released after finish().
  MLXN_ASSIGN_OR_RETURN(Buffer pooled, alloc(DType::F32, Shape{B, d}));
  Buffer xt;
  if (pooling == Pooling::Cls) {
    MLXN_TRY(ops::gather_rows(s, x_, first_d, pooled));
  } else {
    // Zero the padding rows, sum each sequence's rows (transposed so the sum runs along the last dimension), then
    // divide by the length.
    MLXN_TRY(ops::mul(s, x_, mask_d, tmp_));
    MLXN_ASSIGN_OR_RETURN(Buffer t3, tmp_.view(0, DType::F32, Shape{B, T, d}));
    MLXN_ASSIGN_OR_RETURN(xt, alloc(DType::F32, Shape{B, d, T}));
    MLXN_TRY(ops::permute(s, t3, {0, 2, 1}, xt));
    MLXN_TRY(ops::row_sum(s, xt, pooled));
    MLXN_TRY(ops::mul(s, pooled, inv_d, pooled));
  }
  if (normalize) MLXN_TRY(ops::l2_norm(s, pooled, pooled));
  MLXN_TRY(s.finish());
  std::vector<float> host(static_cast<size_t>(B * d));
  MLXN_TRY(pooled.download(host.data(), host.size() * 4));
  std::vector<std::vector<float>> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) out[static_cast<size_t>(b)].assign(host.begin() + b * d, host.begin() + (b + 1) * d);
  return out;
}

}  // namespace mlxn::models
