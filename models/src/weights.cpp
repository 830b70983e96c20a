// Weight loading from GGUF (llama.cpp tensor names) and Hugging Face safetensors checkpoints.
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <utility>

#include "mlxn/core/half.h"
#include "mlxn/models/model.h"
#include "mlxn/ops/embedding.h"
#include "mlxn/ops/rope.h"
#include "mlxn/quant/quant.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "model";

// The little a loader needs from a weight file, so both formats share one assembly routine.
struct Source {
  std::function<std::optional<Shape>(const std::string&)> shape;
  std::function<Result<Buffer>(const std::string&, const Device&)> load;
  std::function<Result<std::vector<float>>(const std::string&)> to_f32;
  // The stored bytes of a tensor inside the mapping and the dtype a Buffer of it gets (empty: none).
  std::function<Result<std::pair<std::optional<DType>, std::span<const uint8_t>>>(const std::string&)> raw;
  std::string file;
  // MLX affine-quantized checkpoints (safetensors only; empty otherwise): whether a tensor's module is quantized,
  // its packed weight + scales + biases, and its dequantized f32 values.
  std::function<bool(const std::string&)> is_affine;
  std::function<Result<io::AffineWeight>(const std::string&, const Device&)> load_affine;
  std::function<Result<std::vector<float>>(const std::string&)> affine_to_f32;
};

enum class Role {
  AttnNorm,
  Wq,
  Wk,
  Wv,
  Wo,
  Bq,
  Bk,
  Bv,
  QNorm,
  KNorm,
  PostAttnNorm,
  FfnNorm,
  Gate,
  Up,
  Down,
  PostFfnNorm,
};

std::string gguf_name(Role r, int64_t il) {
  static const char* const kNames[] = {
      "attn_norm.weight",
      "attn_q.weight",
      "attn_k.weight",
      "attn_v.weight",
      "attn_output.weight",
      "attn_q.bias",
      "attn_k.bias",
      "attn_v.bias",
      "attn_q_norm.weight",
      "attn_k_norm.weight",
      "post_attention_norm.weight",
      "ffn_norm.weight",
      "ffn_gate.weight",
      "ffn_up.weight",
      "ffn_down.weight",
      "post_ffw_norm.weight",
  };
  return "blk." + std::to_string(il) + "." + kNames[static_cast<int>(r)];
}

std::string hf_name(Role r, int64_t il, const std::string& prefix, Arch arch) {
  const std::string l = prefix + "layers." + std::to_string(il) + ".";
  switch (r) {
    case Role::AttnNorm:
      return l + "input_layernorm.weight";
    case Role::Wq:
      return l + "self_attn.q_proj.weight";
    case Role::Wk:
      return l + "self_attn.k_proj.weight";
    case Role::Wv:
      return l + "self_attn.v_proj.weight";
    case Role::Wo:
      return l + "self_attn.o_proj.weight";
    case Role::Bq:
      return l + "self_attn.q_proj.bias";
    case Role::Bk:
      return l + "self_attn.k_proj.bias";
    case Role::Bv:
      return l + "self_attn.v_proj.bias";
    case Role::QNorm:
      return l + "self_attn.q_norm.weight";
    case Role::KNorm:
      return l + "self_attn.k_norm.weight";
    case Role::PostAttnNorm:
      return l + "post_attention_layernorm.weight";
    // Llama / Qwen call the pre-FFN norm post_attention_layernorm; Gemma 3 has both.
    case Role::FfnNorm:
      return l + (arch == Arch::Gemma3 ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight");
    case Role::Gate:
      return l + "mlp.gate_proj.weight";
    case Role::Up:
      return l + "mlp.up_proj.weight";
    case Role::Down:
      return l + "mlp.down_proj.weight";
    case Role::PostFfnNorm:
      return l + "post_feedforward_layernorm.weight";
  }
  return {};
}

class Loader {
 public:
  Loader(const Source& src, const ModelConfig& c, const Device& dev) : src_(src), c_(c), dev_(dev) {}

  // A [rows, cols] matrix in its stored type.
  Result<Buffer> matrix(const std::string& name, int64_t rows, int64_t cols) {
    MLXN_TRY(check(name, Shape{rows, cols}));
    auto b = src_.load(name, dev_);
    if (!b) return error(b.status().code(), kOp, "loading '", name, "': ", b.status().message());
    bytes += b->nbytes();
    return b;
  }
  // A vector converted to f32 with `offset` added (norm weights, biases); 1-D or any shape of n elements.
  Result<Buffer> vec(const std::string& name, int64_t n, float offset = 0.0f) {
    auto shape = src_.shape(name);
    if (!shape) return missing(name);
    if (shape->numel() != n)
      return invalid_argument(kOp, "tensor '", name, "' in ", src_.file, " has shape ", *shape, ", expected [", n, "]");
    auto v = src_.to_f32(name);
    if (!v) return error(v.status().code(), kOp, "reading '", name, "': ", v.status().message());
    if (offset != 0.0f)
      for (auto& x : *v) x += offset;
    MLXN_ASSIGN_OR_RETURN(Buffer b, dev_.alloc(DType::F32, Shape{n}));
    MLXN_TRY(b.upload(v->data(), v->size() * sizeof(float)));
    bytes += b.nbytes();
    return b;
  }
  bool has(const std::string& name) const { return src_.shape(name).has_value(); }
  bool affine(const std::string& name) const { return src_.is_affine && src_.is_affine(name); }

  // A [rows, cols] linear weight: MLX affine-quantized into `a`, anything else into `w`.
  Status linear(const std::string& name, int64_t rows, int64_t cols, Buffer& w, ops::AffineWeight& a) {
    if (!affine(name)) {
      MLXN_ASSIGN_OR_RETURN(w, matrix(name, rows, cols));
      return Status::ok();
    }
    auto q = src_.load_affine(name, dev_);
    if (!q) return error(q.status().code(), kOp, "loading '", name, "': ", q.status().message());
    if (q->rows != rows || q->cols != cols)
      return invalid_argument(kOp, "MLX-quantized '", name, "' in ", src_.file, " is [", q->rows, ", ", q->cols,
                              "], expected [", rows, ", ", cols, "]");
    a.packed = q->packed;
    a.scales = q->scales;
    a.biases = q->biases;
    a.bits = q->spec.bits;
    a.group_size = q->spec.group_size;
    bytes += a.packed.nbytes() + a.scales.nbytes() + a.biases.nbytes();
    return Status::ok();
  }
  // The dequantized copy of an MLX-quantized table in `t` (f32 or f16), for the embedding lookup.
  Result<Buffer> dequantized_copy(const std::string& name, int64_t rows, int64_t cols, DType t) {
    auto v = src_.affine_to_f32(name);
    if (!v) return error(v.status().code(), kOp, "dequantizing '", name, "': ", v.status().message());
    MLXN_ASSIGN_OR_RETURN(Buffer b, dev_.alloc(t, Shape{rows, cols}));
    if (t == DType::F32) {
      MLXN_TRY(b.upload(v->data(), v->size() * 4));
    } else {
      std::vector<uint16_t> h(v->size());
      for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_f16((*v)[i]);
      MLXN_TRY(b.upload(h.data(), h.size() * 2));
    }
    bytes += b.nbytes();
    return b;
  }

  Status missing(const std::string& name) const {
    return error(StatusCode::NotFound, kOp, "missing tensor '", name, "' in ", src_.file, " (", arch_name(c_.arch),
                 " needs it)");
  }
  Status check(const std::string& name, const Shape& want) const {
    auto shape = src_.shape(name);
    if (!shape) return missing(name);
    if (*shape != want)
      return invalid_argument(kOp, "tensor '", name, "' in ", src_.file, " has shape ", *shape, ", expected ", want);
    return Status::ok();
  }

  // A copy of a block-type table as f16 for the CUDA embedding lookup (which reads float tables only).
  Result<Buffer> f16_copy(const std::string& name, int64_t rows, int64_t cols) {
    auto v = src_.to_f32(name);
    if (!v) return v.status();
    std::vector<uint16_t> h(v->size());
    for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_f16((*v)[i]);
    MLXN_ASSIGN_OR_RETURN(Buffer b, dev_.alloc(DType::F16, Shape{rows, cols}));
    MLXN_TRY(b.upload(h.data(), h.size() * 2));
    bytes += b.nbytes();
    return b;
  }

  // Tensors of one stored type and `cols` columns uploaded back to back into one [sum rows, cols] allocation (the
  // names in order). An invalid Buffer when the types differ or a part would not start 16-byte aligned (kernels
  // then see different alignment than in their own allocations): the caller keeps the separate tensors.
  Result<Buffer> concat(const std::vector<std::string>& names, const std::vector<int64_t>& rows, int64_t cols) {
    std::vector<std::span<const uint8_t>> parts;
    std::optional<DType> t;
    size_t total = 0;
    int64_t total_rows = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      auto r = src_.raw(names[i]);
      if (!r) return error(r.status().code(), kOp, "reading '", names[i], "': ", r.status().message());
      if (!r->first || (t && *t != *r->first) || total % 16 != 0) return Buffer{};
      t = r->first;
      parts.push_back(r->second);
      total += r->second.size();
      total_rows += rows[i];
    }
    MLXN_ASSIGN_OR_RETURN(Buffer b, dev_.alloc(*t, Shape{total_rows, cols}));
    if (b.nbytes() != total) return Buffer{};  // sizes that do not add up: leave the tensors separate
    size_t off = 0;
    for (size_t i = 0; i < parts.size(); ++i) {
      MLXN_ASSIGN_OR_RETURN(Buffer part, b.view(off, *t, Shape{rows[i], cols}));
      MLXN_TRY(part.upload(parts[i].data(), parts[i].size()));
      off += parts[i].size();
    }
    bytes += total;
    return b;
  }

  // [rows_i, cols] linear weights in one allocation: dense / GGML parts fused as they are read (each read once);
  // MLX affine parts loaded one by one, then, when bits, group size and scale dtype agree, copied into fused packed /
  // scales / biases tensors (the separate ones are released). `views` / `avs` receive the parts (views of the fused
  // storage when fused), `fused` / `afused` the fused weight (left empty when not fused).
  Status fused_linear(const std::vector<std::string>& names, const std::vector<int64_t>& rows, int64_t cols,
                      const std::vector<Buffer*>& views, const std::vector<ops::AffineWeight*>& avs, Buffer& fused,
                      ops::AffineWeight& afused) {
    bool any_affine = false, all_affine = true;
    for (const auto& n : names) {
      const bool a = affine(n);
      any_affine |= a;
      all_affine &= a;
    }
    if (!any_affine && src_.raw) {
      for (size_t i = 0; i < names.size(); ++i) MLXN_TRY(check(names[i], Shape{rows[i], cols}));
      MLXN_ASSIGN_OR_RETURN(fused, concat(names, rows, cols));
      if (fused.valid()) {
        size_t off = 0;
        for (size_t i = 0; i < names.size(); ++i) {
          MLXN_ASSIGN_OR_RETURN(*views[i], fused.view(off, fused.dtype(), Shape{rows[i], cols}));
          off += views[i]->nbytes();
        }
        return Status::ok();
      }
    }
    for (size_t i = 0; i < names.size(); ++i) MLXN_TRY(linear(names[i], rows[i], cols, *views[i], *avs[i]));
    if (!any_affine || !all_affine || !src_.raw) return Status::ok();
    const ops::AffineWeight& a0 = *avs[0];
    for (const auto* a : avs)
      if (a->bits != a0.bits || a->group_size != a0.group_size || a->scales.dtype() != a0.scales.dtype())
        return Status::ok();
    // The module's tensors: <module>.weight (packed u32), .scales, .biases.
    std::vector<std::string> pw, ps, pb;
    for (const auto& n : names) {
      const std::string base = n.size() > 7 && n.ends_with(".weight") ? n.substr(0, n.size() - 7) : n;
      pw.push_back(base + ".weight");
      ps.push_back(base + ".scales");
      pb.push_back(base + ".biases");
    }
    ops::AffineWeight f;
    f.bits = a0.bits;
    f.group_size = a0.group_size;
    MLXN_ASSIGN_OR_RETURN(f.packed, concat(pw, rows, a0.packed.shape()[1]));
    MLXN_ASSIGN_OR_RETURN(f.scales, concat(ps, rows, a0.scales.shape()[1]));
    MLXN_ASSIGN_OR_RETURN(f.biases, concat(pb, rows, a0.biases.shape()[1]));
    if (!f.packed.valid() || !f.scales.valid() || !f.biases.valid()) {
      for (const Buffer* q : {&f.packed, &f.scales, &f.biases}) bytes -= q->valid() ? q->nbytes() : 0;
      return Status::ok();
    }
    size_t op = 0, os = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      ops::AffineWeight& a = *avs[i];
      bytes -= a.packed.nbytes() + a.scales.nbytes() + a.biases.nbytes();
      const Shape sp = a.packed.shape(), ss = a.scales.shape();
      MLXN_ASSIGN_OR_RETURN(a.packed, f.packed.view(op, f.packed.dtype(), sp));
      MLXN_ASSIGN_OR_RETURN(a.scales, f.scales.view(os, f.scales.dtype(), ss));
      MLXN_ASSIGN_OR_RETURN(a.biases, f.biases.view(os, f.biases.dtype(), ss));
      op += a.packed.nbytes();
      os += a.scales.nbytes();
    }
    afused = f;
    return Status::ok();
  }

  // f32 vectors (biases) in one allocation; `views` receive the parts.
  Result<Buffer> fused_vec(const std::vector<std::string>& names, const std::vector<int64_t>& ns,
                           const std::vector<Buffer*>& views) {
    int64_t total = 0;
    for (int64_t n : ns) total += n;
    MLXN_ASSIGN_OR_RETURN(Buffer b, dev_.alloc(DType::F32, Shape{total}));
    size_t off = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      MLXN_ASSIGN_OR_RETURN(Buffer one, vec(names[i], ns[i]));  // checked and converted; replaced by the view
      bytes -= one.nbytes();
      std::vector<float> v(static_cast<size_t>(ns[i]));
      MLXN_TRY(one.download(v.data(), v.size() * 4));
      MLXN_ASSIGN_OR_RETURN(*views[i], b.view(off, DType::F32, Shape{ns[i]}));
      MLXN_TRY(views[i]->upload(v.data(), v.size() * 4));
      off += v.size() * 4;
    }
    bytes += b.nbytes();
    return b;
  }

  uint64_t bytes = 0;

 private:
  const Source& src_;
  const ModelConfig& c_;
  Device dev_;
};

Result<ModelWeights> assemble(const Source& src, const ModelConfig& c, const Device& dev,
                              const std::function<std::string(Role, int64_t)>& name, const std::string& embd_name,
                              const std::string& out_norm_name, const std::string& output_name, bool fuse) {
  MLXN_TRY(c.validate());
  Loader L(src, c, dev);
  ModelWeights w;
  const int64_t d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  const float off = c.norm_weight_offset;
  if (L.affine(embd_name)) {
    // MLX quantizes the embedding too: the lookup reads a dequantized copy, a tied head the quantized matrix.
    MLXN_TRY(L.linear(embd_name, c.n_vocab, d, w.tok_embd, w.tok_affine));
    const DType t = dev.backend() == Backend::Cuda ? DType::F16 : DType::F32;
    MLXN_ASSIGN_OR_RETURN(w.tok_embd, L.dequantized_copy(embd_name, c.n_vocab, d, t));
  } else {
    MLXN_ASSIGN_OR_RETURN(w.tok_embd, L.matrix(embd_name, c.n_vocab, d));
  }
  w.tok_lookup = w.tok_embd;
  if (dev.backend() == Backend::Cuda && is_quantized(w.tok_embd.dtype())) {
    MLXN_ASSIGN_OR_RETURN(w.tok_lookup, L.f16_copy(embd_name, c.n_vocab, d));
  }
  MLXN_ASSIGN_OR_RETURN(w.output_norm, L.vec(out_norm_name, d, off));
  if (!c.tied_embeddings && (L.has(output_name) || L.affine(output_name))) {
    MLXN_TRY(L.linear(output_name, c.n_vocab, d, w.output, w.output_affine));
  } else if (!c.tied_embeddings) {
    return L.missing(output_name);
  } else if (w.tok_affine.packed.valid()) {
    w.output_affine = w.tok_affine;
  } else {
    w.output = w.tok_embd;
  }
  if (c.format == WeightFormat::Gguf && L.has("rope_freqs.weight")) {
    MLXN_ASSIGN_OR_RETURN(w.rope_freqs, L.vec("rope_freqs.weight", c.rope_dim / 2));
  }
  if (!w.rope_freqs.valid() && c.rope_scaling == RopeScaling::Llama3) {
    // config.json's llama3 rope_scaling, as the frequency factors a GGUF would carry in rope_freqs.weight.
    const auto ff = ops::llama3_freq_factors(c.rope_dim, c.rope_base, c.rope_factor, c.rope_low_freq_factor,
                                             c.rope_high_freq_factor, c.rope_orig_ctx);
    MLXN_ASSIGN_OR_RETURN(w.rope_freqs, dev.alloc(DType::F32, Shape{static_cast<int64_t>(ff.size())}));
    MLXN_TRY(w.rope_freqs.upload(ff.data(), ff.size() * sizeof(float)));
  }
  for (int64_t il = 0; il < c.n_layer; ++il) {
    LayerWeights l;
    auto n = [&](Role r) { return name(r, il); };
    MLXN_ASSIGN_OR_RETURN(l.attn_norm, L.vec(n(Role::AttnNorm), d, off));
    if (fuse) {
      MLXN_TRY(L.fused_linear({n(Role::Wq), n(Role::Wk), n(Role::Wv)}, {qd, kvd, kvd}, d, {&l.wq, &l.wk, &l.wv},
                              {&l.affine.wq, &l.affine.wk, &l.affine.wv}, l.wqkv, l.affine.wqkv));
    } else {
      MLXN_TRY(L.linear(n(Role::Wq), qd, d, l.wq, l.affine.wq));
      MLXN_TRY(L.linear(n(Role::Wk), kvd, d, l.wk, l.affine.wk));
      MLXN_TRY(L.linear(n(Role::Wv), kvd, d, l.wv, l.affine.wv));
    }
    MLXN_TRY(L.linear(n(Role::Wo), d, qd, l.wo, l.affine.wo));
    if (c.qkv_bias && fuse) {
      MLXN_ASSIGN_OR_RETURN(
          l.bqkv, L.fused_vec({n(Role::Bq), n(Role::Bk), n(Role::Bv)}, {qd, kvd, kvd}, {&l.bq, &l.bk, &l.bv}));
    } else if (c.qkv_bias) {
      MLXN_ASSIGN_OR_RETURN(l.bq, L.vec(n(Role::Bq), qd));
      MLXN_ASSIGN_OR_RETURN(l.bk, L.vec(n(Role::Bk), kvd));
      MLXN_ASSIGN_OR_RETURN(l.bv, L.vec(n(Role::Bv), kvd));
    }
    if (c.qk_norm) {
      MLXN_ASSIGN_OR_RETURN(l.q_norm, L.vec(n(Role::QNorm), c.head_dim, off));
      MLXN_ASSIGN_OR_RETURN(l.k_norm, L.vec(n(Role::KNorm), c.head_dim, off));
    }
    if (c.post_norms) {
      MLXN_ASSIGN_OR_RETURN(l.post_attn_norm, L.vec(n(Role::PostAttnNorm), d, off));
      MLXN_ASSIGN_OR_RETURN(l.post_ffn_norm, L.vec(n(Role::PostFfnNorm), d, off));
    }
    MLXN_ASSIGN_OR_RETURN(l.ffn_norm, L.vec(n(Role::FfnNorm), d, off));
    if (fuse) {
      MLXN_TRY(L.fused_linear({n(Role::Gate), n(Role::Up)}, {c.n_ff, c.n_ff}, d, {&l.w_gate, &l.w_up},
                              {&l.affine.w_gate, &l.affine.w_up}, l.w_gate_up, l.affine.w_gate_up));
    } else {
      MLXN_TRY(L.linear(n(Role::Gate), c.n_ff, d, l.w_gate, l.affine.w_gate));
      MLXN_TRY(L.linear(n(Role::Up), c.n_ff, d, l.w_up, l.affine.w_up));
    }
    MLXN_TRY(L.linear(n(Role::Down), d, c.n_ff, l.w_down, l.affine.w_down));
    w.layers.push_back(std::move(l));
  }
  w.bytes = L.bytes;
  return w;
}

}  // namespace

Result<ModelWeights> load_weights(const io::GgufFile& f, const ModelConfig& c, const Device& dev, bool fuse) {
  Source src;
  src.file = f.path();
  src.shape = [&f](const std::string& n) -> std::optional<Shape> {
    const auto* t = f.tensor(n);
    return t ? std::optional<Shape>(t->shape) : std::nullopt;
  };
  src.load = [&f](const std::string& n, const Device& d) { return f.load_tensor(n, d); };
  src.to_f32 = [&f](const std::string& n) { return f.dequantize_tensor(n); };
  src.raw = [&f](const std::string& n) -> Result<std::pair<std::optional<DType>, std::span<const uint8_t>>> {
    MLXN_ASSIGN_OR_RETURN(auto bytes, f.tensor_data(n));
    return std::make_pair(f.tensor(n)->dtype, bytes);
  };
  return assemble(src, c, dev, gguf_name, "token_embd.weight", "output_norm.weight", "output.weight", fuse);
}

Result<ModelWeights> load_weights(const io::SafetensorsModel& m, const ModelConfig& c, const Device& dev, bool fuse) {
  Source src;
  src.file = m.shards().empty() ? std::string("checkpoint") : m.shards().front().path();
  src.shape = [&m](const std::string& n) -> std::optional<Shape> {
    const auto* t = m.tensor(n);
    return t ? std::optional<Shape>(t->shape) : std::nullopt;
  };
  src.load = [&m](const std::string& n, const Device& d) { return m.load_tensor(n, d); };
  src.to_f32 = [&m](const std::string& n) { return m.dequantize_tensor(n); };
  src.raw = [&m](const std::string& n) -> Result<std::pair<std::optional<DType>, std::span<const uint8_t>>> {
    const auto* shard = m.shard_of(n);
    if (shard == nullptr) return error(StatusCode::NotFound, kOp, "no tensor '", n, "' in the checkpoint");
    MLXN_ASSIGN_OR_RETURN(auto bytes, shard->tensor_data(n));
    return std::make_pair(io::st_dtype_info(m.tensor(n)->dtype).dtype, bytes);
  };
  if (m.mlx_quant()) {
    src.is_affine = [&m](const std::string& n) { return m.is_affine(n); };
    src.load_affine = [&m](const std::string& n, const Device& d) { return m.load_affine(n, d); };
    src.affine_to_f32 = [&m](const std::string& n) { return m.dequantize_affine(n); };
  }
  // The text model's prefix: plain causal LMs use "model.", Gemma 3 multimodal checkpoints nest it.
  std::string prefix = "model.";
  for (const char* p : {"model.", "language_model.model.", "model.language_model."}) {
    if (m.tensor(std::string(p) + "embed_tokens.weight") != nullptr) {
      prefix = p;
      break;
    }
  }
  std::string head = "lm_head.weight";
  if (prefix == "language_model.model.") head = "language_model.lm_head.weight";
  const Arch arch = c.arch;
  ModelConfig cc = c;
  // A checkpoint without lm_head.weight ties the head to the embedding whatever the config says.
  if (m.tensor(head) == nullptr) cc.tied_embeddings = true;  // (MLX: the packed head is still "<head>.weight")
  auto name = [&prefix, arch](Role r, int64_t il) { return hf_name(r, il, prefix, arch); };
  return assemble(src, cc, dev, name, prefix + "embed_tokens.weight", prefix + "norm.weight", head, fuse);
}

}  // namespace mlxn::models
