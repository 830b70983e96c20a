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

struct Planned {
  std::string name;
  Shape shape;  // [rows, cols] or [n]
  DType type;
  float stddev;  // of the random values
  float mean;    // added (norm weights)
};

DType matrix_type(DType want, int64_t cols) {
  const auto& i = dtype_info(want);
  if (cols % i.block_elems == 0) return want;
  if (cols % 32 == 0) return DType::Q8_0;
  return DType::F16;
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
      return {"4b", "270m", "tiny"};
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
    case Arch::Qwen3:
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
      if (p == "4b") {
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

Result<uint64_t> write_synth_gguf(const ModelConfig& c, const std::string& path, const SynthOptions& o) {
  MLXN_TRY(c.validate());
  if (c.format != WeightFormat::Gguf) return invalid_argument(kOp, "the config must describe a GGUF model");
  if (!quant::can_quantize(o.type)) return unsupported(kOp, "no quantizer for ", o.type);
  if (c.rope_scaling == RopeScaling::Yarn) return unsupported(kOp, "YaRN presets");
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

  // Gemma GGUFs store 1 + w for norms (llama.cpp's converter); random w ~ 0.1 around that.
  const float norm_mean = 1.0f;
  std::vector<Planned> plan;
  const int64_t d = c.n_embd, qd = c.n_head * c.head_dim, kvd = c.n_head_kv * c.head_dim;
  auto mat = [&](const std::string& n, int64_t r, int64_t k) {
    plan.push_back({n, Shape{r, k}, matrix_type(o.type, k), 1.0f / std::sqrt(static_cast<float>(k)), 0.0f});
  };
  auto vec = [&](const std::string& n, int64_t len, float sd, float mean) {
    plan.push_back({n, Shape{len}, DType::F32, sd, mean});
  };
  mat("token_embd.weight", c.n_vocab, d);
  vec("output_norm.weight", d, 0.1f, norm_mean);
  if (!c.tied_embeddings) mat("output.weight", c.n_vocab, d);
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    vec(b + "attn_norm.weight", d, 0.1f, norm_mean);
    mat(b + "attn_q.weight", qd, d);
    mat(b + "attn_k.weight", kvd, d);
    mat(b + "attn_v.weight", kvd, d);
    mat(b + "attn_output.weight", d, qd);
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
    mat(b + "ffn_gate.weight", c.n_ff, d);
    mat(b + "ffn_up.weight", c.n_ff, d);
    mat(b + "ffn_down.weight", d, c.n_ff);
    if (c.post_norms) vec(b + "post_ffw_norm.weight", d, 0.1f, norm_mean);
  }
  std::vector<float> rope_freqs;
  if (c.rope_scaling == RopeScaling::Llama3) {
    rope_freqs = ops::llama3_freq_factors(c.rope_dim, c.rope_base, c.rope_factor, c.rope_low_freq_factor,
                                          c.rope_high_freq_factor, c.rope_orig_ctx);
    plan.push_back({"rope_freqs.weight", Shape{c.rope_dim / 2}, DType::F32, 0.0f, 0.0f});
  }
  for (const auto& t : plan) {
    auto id = quant::ggml_from_dtype(t.type);
    if (!id) return unsupported(kOp, "type ", t.type, " has no GGML id");
    MLXN_TRY(w.add_tensor_info(t.name, *id, t.shape));
  }
  m.set_u32("general.file_type", 0);
  MLXN_TRY(w.open(path));

  uint64_t total = 0, done = 0;
  for (const auto& t : plan) total += static_cast<uint64_t>(t.shape.numel());
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  for (size_t ti = 0; ti < plan.size(); ++ti) {
    const Planned& t = plan[ti];
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
            const float a = t.stddev * std::sqrt(3.0f);  // uniform on [-a, a] has this standard deviation
            for (auto& x : row) x = t.mean + a * g.uniform();
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
