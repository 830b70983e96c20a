// BERT weights from a Hugging Face safetensors folder or a llama.cpp "bert" GGUF. Every tensor is read as f32 on
// the host (any stored type), padded per head where asked and converted once: matrices to the matmul dtype, the
// rest to f32. An encoder is small, so no zero-copy mapping is attempted.
#include <functional>

#include "mlxn/core/half.h"
#include "mlxn/models/bert.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "bert";

struct Source {
  std::function<std::optional<Shape>(const std::string&)> shape;
  std::function<Result<std::vector<float>>(const std::string&)> to_f32;
  std::string file;
};

// Tensor names of one layout: the embeddings and per-layer parts.
struct Names {
  std::string tok, pos, type, embd_ln_w, embd_ln_b;
  std::function<std::string(int64_t, const char* part)> layer;  // part: "q.w", "q.b", ..., "out_ln.b"
};

class Loader {
 public:
  Loader(const Source& src, const BertConfig& c, const Device& dev, DType mm, int64_t dp)
      : src_(src), c_(c), dev_(dev), mm_(mm), dp_(dp) {}

  Result<std::vector<float>> read(const std::string& name, const Shape& want) {
    auto shape = src_.shape(name);
    if (!shape)
      return error(StatusCode::NotFound, kOp, "missing tensor '", name, "' in ", src_.file, " (bert needs it)");
    // Vectors may be stored as [n] or [1, n]; matrices must match exactly.
    const bool ok = want.rank() == 1 ? shape->numel() == want.numel() : *shape == want;
    if (!ok)
      return invalid_argument(kOp, "tensor '", name, "' in ", src_.file, " has shape ", *shape, ", expected ", want);
    auto v = src_.to_f32(name);
    if (!v) return error(v.status().code(), kOp, "reading '", name, "': ", v.status().message());
    return v;
  }

  Result<Buffer> upload(const std::vector<float>& v, DType t, const Shape& shape) {
    MLXN_ASSIGN_OR_RETURN(Buffer b, dev_.alloc(t, shape));
    if (t == DType::F32) {
      MLXN_TRY(b.upload(v.data(), v.size() * 4));
    } else {
      std::vector<uint16_t> h(v.size());
      for (size_t i = 0; i < v.size(); ++i) h[i] = t == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      MLXN_TRY(b.upload(h.data(), h.size() * 2));
    }
    bytes += b.nbytes();
    return b;
  }

  Result<Buffer> table(const std::string& name, int64_t rows) {
    MLXN_ASSIGN_OR_RETURN(auto v, read(name, Shape{rows, c_.n_embd}));
    return upload(v, DType::F32, Shape{rows, c_.n_embd});
  }
  Result<Buffer> vec(const std::string& name, int64_t n) {
    MLXN_ASSIGN_OR_RETURN(auto v, read(name, Shape{n}));
    return upload(v, DType::F32, Shape{n});
  }
  Result<Buffer> matrix(const std::string& name, int64_t rows, int64_t cols) {
    MLXN_ASSIGN_OR_RETURN(auto v, read(name, Shape{rows, cols}));
    return upload(v, mm_, Shape{rows, cols});
  }
  // A q / k / v projection [H * D, d] with each head's D rows followed by dp - D zero rows.
  Result<Buffer> head_rows(const std::string& name) {
    const int64_t H = c_.n_head, D = c_.head_dim, d = c_.n_embd;
    MLXN_ASSIGN_OR_RETURN(auto v, read(name, Shape{H * D, d}));
    if (dp_ == D) return upload(v, mm_, Shape{H * D, d});
    std::vector<float> p(static_cast<size_t>(H * dp_ * d), 0.0f);
    for (int64_t h = 0; h < H; ++h) std::copy_n(v.begin() + h * D * d, D * d, p.begin() + h * dp_ * d);
    return upload(p, mm_, Shape{H * dp_, d});
  }
  // Its bias [H * D] padded the same way (f32).
  Result<Buffer> head_bias(const std::string& name) {
    const int64_t H = c_.n_head, D = c_.head_dim;
    MLXN_ASSIGN_OR_RETURN(auto v, read(name, Shape{H * D}));
    std::vector<float> p(static_cast<size_t>(H * dp_), 0.0f);
    for (int64_t h = 0; h < H; ++h) std::copy_n(v.begin() + h * D, D, p.begin() + h * dp_);
    return upload(p, DType::F32, Shape{H * dp_});
  }
  // The output projection [d, H * D] with dp - D zero columns after each head's D.
  Result<Buffer> head_cols(const std::string& name) {
    const int64_t H = c_.n_head, D = c_.head_dim, d = c_.n_embd;
    MLXN_ASSIGN_OR_RETURN(auto v, read(name, Shape{d, H * D}));
    if (dp_ == D) return upload(v, mm_, Shape{d, H * D});
    std::vector<float> p(static_cast<size_t>(d * H * dp_), 0.0f);
    for (int64_t r = 0; r < d; ++r)
      for (int64_t h = 0; h < H; ++h) std::copy_n(v.begin() + r * H * D + h * D, D, p.begin() + r * H * dp_ + h * dp_);
    return upload(p, mm_, Shape{d, H * dp_});
  }

  uint64_t bytes = 0;

 private:
  const Source& src_;
  const BertConfig& c_;
  Device dev_;
  DType mm_;
  int64_t dp_;
};

Result<BertWeights> assemble(const Source& src, const BertConfig& c, const Device& dev, DType mm, int64_t dp,
                             const Names& n) {
  MLXN_TRY(c.validate());
  if (mm != DType::F32 && mm != DType::F16 && mm != DType::BF16)
    return invalid_argument(kOp, "matmul dtype ", mm, " is not f32, f16 or bf16");
  if (dp < c.head_dim) return invalid_argument(kOp, "padded head dim ", dp, " is below head_dim ", c.head_dim);
  Loader L(src, c, dev, mm, dp);
  BertWeights w;
  w.head_dim_padded = dp;
  MLXN_ASSIGN_OR_RETURN(w.tok_embd, L.table(n.tok, c.n_vocab));
  MLXN_ASSIGN_OR_RETURN(w.pos_embd, L.table(n.pos, c.n_pos));
  MLXN_ASSIGN_OR_RETURN(w.type_embd, L.table(n.type, c.n_type));
  MLXN_ASSIGN_OR_RETURN(w.embd_ln_w, L.vec(n.embd_ln_w, c.n_embd));
  MLXN_ASSIGN_OR_RETURN(w.embd_ln_b, L.vec(n.embd_ln_b, c.n_embd));
  const int64_t d = c.n_embd, f = c.n_ff;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    BertLayerWeights l;
    auto nm = [&](const char* part) { return n.layer(il, part); };
    MLXN_ASSIGN_OR_RETURN(l.wq, L.head_rows(nm("q.w")));
    MLXN_ASSIGN_OR_RETURN(l.bq, L.head_bias(nm("q.b")));
    MLXN_ASSIGN_OR_RETURN(l.wk, L.head_rows(nm("k.w")));
    MLXN_ASSIGN_OR_RETURN(l.bk, L.head_bias(nm("k.b")));
    MLXN_ASSIGN_OR_RETURN(l.wv, L.head_rows(nm("v.w")));
    MLXN_ASSIGN_OR_RETURN(l.bv, L.head_bias(nm("v.b")));
    MLXN_ASSIGN_OR_RETURN(l.wo, L.head_cols(nm("o.w")));
    MLXN_ASSIGN_OR_RETURN(l.bo, L.vec(nm("o.b"), d));
    MLXN_ASSIGN_OR_RETURN(l.attn_ln_w, L.vec(nm("attn_ln.w"), d));
    MLXN_ASSIGN_OR_RETURN(l.attn_ln_b, L.vec(nm("attn_ln.b"), d));
    MLXN_ASSIGN_OR_RETURN(l.w_up, L.matrix(nm("up.w"), f, d));
    MLXN_ASSIGN_OR_RETURN(l.b_up, L.vec(nm("up.b"), f));
    MLXN_ASSIGN_OR_RETURN(l.w_down, L.matrix(nm("down.w"), d, f));
    MLXN_ASSIGN_OR_RETURN(l.b_down, L.vec(nm("down.b"), d));
    MLXN_ASSIGN_OR_RETURN(l.out_ln_w, L.vec(nm("out_ln.w"), d));
    MLXN_ASSIGN_OR_RETURN(l.out_ln_b, L.vec(nm("out_ln.b"), d));
    w.layers.push_back(std::move(l));
  }
  w.bytes = L.bytes;
  return w;
}

// Hugging Face BertModel names; LayerNorm parameters are "weight" / "bias" (older checkpoints: "gamma" / "beta").
std::string hf_layer_name(const std::string& prefix, int64_t il, const std::string& part, bool gamma_beta) {
  const std::string l = prefix + "encoder.layer." + std::to_string(il) + ".";
  const std::string w = ".weight", b = ".bias", lw = gamma_beta ? ".gamma" : ".weight",
                    lb = gamma_beta ? ".beta" : ".bias";
  const std::string kind = part.substr(0, part.find('.'));
  const bool is_w = part.ends_with(".w");
  std::string base;
  if (kind == "q") base = "attention.self.query";
  if (kind == "k") base = "attention.self.key";
  if (kind == "v") base = "attention.self.value";
  if (kind == "o") base = "attention.output.dense";
  if (kind == "attn_ln") return l + "attention.output.LayerNorm" + (is_w ? lw : lb);
  if (kind == "up") base = "intermediate.dense";
  if (kind == "down") base = "output.dense";
  if (kind == "out_ln") return l + "output.LayerNorm" + (is_w ? lw : lb);
  return l + base + (is_w ? w : b);
}

// llama.cpp's "bert" tensor names.
std::string gguf_layer_name(int64_t il, const std::string& part) {
  const std::string l = "blk." + std::to_string(il) + ".";
  const std::string kind = part.substr(0, part.find('.'));
  const std::string suffix = part.ends_with(".w") ? ".weight" : ".bias";
  if (kind == "q") return l + "attn_q" + suffix;
  if (kind == "k") return l + "attn_k" + suffix;
  if (kind == "v") return l + "attn_v" + suffix;
  if (kind == "o") return l + "attn_output" + suffix;
  if (kind == "attn_ln") return l + "attn_output_norm" + suffix;
  if (kind == "up") return l + "ffn_up" + suffix;
  if (kind == "down") return l + "ffn_down" + suffix;
  return l + "layer_output_norm" + suffix;
}

}  // namespace

Result<BertWeights> load_bert_weights(const io::SafetensorsModel& m, const BertConfig& c, const Device& dev,
                                      DType matmul_dtype, int64_t padded_head_dim) {
  Source src;
  src.file = m.shards().empty() ? std::string("checkpoint") : m.shards().front().path();
  src.shape = [&m](const std::string& n) -> std::optional<Shape> {
    const auto* t = m.tensor(n);
    return t ? std::optional<Shape>(t->shape) : std::nullopt;
  };
  src.to_f32 = [&m](const std::string& n) { return m.dequantize_tensor(n); };
  // BertModel checkpoints have no prefix; task heads (BertForMaskedLM, ...) nest the encoder under "bert.".
  std::string prefix;
  for (const char* p : {"", "bert.", "model."}) {
    if (m.tensor(std::string(p) + "embeddings.word_embeddings.weight") != nullptr) {
      prefix = p;
      break;
    }
  }
  const bool gamma_beta = m.tensor(prefix + "embeddings.LayerNorm.gamma") != nullptr;
  Names n;
  n.tok = prefix + "embeddings.word_embeddings.weight";
  n.pos = prefix + "embeddings.position_embeddings.weight";
  n.type = prefix + "embeddings.token_type_embeddings.weight";
  n.embd_ln_w = prefix + (gamma_beta ? "embeddings.LayerNorm.gamma" : "embeddings.LayerNorm.weight");
  n.embd_ln_b = prefix + (gamma_beta ? "embeddings.LayerNorm.beta" : "embeddings.LayerNorm.bias");
  n.layer = [prefix, gamma_beta](int64_t il, const char* part) { return hf_layer_name(prefix, il, part, gamma_beta); };
  return assemble(src, c, dev, matmul_dtype, padded_head_dim, n);
}

Result<BertWeights> load_bert_weights(const io::GgufFile& f, const BertConfig& c, const Device& dev, DType matmul_dtype,
                                      int64_t padded_head_dim) {
  Source src;
  src.file = f.path();
  src.shape = [&f](const std::string& n) -> std::optional<Shape> {
    const auto* t = f.tensor(n);
    return t ? std::optional<Shape>(t->shape) : std::nullopt;
  };
  src.to_f32 = [&f](const std::string& n) { return f.dequantize_tensor(n); };
  Names n;
  n.tok = "token_embd.weight";
  n.pos = "position_embd.weight";
  n.type = "token_types.weight";
  n.embd_ln_w = "token_embd_norm.weight";
  n.embd_ln_b = "token_embd_norm.bias";
  n.layer = [](int64_t il, const char* part) { return gguf_layer_name(il, part); };
  return assemble(src, c, dev, matmul_dtype, padded_head_dim, n);
}

}  // namespace mlxn::models
