// The decoder forward pass: prefill in chunks, eager and graph-captured decode steps.
#include "mlxn/models/model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <numeric>

#include "mlxn/ops/activation.h"
#include "mlxn/ops/attention.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/embedding.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/norm.h"
#include "mlxn/ops/rope.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "model";

// The first n rows of a [rows, cols] buffer, as [n, cols].
Result<Buffer> rows(const Buffer& b, int64_t n) { return b.view(0, b.dtype(), Shape{n, b.shape()[1]}); }
// Row r of a [rows, cols] buffer, as [1, cols].
Result<Buffer> row(const Buffer& b, int64_t r) {
  const int64_t cols = b.shape()[1];
  return b.view(static_cast<size_t>(r * cols) * dtype_size(b.dtype()), b.dtype(), Shape{1, cols});
}

// y = x W^T with W plain / GGML blocks or, for MLX checkpoints, affine-quantized.
Status linear(Session& s, const Buffer& x, const Buffer& w, const ops::AffineWeight& a, const Buffer& y) {
  return a.packed.valid() ? ops::matmul_affine(s, x, a, y) : ops::matmul(s, x, w, y);
}
Status linear(Session& s, const Buffer& x, const Buffer& w, const ops::AffineWeight& a, const Buffer& y,
              const ops::MatmulFusion& f) {
  return a.packed.valid() ? ops::matmul_affine(s, x, a, y, f) : ops::matmul(s, x, w, y, f);
}
// Whether a weight takes the fused matmul forms at one row of K columns.
// MLXN_MODEL_FUSE_MATMUL=0 keeps the norms and adds out of the matmuls (A/B runs).
bool fusable(const Device& d, const Buffer& w, const ops::AffineWeight& a, int64_t K) {
  static const bool on = [] {
    const char* v = std::getenv("MLXN_MODEL_FUSE_MATMUL");
    return v == nullptr || std::string_view(v) != "0";
  }();
  return on && (a.packed.valid() || (w.valid() && is_quantized(w.dtype()))) && ops::matmul_fuses(d, 1, K);
}

}  // namespace

bool fusion_default() {
  static const bool on = [] {
    const char* v = std::getenv("MLXN_MODEL_FUSE");
    return v == nullptr || std::string_view(v) != "0";
  }();
  return on;
}

Model::Model(ModelConfig config, ModelWeights weights, Device dev, Session session, const ModelOptions& o)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      device_(std::move(dev)),
      session_(std::move(session)),
      opt_(o),
      fuse_(o.fuse.value_or(fusion_default())) {}

Model::~Model() {
  (void)session_.finish();  // nothing recorded may outlive the buffers it reads
}

Result<std::unique_ptr<Model>> Model::load(const std::string& path, const Device& dev, const ModelOptions& o) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    MLXN_ASSIGN_OR_RETURN(auto st, io::SafetensorsModel::open(path));
    if (!st.config()) return error(StatusCode::NotFound, kOp, path, " has no config.json");
    MLXN_ASSIGN_OR_RETURN(ModelConfig c, config_from_hf(*st.config()));
    MLXN_ASSIGN_OR_RETURN(ModelWeights w, load_weights(st, c, dev, o.fuse.value_or(fusion_default())));
    c.tied_embeddings = w.output_affine.packed.valid()
                            ? w.output_affine.packed.storage_id() == w.tok_affine.packed.storage_id()
                            : w.output.storage_id() == w.tok_embd.storage_id();
    return create_for_weights(std::move(c), std::move(w), dev, o);
  }
  MLXN_ASSIGN_OR_RETURN(auto f, io::GgufFile::open(path));
  MLXN_ASSIGN_OR_RETURN(ModelConfig c, config_from_gguf(f));
  MLXN_ASSIGN_OR_RETURN(ModelWeights w, load_weights(f, c, dev, o.fuse.value_or(fusion_default())));
  return create_for_weights(std::move(c), std::move(w), dev, o);
}

// bf16 checkpoints (GGUF or safetensors) run bf16 activations on CUDA unless the caller chose: the dense matmuls then
// take the bf16 x bf16 tensor-core paths (cuBLASLt for prefill). f16 activations against bf16 weights have no
// cuBLASLt form and ran prefill on the decode kernel: 731 prompt tokens/s for Llama-3-8B BF16 on the H200.
Result<std::unique_ptr<Model>> Model::create_for_weights(ModelConfig config, ModelWeights weights, const Device& dev,
                                                         const ModelOptions& o) {
  auto bf16 = [](const Buffer& b) { return b.valid() && b.dtype() == DType::BF16; };
  bool bf16_weights = bf16(weights.tok_embd);
  if (!weights.layers.empty()) {
    const LayerWeights& l = weights.layers.front();
    bf16_weights = bf16_weights || bf16(l.wo) || bf16(l.w_down);
  }
  if (!o.act_dtype && dev.backend() == Backend::Cuda && bf16_weights) {
    ModelOptions oo = o;
    oo.act_dtype = DType::BF16;
    return create(std::move(config), std::move(weights), dev, oo);
  }
  return create(std::move(config), std::move(weights), dev, o);
}

Result<std::unique_ptr<Model>> Model::create(ModelConfig config, ModelWeights weights, const Device& dev,
                                             const ModelOptions& o) {
  MLXN_TRY(config.validate());
  if (static_cast<int64_t>(weights.layers.size()) != config.n_layer)
    return invalid_argument(kOp, "weights have ", weights.layers.size(), " layers, the config ", config.n_layer);
  if (o.max_context <= 0 || o.max_chunk <= 0)
    return invalid_argument(kOp, "max_context ", o.max_context, " and max_chunk ", o.max_chunk, " must be positive");
  MLXN_ASSIGN_OR_RETURN(Session s, Session::create(dev, o.session));
  std::unique_ptr<Model> m(new Model(std::move(config), std::move(weights), dev, std::move(s), o));
  MLXN_TRY(m->init());
  return m;
}

Result<Buffer> Model::alloc(DType t, const Shape& shape, uint64_t* counter) {
  auto b = device_.alloc(t, shape);
  if (!b) return error(b.status().code(), kOp, "allocating ", dtype_name(t), " ", shape, ": ", b.status().message());
  *counter += b->nbytes();
  return b;
}

Result<Buffer> Model::step_view(int slot) const {
  return step_block_.view(static_cast<size_t>(slot) * 4, DType::I32, Shape{1});
}

Status Model::init() {
  const auto& c = config_;
  const bool cuda = device_.backend() == Backend::Cuda;
  // Gemma's activations outgrow f16's range on real weights (HF runs it in bf16 or f32).
  const DType cuda_act = c.arch == Arch::Gemma3 ? DType::BF16 : DType::F16;
  act_ = opt_.act_dtype.value_or(cuda ? cuda_act : DType::F32);
  if (!is_compute_float(act_)) return invalid_argument(kOp, "act_dtype ", act_, " is not f32, f16 or bf16");
  // CUDA attention takes f16 / bf16 queries.
  if (cuda && act_ == DType::F32) return unsupported(kOp, "act_dtype f32 on CUDA (attention needs f16 or bf16)");
  kv_ = opt_.kv_dtype.value_or(act_ == DType::BF16 ? DType::BF16 : DType::F16);
  mem_.weights = weights_.bytes;

  const int64_t T = opt_.max_chunk, C = opt_.max_context, d = c.n_embd, D = c.head_dim;
  const int64_t qd = c.n_head * D, kvd = c.n_head_kv * D;
  uint64_t* a = &mem_.activations;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    ops::KvCache kc;
    MLXN_ASSIGN_OR_RETURN(kc.k, alloc(kv_, Shape{1, C, c.n_head_kv, D}, &mem_.kv_cache));
    MLXN_ASSIGN_OR_RETURN(kc.v, alloc(kv_, Shape{1, C, c.n_head_kv, D}, &mem_.kv_cache));
    cache_.push_back(std::move(kc));
  }
  MLXN_ASSIGN_OR_RETURN(resid_, alloc(DType::F32, Shape{T, d}, a));
  MLXN_ASSIGN_OR_RETURN(tmp_, alloc(DType::F32, Shape{T, d}, a));
  MLXN_ASSIGN_OR_RETURN(xn_, alloc(act_, Shape{T, d}, a));
  MLXN_ASSIGN_OR_RETURN(q_, alloc(act_, Shape{T, qd}, a));
  MLXN_ASSIGN_OR_RETURN(k_, alloc(act_, Shape{T, kvd}, a));
  MLXN_ASSIGN_OR_RETURN(v_, alloc(act_, Shape{T, kvd}, a));
  MLXN_ASSIGN_OR_RETURN(attn_, alloc(act_, Shape{T, qd}, a));
  MLXN_ASSIGN_OR_RETURN(o_, alloc(act_, Shape{T, d}, a));
  MLXN_ASSIGN_OR_RETURN(gate_, alloc(act_, Shape{T, c.n_ff}, a));
  MLXN_ASSIGN_OR_RETURN(up_, alloc(act_, Shape{T, c.n_ff}, a));
  MLXN_ASSIGN_OR_RETURN(xf_, alloc(DType::F32, Shape{1, d}, a));
  if (fuse_) {
    MLXN_ASSIGN_OR_RETURN(qkv_, alloc(act_, Shape{1, qd + 2 * kvd}, a));
    MLXN_ASSIGN_OR_RETURN(gate_up_, alloc(act_, Shape{1, 2 * c.n_ff}, a));
  }
  MLXN_ASSIGN_OR_RETURN(logits_, alloc(DType::F32, Shape{1, c.n_vocab}, a));
  MLXN_ASSIGN_OR_RETURN(ids_, alloc(DType::I32, Shape{T}, a));
  MLXN_ASSIGN_OR_RETURN(positions_, alloc(DType::I32, Shape{T}, a));
  MLXN_ASSIGN_OR_RETURN(token_, alloc(DType::I32, Shape{1}, a));
  MLXN_TRY(token_.fill_bytes(0));

  // One workspace serves every call: the split count of the decode kernel depends on the capacity, not the length.
  MLXN_ASSIGN_OR_RETURN(Buffer q1, q_.view(0, act_, Shape{1, 1, c.n_head, D}));
  MLXN_ASSIGN_OR_RETURN(Buffer qT, q_.view(0, act_, Shape{1, T, c.n_head, D}));
  const size_t ws = std::max(ops::attention_workspace_bytes(device_, q1, cache_[0]),
                             ops::attention_workspace_bytes(device_, qT, cache_[0]));
  MLXN_ASSIGN_OR_RETURN(attn_ws_, alloc(DType::U8, Shape{static_cast<int64_t>(std::max<size_t>(ws, 16))}, a));
  const size_t sws = ops::sample_workspace_bytes(1, c.n_vocab);
  MLXN_ASSIGN_OR_RETURN(sample_ws_, alloc(DType::U8, Shape{static_cast<int64_t>(std::max<size_t>(sws, 16))}, a));

  // The step-parameter block seen as a buffer, so ops read the position and KV length from it at run time.
  auto* step = const_cast<uint32_t*>(session_.step_params_device());
  MLXN_ASSIGN_OR_RETURN(step_block_,
                        Buffer::wrap(device_, step, kStepParamSlots * 4, DType::I32, Shape{kStepParamSlots}, nullptr));
  return Status::ok();
}

Status Model::residual_add_norm(const Buffer& x, const Buffer& delta, const Buffer& w, const Buffer& out) {
  // add_rms_norm takes an f16 / bf16 delta into the f32 stream: used when fusing (the unfused path keeps the
  // separate add and norm it had for mixed dtypes).
  if (w.valid() && (delta.dtype() == x.dtype() || (fuse_ && x.dtype() == DType::F32)))
    return ops::add_rms_norm(session_, x, delta, w, x, out, {config_.rms_eps});
  MLXN_TRY(ops::add(session_, x, delta, x));
  if (!w.valid()) return Status::ok();
  return ops::rms_norm(session_, x, w, out, {config_.rms_eps});
}

Status Model::residual_norm_add(const Buffer& x, const Buffer& delta, const Buffer& w, int64_t n) {
  if (delta.dtype() == x.dtype()) return ops::rms_norm_add(session_, delta, w, x, x, {config_.rms_eps});
  MLXN_ASSIGN_OR_RETURN(Buffer t, rows(tmp_, n));
  MLXN_TRY(ops::rms_norm(session_, delta, w, t, {config_.rms_eps}));
  return ops::add(session_, x, t, x);
}

bool Model::matmul_fused(int64_t il, int64_t n) const {
  const auto& c = config_;
  const auto& L = weights_.layers[static_cast<size_t>(il)];
  if (!fuse_ || n != 1 || c.post_norms) return false;
  const Device& d = device_;
  const int64_t e = c.n_embd;
  // The projections this step runs: the fused q|k|v and gate|up where they were loaded fused (same types).
  const bool qkv = L.wqkv.valid() || L.affine.wqkv.packed.valid()
                       ? fusable(d, L.wqkv, L.affine.wqkv, e)
                       : fusable(d, L.wq, L.affine.wq, e) && fusable(d, L.wk, L.affine.wk, e) &&
                             fusable(d, L.wv, L.affine.wv, e);
  const bool gate_up = L.w_gate_up.valid() || L.affine.w_gate_up.packed.valid()
                           ? fusable(d, L.w_gate_up, L.affine.w_gate_up, e)
                           : fusable(d, L.w_gate, L.affine.w_gate, e) && fusable(d, L.w_up, L.affine.w_up, e);
  return qkv && gate_up && fusable(d, L.wo, L.affine.wo, c.n_head * c.head_dim) &&
         fusable(d, L.w_down, L.affine.w_down, c.n_ff);
}

bool Model::head_fused() const {
  return fuse_ && fusable(device_, weights_.output, weights_.output_affine, config_.n_embd);
}

Status Model::layer(int64_t il, int64_t n, const Buffer& positions, const Buffer& kv_lens, bool normed,
                    const Buffer& next_norm, const Buffer& next_out) {
  const auto& c = config_;
  const auto& L = weights_.layers[static_cast<size_t>(il)];
  const int64_t D = c.head_dim, qd = c.n_head * D, kvd = c.n_head_kv * D;
  const size_t es = dtype_size(act_);
  Session& s = session_;
  MLXN_ASSIGN_OR_RETURN(Buffer x, rows(resid_, n));
  MLXN_ASSIGN_OR_RETURN(Buffer xn, rows(xn_, n));
  MLXN_ASSIGN_OR_RETURN(Buffer att, rows(attn_, n));
  MLXN_ASSIGN_OR_RETURN(Buffer o, rows(o_, n));
  MLXN_ASSIGN_OR_RETURN(Buffer gate, rows(gate_, n));
  // Single-token steps (the captured decode graph) run the fused projections where the weights were fused.
  const bool one_qkv = fuse_ && n == 1 && (L.wqkv.valid() || L.affine.wqkv.packed.valid());
  const bool one_gate_up = fuse_ && n == 1 && (L.w_gate_up.valid() || L.affine.w_gate_up.packed.valid());
  // The norms and residual adds inside the matmuls.
  const bool mm = matmul_fused(il, n);
  ops::MatmulFusion attn_in, ffn_in, add_to_x;
  attn_in.norm = L.attn_norm;
  ffn_in.norm = L.ffn_norm;
  attn_in.eps = ffn_in.eps = c.rms_eps;
  add_to_x.residual = x;

  // Attention block. Unless the previous layer's last add was fused with this norm (or the q|k|v matmul norms x
  // itself), it runs here.
  if (!normed && !mm) MLXN_TRY(ops::rms_norm(s, x, L.attn_norm, xn, {c.rms_eps}));
  Buffer q, k, v;
  if (one_qkv) {
    // One matmul into [1, Nq + Nk + Nv]: q, k and v are adjacent slices of the row.
    if (mm)
      MLXN_TRY(linear(s, x, L.wqkv, L.affine.wqkv, qkv_, attn_in));
    else
      MLXN_TRY(linear(s, xn, L.wqkv, L.affine.wqkv, qkv_));
    MLXN_ASSIGN_OR_RETURN(q, qkv_.view(0, act_, Shape{1, qd}));
    MLXN_ASSIGN_OR_RETURN(k, qkv_.view(static_cast<size_t>(qd) * es, act_, Shape{1, kvd}));
    MLXN_ASSIGN_OR_RETURN(v, qkv_.view(static_cast<size_t>(qd + kvd) * es, act_, Shape{1, kvd}));
  } else {
    MLXN_ASSIGN_OR_RETURN(q, rows(q_, n));
    MLXN_ASSIGN_OR_RETURN(k, rows(k_, n));
    MLXN_ASSIGN_OR_RETURN(v, rows(v_, n));
    const Buffer& h = mm ? x : xn;
    const ops::MatmulFusion f = mm ? attn_in : ops::MatmulFusion{};
    MLXN_TRY(linear(s, h, L.wq, L.affine.wq, q, f));
    MLXN_TRY(linear(s, h, L.wk, L.affine.wk, k, f));
    MLXN_TRY(linear(s, h, L.wv, L.affine.wv, v, f));
  }
  if (c.qkv_bias) {
    if (one_qkv && L.bqkv.valid()) {
      MLXN_TRY(ops::add(s, qkv_, L.bqkv, qkv_));
    } else {
      MLXN_TRY(ops::add(s, q, L.bq, q));
      MLXN_TRY(ops::add(s, k, L.bk, k));
      MLXN_TRY(ops::add(s, v, L.bv, v));
    }
  }
  MLXN_ASSIGN_OR_RETURN(Buffer qh, q.view(0, act_, Shape{n, c.n_head, D}));
  MLXN_ASSIGN_OR_RETURN(Buffer kh, k.view(0, act_, Shape{n, c.n_head_kv, D}));
  const bool sliding = c.sliding(il);
  ops::RopeParams rp;
  rp.layout = c.rope_layout;
  rp.rope_dim = c.rope_dim;
  rp.base = sliding ? c.rope_base_local : c.rope_base;
  Buffer freq_factors;
  if (!sliding) {  // Gemma 3's sliding layers run unscaled RoPE with their own base
    if (c.rope_scaling == RopeScaling::Linear) rp.freq_scale = 1.0f / c.rope_factor;
    if (c.rope_scaling == RopeScaling::Yarn) {
      rp.freq_scale = 1.0f / c.rope_factor;
      rp.ext_factor = 1.0f;
      rp.n_ctx_orig = c.rope_orig_ctx;
    }
    freq_factors = weights_.rope_freqs;
  }
  if (c.qk_norm) {
    // Different weights for q and k: two launches.
    const ops::HeadNormParams hp{c.rms_eps, 0.0f};
    MLXN_TRY(ops::rope_head_norm(s, qh, L.q_norm, positions, freq_factors, qh, rp, hp));
    MLXN_TRY(ops::rope_head_norm(s, kh, L.k_norm, positions, freq_factors, kh, rp, hp));
  } else if (one_qkv) {
    // q's and k's heads are adjacent in the fused row and share the token's position: one launch rotates both.
    MLXN_ASSIGN_OR_RETURN(Buffer qk, qkv_.view(0, act_, Shape{1, c.n_head + c.n_head_kv, D}));
    MLXN_TRY(ops::rope(s, qk, positions, freq_factors, qk, rp));
  } else {
    MLXN_TRY(ops::rope(s, qh, positions, freq_factors, qh, rp));
    MLXN_TRY(ops::rope(s, kh, positions, freq_factors, kh, rp));
  }
  MLXN_ASSIGN_OR_RETURN(Buffer q4, q.view(0, act_, Shape{1, n, c.n_head, D}));
  MLXN_ASSIGN_OR_RETURN(Buffer k4, k.view(0, act_, Shape{1, n, c.n_head_kv, D}));
  MLXN_ASSIGN_OR_RETURN(Buffer v4, v.view(0, act_, Shape{1, n, c.n_head_kv, D}));
  MLXN_ASSIGN_OR_RETURN(Buffer o4, att.view(0, act_, Shape{1, n, c.n_head, D}));
  const ops::SeqLens lens{kv_lens, {}};
  const ops::KvCache& kc = cache_[static_cast<size_t>(il)];
  MLXN_TRY(ops::kv_cache_write(s, k4, v4, kc, lens));
  ops::AttentionParams ap;
  ap.scale = c.attn_scale;
  ap.causal = true;
  ap.window = sliding ? c.sliding_window : 0;
  ap.softcap = c.attn_softcap;
  MLXN_TRY(ops::attention(s, q4, kc, lens, o4, ap, {}, {}, attn_ws_));
  if (mm) {
    // x += a Wo^T in the matmul; gate|up (or gate and up) normalise x themselves; x += h Wd^T in the down matmul.
    MLXN_TRY(linear(s, att, L.wo, L.affine.wo, x, add_to_x));
    if (one_gate_up && !L.affine.w_gate_up.packed.valid()) {
      // GGML gate|up: act(gate) * up in the matmul's store (ops::MatmulFusion::glu), no [1, 2 ff] intermediate.
      ops::MatmulFusion ffn_glu = ffn_in;
      ffn_glu.glu = true;
      ffn_glu.act = c.ffn_act;
      MLXN_TRY(ops::matmul(s, x, L.w_gate_up, gate, ffn_glu));
    } else if (one_gate_up) {
      MLXN_TRY(linear(s, x, L.w_gate_up, L.affine.w_gate_up, gate_up_, ffn_in));
      MLXN_TRY(ops::glu_split(s, c.ffn_act, gate_up_, gate));
    } else {
      MLXN_ASSIGN_OR_RETURN(Buffer up, rows(up_, n));
      MLXN_TRY(linear(s, x, L.w_gate, L.affine.w_gate, gate, ffn_in));
      MLXN_TRY(linear(s, x, L.w_up, L.affine.w_up, up, ffn_in));
      MLXN_TRY(ops::glu(s, c.ffn_act, gate, up, gate));
    }
    return linear(s, gate, L.w_down, L.affine.w_down, x, add_to_x);
  }
  MLXN_TRY(linear(s, att, L.wo, L.affine.wo, o));
  if (c.post_norms) {
    MLXN_TRY(residual_norm_add(x, o, L.post_attn_norm, n));
    MLXN_TRY(ops::rms_norm(s, x, L.ffn_norm, xn, {c.rms_eps}));
  } else {
    MLXN_TRY(residual_add_norm(x, o, L.ffn_norm, xn));
  }

  // Feed-forward block: act(gate) * up, written over gate.
  if (one_gate_up) {
    MLXN_TRY(linear(s, xn, L.w_gate_up, L.affine.w_gate_up, gate_up_));
    MLXN_TRY(ops::glu_split(s, c.ffn_act, gate_up_, gate));
  } else {
    MLXN_ASSIGN_OR_RETURN(Buffer up, rows(up_, n));
    MLXN_TRY(linear(s, xn, L.w_gate, L.affine.w_gate, gate));
    MLXN_TRY(linear(s, xn, L.w_up, L.affine.w_up, up));
    MLXN_TRY(ops::glu(s, c.ffn_act, gate, up, gate));
  }
  MLXN_TRY(linear(s, gate, L.w_down, L.affine.w_down, o));
  if (c.post_norms) return residual_norm_add(x, o, L.post_ffn_norm, n);
  return residual_add_norm(x, o, next_norm, next_out);
}

Status Model::forward(int64_t n, const Buffer& ids, const Buffer& positions, bool want_logits) {
  const auto& c = config_;
  MLXN_ASSIGN_OR_RETURN(Buffer x, rows(resid_, n));
  MLXN_ASSIGN_OR_RETURN(Buffer xn, rows(xn_, n));
  MLXN_ASSIGN_OR_RETURN(Buffer kv_lens, step_view(kSlotKvLen));
  MLXN_TRY(ops::embedding(session_, weights_.tok_lookup, ids, x, {c.embed_scale}));
  // Fusing, a layer's last residual add also norms x for the next layer (or, for one token, for the LM head).
  // Gemma 3's post norms end a layer with rms_norm_add instead.
  const bool chain = fuse_ && !c.post_norms;
  bool head_normed = false;
  // A layer whose matmuls take the norms (matmul_fused) ends with x updated and no norm: the next layer or the head
  // norms x itself.
  bool normed = false;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    Buffer next_norm, next_out;
    const bool mm = matmul_fused(il, n);
    if (chain && !mm && il + 1 < c.n_layer) {
      next_norm = weights_.layers[static_cast<size_t>(il + 1)].attn_norm;
      next_out = xn;
    } else if (chain && !mm && want_logits && n == 1 && !head_fused()) {
      next_norm = weights_.output_norm;
      next_out = xf_;
      head_normed = true;
    }
    MLXN_TRY(layer(il, n, positions, kv_lens, normed, next_norm, next_out));
    normed = next_norm.valid() && il + 1 < c.n_layer;
  }
  if (!want_logits) return Status::ok();
  MLXN_ASSIGN_OR_RETURN(Buffer last, row(resid_, n - 1));
  if (n == 1 && head_fused()) {
    ops::MatmulFusion head_in;
    head_in.norm = weights_.output_norm;
    head_in.eps = c.rms_eps;
    MLXN_TRY(linear(session_, last, weights_.output, weights_.output_affine, logits_, head_in));
    if (c.final_softcap > 0.0f) MLXN_TRY(ops::softcap(session_, logits_, logits_, c.final_softcap));
    return Status::ok();
  }
  if (!head_normed) MLXN_TRY(ops::rms_norm(session_, last, weights_.output_norm, xf_, {c.rms_eps}));
  MLXN_TRY(linear(session_, xf_, weights_.output, weights_.output_affine, logits_));
  if (c.final_softcap > 0.0f) MLXN_TRY(ops::softcap(session_, logits_, logits_, c.final_softcap));
  return Status::ok();
}

Status Model::prefill(std::span<const int32_t> tokens, int64_t chunk) {
  if (tokens.empty()) return invalid_argument(kOp, "prefill of no tokens");
  if (chunk <= 0 || chunk > opt_.max_chunk) chunk = opt_.max_chunk;
  const auto n_total = static_cast<int64_t>(tokens.size());
  if (pos_ + n_total > opt_.max_context)
    return error(StatusCode::OutOfRange, kOp, "prefill of ", n_total, " tokens at position ", pos_,
                 " exceeds the context of ", opt_.max_context);
  for (int32_t t : tokens)
    if (t < 0 || t >= config_.n_vocab)
      return invalid_argument(kOp, "token id ", t, " is not in [0, ", config_.n_vocab, ")");
  std::vector<int32_t> pos(static_cast<size_t>(chunk));
  for (int64_t done = 0; done < n_total; done += chunk) {
    const int64_t n = std::min(chunk, n_total - done);
    // The previous chunk may still read ids / positions: uploads wait for it.
    MLXN_TRY(session_.finish());
    MLXN_ASSIGN_OR_RETURN(Buffer ids, ids_.view(0, DType::I32, Shape{n}));
    MLXN_ASSIGN_OR_RETURN(Buffer ps, positions_.view(0, DType::I32, Shape{n}));
    MLXN_TRY(ids.upload(tokens.data() + done, static_cast<size_t>(n) * 4));
    std::iota(pos.begin(), pos.begin() + n, static_cast<int32_t>(pos_));
    MLXN_TRY(ps.upload(pos.data(), static_cast<size_t>(n) * 4));
    MLXN_TRY(session_.set_step_i32(kSlotKvLen, static_cast<int32_t>(pos_ + n)));
    MLXN_TRY(forward(n, ids, ps, done + n == n_total));
    pos_ += n;
  }
  return Status::ok();
}

Status Model::decode(int32_t token) {
  if (pos_ + 1 > opt_.max_context)
    return error(StatusCode::OutOfRange, kOp, "decode at position ", pos_, " exceeds the context of ",
                 opt_.max_context);
  MLXN_TRY(set_token(token));
  MLXN_TRY(session_.set_step_i32(kSlotPosition, static_cast<int32_t>(pos_)));
  MLXN_TRY(session_.set_step_i32(kSlotKvLen, static_cast<int32_t>(pos_ + 1)));
  MLXN_ASSIGN_OR_RETURN(Buffer p, step_view(kSlotPosition));
  MLXN_TRY(forward(1, token_, p, true));
  ++pos_;
  return Status::ok();
}

Result<Graph> Model::capture_decode(const ops::SampleParams* sample) {
  MLXN_ASSIGN_OR_RETURN(Buffer p, step_view(kSlotPosition));
  MLXN_TRY(session_.begin_capture());
  Status st = forward(1, token_, p, true);
  if (st.is_ok() && sample != nullptr) {
    ops::SampleParams sp = *sample;
    sp.step_slot = kSlotSampleStep;
    st = ops::sample(session_, logits_, {}, token_, {}, sample_ws_, sp);
  }
  auto g = session_.end_capture();  // always ends the capture, even after an error
  if (!st.is_ok()) return st;
  return g;
}

Status Model::replay_decode(Graph& g, uint32_t sample_step) {
  if (pos_ + 1 > opt_.max_context)
    return error(StatusCode::OutOfRange, kOp, "decode at position ", pos_, " exceeds the context of ",
                 opt_.max_context);
  MLXN_TRY(session_.set_step_i32(kSlotPosition, static_cast<int32_t>(pos_)));
  MLXN_TRY(session_.set_step_i32(kSlotKvLen, static_cast<int32_t>(pos_ + 1)));
  MLXN_TRY(session_.set_step_u32(kSlotSampleStep, sample_step));
  MLXN_TRY(g.replay());
  ++pos_;
  return Status::ok();
}

Status Model::sample(const ops::SampleParams& p) {
  return ops::sample(session_, logits_, {}, token_, {}, sample_ws_, p);
}

Status Model::set_token(int32_t token) {
  if (token < 0 || token >= config_.n_vocab)
    return invalid_argument(kOp, "token id ", token, " is not in [0, ", config_.n_vocab, ")");
  MLXN_TRY(session_.finish());
  return token_.upload(&token, 4);
}

Result<int32_t> Model::read_token() {
  MLXN_TRY(session_.finish());
  int32_t t = 0;
  MLXN_TRY(token_.download(&t, 4));
  return t;
}

Result<std::vector<float>> Model::read_logits() {
  MLXN_TRY(session_.finish());
  std::vector<float> out(static_cast<size_t>(config_.n_vocab));
  MLXN_TRY(logits_.download(out.data(), out.size() * 4));
  return out;
}

}  // namespace mlxn::models
