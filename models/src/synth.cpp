#include "mlxn/models/synth.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "mlxn/io/quantize_model.h"
#include "mlxn/ops/rope.h"
#include "mlxn/quant/ggml_type.h"
#include "mlxn/quant/quant.h"

namespace mlxn::models {
namespace {

constexpr std::string_view kOp = "synth";

ModelConfig base(Arch a) {
  ModelConfig c;
  c.arch = a;
  c.format = WeightFormat::Gguf;
  return c;
}

void dims(ModelConfig& c, int64_t layers, int64_t d, int64_t heads, int64_t kv_heads, int64_t head_dim, int64_t ff,
          int64_t vocab, int64_t ctx) {
  c.n_layer = layers;
  c.n_embd = d;
  c.n_head = heads;
  c.n_head_kv = kv_heads;
  c.head_dim = head_dim;
  c.rope_dim = head_dim;
  c.n_ff = ff;
  c.n_vocab = vocab;
  c.n_ctx_train = ctx;
}

void gemma_common(ModelConfig& c, int32_t window) {
  c.qk_norm = true;
  c.post_norms = true;
  c.ffn_act = ops::Activation::GeluTanh;
  c.rms_eps = 1e-6f;
  c.rope_base = 1000000.0f;
  c.rope_base_local = 10000.0f;
  c.tied_embeddings = true;
  c.sliding_window = window;
  c.layer_sliding.assign(static_cast<size_t>(c.n_layer), false);
  for (int64_t i = 0; i < c.n_layer; ++i) c.layer_sliding[static_cast<size_t>(i)] = (i + 1) % 6 != 0;
  c.embed_scale = std::sqrt(static_cast<float>(c.n_embd));
}

// splitmix64: a fast, well-mixed stream per (tensor, row).
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>(static_cast<double>(next() >> 11) * 0x1.0p-52 - 1.0); }
};

// llama_ftype numbers (llama.cpp's llama.h) the mixture rules switch on; io::parse_quant_target gives them.
namespace ftype {
constexpr uint32_t Q2_K = 10, Q3_K_M = 12, Q3_K_L = 13, Q4_K_S = 14, Q4_K_M = 15, Q5_K_M = 17, IQ4_NL = 25,
                   MXFP4_MOE = 38;
}

// The roles the rules tell apart (llama.cpp's tensor categories that occur in our architectures).
enum class Role : uint8_t { TokenEmbd, Output, AttnV, AttnOutput, FfnDown, Other };

bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// llama.cpp's llama_tensor_get_type for a dense, non-Falcon model of `n` layers: the type of a matrix of role `r` in
// layer `i` (attn_v and ffn_down are counted per layer: one of each per layer here) before the shape fallback.
DType mixture_type(uint32_t ft, DType base, Role r, int64_t i, int64_t n, int64_t cols, int64_t n_gqa, bool tied) {
  if (r == Role::Output || (tied && r == Role::TokenEmbd)) {
    if (ft == ftype::MXFP4_MOE || cols % dtype_info(base).block_elems != 0) return DType::Q8_0;
    return base == DType::Q8_0 ? base : DType::Q6_K;
  }
  if (ft == ftype::MXFP4_MOE) return DType::Q8_0;  // MXFP4 is for expert stacks only
  switch (r) {
    case Role::AttnV:
      if (ft == ftype::Q2_K) return n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
      if (ft == ftype::Q3_K_M) return i < 2 ? DType::Q5_K : DType::Q4_K;
      if (ft == ftype::Q3_K_L) return DType::Q5_K;
      if (ft == ftype::IQ4_NL && n_gqa >= 4) return DType::Q5_K;
      if ((ft == ftype::Q4_K_M || ft == ftype::Q5_K_M) && use_more_bits(i, n)) return DType::Q6_K;
      if (ft == ftype::Q4_K_S && i < 4) return DType::Q5_K;
      return base;
    case Role::FfnDown:
      if (ft == ftype::Q2_K) return DType::Q3_K;
      if (ft == ftype::Q3_K_M) return i < n / 16 ? DType::Q5_K : DType::Q4_K;
      if (ft == ftype::Q3_K_L) return DType::Q5_K;
      if ((ft == ftype::Q4_K_M || ft == ftype::Q5_K_M) && use_more_bits(i, n)) return DType::Q6_K;
      if ((ft == ftype::Q4_K_S || ft == ftype::IQ4_NL) && i < n / 8) return DType::Q5_K;
      return base;
    case Role::AttnOutput:
      if (ft == ftype::Q2_K) return DType::Q3_K;
      if (ft == ftype::Q3_K_M) return DType::Q4_K;
      if (ft == ftype::Q3_K_L) return DType::Q5_K;
      return base;
    default:
      return base;
  }
}

// llama.cpp's tensor_type_fallback for rows of `cols` that are not whole blocks of `t`: a 256-block K type moves to
// a 32-block type of at least as many bits; F16 where that does not fit either (llama.cpp has no fallback for the
// 32-block types and stops; a synthetic file may as well carry the matrix in F16).
DType fit_rows(DType t, int64_t cols, std::string& note) {
  if (cols % dtype_info(t).block_elems == 0) return t;
  DType f = DType::F16;
  switch (t) {
    case DType::Q2_K:
    case DType::Q3_K:
      f = DType::Q4_0;
      break;
    case DType::Q4_K:
      f = DType::Q5_0;
      break;
    case DType::Q5_K:
      f = DType::Q5_1;
      break;
    case DType::Q6_K:
      f = DType::Q8_0;
      break;
    default:
      break;
  }
  if (cols % dtype_info(f).block_elems != 0) f = DType::F16;
  note = "rows of " + std::to_string(cols) + " are not whole " + std::string(dtype_name(t)) +
         " blocks: " + std::string(dtype_name(f));
  return f;
}

Result<io::QuantTarget> target_of(const SynthOptions& o) {
  const std::string name = o.type_name.empty() ? std::string(dtype_name(o.type)) : o.type_name;
  auto t = io::parse_quant_target(name, o.recipe);
  if (t) return t;
  // The parser speaks for `mlxn quantize`; the message (which lists the accepted names) is re-labelled as synth's.
  std::string m = t.status().message();
  if (const std::string q = "[quantize] "; m.rfind(q, 0) == 0) m.erase(0, q.size());
  return Status(t.status().code(), "[" + std::string(kOp) + "] " + m);
}

}  // namespace

std::vector<std::string> synth_preset_names(Arch a) {
  switch (a) {
    case Arch::Llama:
      return {"8b", "tiny"};
    case Arch::Qwen2:
      return {"tiny"};
    case Arch::Qwen3:
      return {"8b", "0.6b", "tiny"};
    case Arch::Gemma3:
      return {"27b", "12b", "4b", "270m", "tiny"};
  }
  return {};
}

Result<ModelConfig> synth_preset(Arch a, std::string_view p) {
  ModelConfig c = base(a);
  switch (a) {
    case Arch::Llama:
      c.rope_layout = ops::RopeLayout::Normal;
      if (p == "8b") {  // Llama-3-8B (3.1's RoPE scaling travels as rope_freqs.weight)
        dims(c, 32, 4096, 32, 8, 128, 14336, 128256, 131072);
        c.rope_base = 500000.0f;
        c.rope_scaling = RopeScaling::Llama3;
        c.rope_factor = 8.0f;
        c.rope_low_freq_factor = 1.0f;
        c.rope_high_freq_factor = 4.0f;
        c.rope_orig_ctx = 8192;
      } else if (p == "tiny") {
        dims(c, 2, 256, 2, 1, 128, 512, 512, 2048);
        c.rope_base = 500000.0f;
        // Llama 3.1 scaling with a short original context, so the frequency factors change short prompts.
        c.rope_scaling = RopeScaling::Llama3;
        c.rope_factor = 8.0f;
        c.rope_low_freq_factor = 1.0f;
        c.rope_high_freq_factor = 4.0f;
        c.rope_orig_ctx = 16;
      } else {
        break;
      }
      c.rms_eps = 1e-5f;
      MLXN_TRY(c.validate());
      return c;
    case Arch::Qwen2:
      if (p != "tiny") break;
      dims(c, 2, 256, 4, 2, 128, 512, 512, 2048);
      c.qkv_bias = true;
      c.rope_base = 1000000.0f;
      c.rms_eps = 1e-6f;
      MLXN_TRY(c.validate());
      return c;
    case Arch::Qwen3:  // Qwen/Qwen3-8B and Qwen/Qwen3-0.6B config.json
      c.qk_norm = true;
      c.rope_base = 1000000.0f;
      c.rms_eps = 1e-6f;
      if (p == "8b") {
        dims(c, 36, 4096, 32, 8, 128, 12288, 151936, 40960);
      } else if (p == "0.6b") {
        dims(c, 28, 1024, 16, 8, 128, 3072, 151936, 40960);
        c.tied_embeddings = true;
      } else if (p == "tiny") {  // head_dim * heads != n_embd, as in the real Qwen3 models
        dims(c, 2, 256, 4, 2, 128, 512, 512, 2048);
        c.tied_embeddings = true;
      } else {
        break;
      }
      MLXN_TRY(c.validate());
      return c;
    case Arch::Gemma3:
      // Sizes from the text_config of google/gemma-3-{27b,12b,4b}-it's config.json (keys the file leaves out take
      // transformers' Gemma3TextConfig defaults: vocab 262208, rope_theta 1e6, rope_local_base_freq 1e4, 131072
      // positions) and google/gemma-3-270m's. Every 6th layer is global (sliding_window_pattern 6).
      if (p == "27b") {
        dims(c, 62, 5376, 32, 16, 128, 21504, 262208, 131072);
        gemma_common(c, 1024);
        c.rope_scaling = RopeScaling::Linear;
        c.rope_factor = 8.0f;
        // query_pre_attn_scalar 168 = n_embd / n_head, not head_dim (128): the one Gemma 3 size where they differ.
        // GGUF has no key for it; llama.cpp (and config_from_gguf) derive it from the 62 layers.
        c.attn_scale = 1.0f / std::sqrt(168.0f);
      } else if (p == "12b") {  // query_pre_attn_scalar 256 = head_dim: the default scale
        dims(c, 48, 3840, 16, 8, 256, 15360, 262208, 131072);
        gemma_common(c, 1024);
        c.rope_scaling = RopeScaling::Linear;
        c.rope_factor = 8.0f;
      } else if (p == "4b") {
        dims(c, 34, 2560, 8, 4, 256, 10240, 262208, 131072);
        gemma_common(c, 1024);
        c.rope_scaling = RopeScaling::Linear;
        c.rope_factor = 8.0f;
      } else if (p == "270m") {
        dims(c, 18, 640, 4, 1, 256, 2048, 262144, 32768);
        gemma_common(c, 512);
      } else if (p == "tiny") {  // 6 layers: five sliding (window 5) and one global
        dims(c, 6, 256, 2, 1, 128, 512, 512, 2048);
        gemma_common(c, 5);
        c.rope_scaling = RopeScaling::Linear;
        c.rope_factor = 2.0f;
      } else {
        break;
      }
      MLXN_TRY(c.validate());
      return c;
  }
  std::string names;
  for (const auto& n : synth_preset_names(a)) names += (names.empty() ? "" : ", ") + n;
  return invalid_argument(kOp, "no preset '", p, "' for ", arch_name(a), " (presets: ", names, ")");
}

namespace {

struct Planned {
  SynthTensor t;
  float stddev;  // of the random values
  float mean;    // added (norm weights)
};

// Every tensor of the file in order, typed for `target` (the rules in synth.h).
std::vector<Planned> plan_tensors(const ModelConfig& c, const io::QuantTarget& target) {
  const DType base = target.default_type;
  const bool rules = target.recipe == io::QuantRecipe::Llama && is_quantized(base);
  const int64_t n_gqa = c.n_head / c.n_head_kv;
  // Gemma GGUFs store 1 + w for norms (llama.cpp's converter); random w ~ 0.1 around that.
  const float norm_mean = 1.0f;
  std::vector<Planned> plan;
  const int64_t d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  auto mat = [&](const std::string& n, int64_t r, int64_t k, Role role, int64_t layer) {
    SynthTensor t{n, Shape{r, k}, base, ""};
    if (is_quantized(base)) {
      if (rules) {
        t.type = mixture_type(target.file_type, base, role, layer, c.n_layer, k, n_gqa, c.tied_embeddings);
        if (t.type != base) t.note = "llama.cpp rule";
      }
      t.type = fit_rows(t.type, k, t.note);
    }
    plan.push_back({std::move(t), 1.0f / std::sqrt(static_cast<float>(k)), 0.0f});
  };
  auto vec = [&](const std::string& n, int64_t len, float sd, float mean) {
    plan.push_back({SynthTensor{n, Shape{len}, DType::F32, ""}, sd, mean});
  };
  mat("token_embd.weight", c.n_vocab, d, Role::TokenEmbd, -1);
  vec("output_norm.weight", d, 0.1f, norm_mean);
  if (!c.tied_embeddings) mat("output.weight", c.n_vocab, d, Role::Output, -1);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    vec(b + "attn_norm.weight", d, 0.1f, norm_mean);
    mat(b + "attn_q.weight", qd, d, Role::Other, il);
    mat(b + "attn_k.weight", kvd, d, Role::Other, il);
    mat(b + "attn_v.weight", kvd, d, Role::AttnV, il);
    mat(b + "attn_output.weight", d, qd, Role::AttnOutput, il);
    if (c.qkv_bias) {
      vec(b + "attn_q.bias", qd, 0.1f, 0.0f);
      vec(b + "attn_k.bias", kvd, 0.1f, 0.0f);
      vec(b + "attn_v.bias", kvd, 0.1f, 0.0f);
    }
    if (c.qk_norm) {
      vec(b + "attn_q_norm.weight", c.head_dim, 0.1f, norm_mean);
      vec(b + "attn_k_norm.weight", c.head_dim, 0.1f, norm_mean);
    }
    if (c.post_norms) vec(b + "post_attention_norm.weight", d, 0.1f, norm_mean);
    vec(b + "ffn_norm.weight", d, 0.1f, norm_mean);
    mat(b + "ffn_gate.weight", c.n_ff, d, Role::Other, il);
    mat(b + "ffn_up.weight", c.n_ff, d, Role::Other, il);
    mat(b + "ffn_down.weight", d, c.n_ff, Role::FfnDown, il);
    if (c.post_norms) vec(b + "post_ffw_norm.weight", d, 0.1f, norm_mean);
  }
  if (c.rope_scaling == RopeScaling::Llama3) vec("rope_freqs.weight", c.rope_dim / 2, 0.0f, 0.0f);
  return plan;
}

Status check_config(const ModelConfig& c) {
  MLXN_TRY(c.validate());
  if (c.format != WeightFormat::Gguf) return invalid_argument(kOp, "the config must describe a GGUF model");
  if (c.rope_scaling == RopeScaling::Yarn) return unsupported(kOp, "YaRN presets");
  return Status::ok();
}

}  // namespace

Result<SynthPlan> synth_plan(const ModelConfig& c, const SynthOptions& o) {
  MLXN_TRY(check_config(c));
  MLXN_ASSIGN_OR_RETURN(io::QuantTarget target, target_of(o));
  SynthPlan p;
  for (auto& t : plan_tensors(c, target)) p.tensors.push_back(std::move(t.t));
  p.target = std::move(target);
  return p;
}

Result<uint64_t> write_synth_gguf(const ModelConfig& c, const std::string& path, const SynthOptions& o) {
  MLXN_TRY(check_config(c));
  MLXN_ASSIGN_OR_RETURN(const io::QuantTarget target, target_of(o));
  const std::vector<Planned> plan = plan_tensors(c, target);
  for (const auto& t : plan)
    if (!quant::can_quantize(t.t.type)) return unsupported(kOp, "no quantizer for ", t.t.type);
  const std::string an(arch_name(c.arch));
  const std::string p = an + ".";
  io::GgufStreamWriter w;
  auto& m = w.metadata();
  m.set_string("general.architecture", an);
  m.set_string("general.name", "mlxn-synth-" + an);
  m.set_u32(p + "block_count", static_cast<uint32_t>(c.n_layer));
  m.set_u32(p + "context_length", static_cast<uint32_t>(c.n_ctx_train));
  m.set_u32(p + "embedding_length", static_cast<uint32_t>(c.n_embd));
  m.set_u32(p + "feed_forward_length", static_cast<uint32_t>(c.n_ff));
  m.set_u32(p + "attention.head_count", static_cast<uint32_t>(c.n_head));
  m.set_u32(p + "attention.head_count_kv", static_cast<uint32_t>(c.n_head_kv));
  m.set_u32(p + "attention.key_length", static_cast<uint32_t>(c.head_dim));
  m.set_u32(p + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  m.set_u32(p + "rope.dimension_count", static_cast<uint32_t>(c.rope_dim));
  m.set_f32(p + "rope.freq_base", c.rope_base);
  m.set_f32(p + "attention.layer_norm_rms_epsilon", c.rms_eps);
  m.set_u32(p + "vocab_size", static_cast<uint32_t>(c.n_vocab));
  if (c.rope_scaling == RopeScaling::Linear) {
    m.set_string(p + "rope.scaling.type", "linear");
    m.set_f32(p + "rope.scaling.factor", c.rope_factor);
  }
  if (c.sliding_window > 0) m.set_u32(p + "attention.sliding_window", static_cast<uint32_t>(c.sliding_window));
  if (c.final_softcap > 0) m.set_f32(p + "final_logit_softcapping", c.final_softcap);
  if (c.attn_softcap > 0) m.set_f32(p + "attn_logit_softcapping", c.attn_softcap);

  for (const auto& e : plan) {
    auto id = quant::ggml_from_dtype(e.t.type);
    if (!id) return unsupported(kOp, "type ", e.t.type, " has no GGML id");
    MLXN_TRY(w.add_tensor_info(e.t.name, *id, e.t.shape));
  }
  m.set_u32("general.file_type", target.file_type);
  // GGML_QNT_VERSION: the block layouts, which llama.cpp records in every quantized file.
  if (is_quantized(target.default_type)) m.set_u32("general.quantization_version", 2);
  MLXN_TRY(w.open(path));

  std::vector<float> rope_freqs;
  if (c.rope_scaling == RopeScaling::Llama3)
    rope_freqs = ops::llama3_freq_factors(c.rope_dim, c.rope_base, c.rope_factor, c.rope_low_freq_factor,
                                          c.rope_high_freq_factor, c.rope_orig_ctx);
  uint64_t total = 0, done = 0;
  for (const auto& e : plan) total += static_cast<uint64_t>(e.t.shape.numel());
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  for (size_t ti = 0; ti < plan.size(); ++ti) {
    const Planned& pt = plan[ti];
    const SynthTensor& t = pt.t;
    if (t.name == "rope_freqs.weight") {
      MLXN_TRY(w.write({reinterpret_cast<const uint8_t*>(rope_freqs.data()), rope_freqs.size() * 4}));
      done += rope_freqs.size();
      continue;
    }
    const int64_t rows_total = t.shape.rank() == 2 ? t.shape[0] : 1;
    const int64_t cols = t.shape.back();
    MLXN_ASSIGN_OR_RETURN(const size_t row_bytes, dtype_storage_bytes(t.type, cols));
    // Chunks of rows: generated and quantized in parallel, written in order.
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(rows_total, (int64_t{1} << 24) / cols));
    std::vector<uint8_t> out;
    for (int64_t r0 = 0; r0 < rows_total; r0 += chunk) {
      const int64_t nr = std::min(chunk, rows_total - r0);
      out.resize(static_cast<size_t>(nr) * row_bytes);
      std::vector<Status> st(static_cast<size_t>(threads));
      std::vector<std::thread> pool;
      for (int th = 0; th < threads; ++th) {
        pool.emplace_back([&, th] {
          std::vector<float> row(static_cast<size_t>(cols));
          for (int64_t r = th; r < nr; r += threads) {
            Rng g{o.seed * 0x100000001B3ull ^ (ti << 40) ^ static_cast<uint64_t>(r0 + r)};
            const float a = pt.stddev * std::sqrt(3.0f);  // uniform on [-a, a] has this standard deviation
            for (auto& x : row) x = pt.mean + a * g.uniform();
            Status s =
                quant::quantize(t.type, row.data(), cols, out.data() + static_cast<size_t>(r) * row_bytes, row_bytes);
            if (!s.is_ok()) {
              st[static_cast<size_t>(th)] = s;
              return;
            }
          }
        });
      }
      for (auto& th : pool) th.join();
      for (const auto& s : st) MLXN_TRY(s);
      MLXN_TRY(w.write(out));
      done += static_cast<uint64_t>(nr * cols);
      if (o.progress) o.progress(done, total);
    }
  }
  return w.close();
}

}  // namespace mlxn::models
