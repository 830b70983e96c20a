// An independent float64 reimplementation of the decoder families (plain loops over the GGUF tensors, read with
// GgufFile::dequantize_tensor) used as the oracle of the model tests. It follows the published conventions
// (Hugging Face transformers / llama.cpp), not the library's code: embedding (* sqrt(d) for Gemma), RMSNorm,
// RoPE with interleaved pairs for llama GGUFs and rotate_half pairs otherwise, causal attention with a sliding
// window on Gemma 3's local layers, SwiGLU / tanh-GeGLU, Gemma's post norms, tied LM head.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mlxn/core/half.h"
#include "mlxn/io/gguf.h"
#include "mlxn/models/config.h"

namespace mlxn::test {

class RefDecoder {
 public:
  // kv_round: round K and V to f16 as the model's cache stores them (the only rounding the CPU path has).
  RefDecoder(const io::GgufFile& f, const models::ModelConfig& c, bool kv_round_f16 = true)
      : f_(f), c_(c), kv_round_(kv_round_f16) {}

  // Last-token logits of the whole sequence.
  std::vector<double> logits(const std::vector<int32_t>& tokens) {
    const int64_t T = static_cast<int64_t>(tokens.size()), d = c_.n_embd, D = c_.head_dim;
    const int64_t H = c_.n_head, Hkv = c_.n_head_kv, qd = H * D, kvd = Hkv * D;
    const auto& E = get("token_embd.weight");
    std::vector<std::vector<double>> x(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(d)));
    const double escale = c_.arch == models::Arch::Gemma3 ? std::sqrt(static_cast<double>(d)) : 1.0;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < d; ++i) x[t][i] = E[static_cast<size_t>(tokens[t] * d + i)] * escale;

    for (int64_t il = 0; il < c_.n_layer; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      const bool sliding = c_.sliding(il);
      std::vector<std::vector<double>> q(T), k(T), v(T), att(T, std::vector<double>(static_cast<size_t>(qd), 0.0));
      for (int64_t t = 0; t < T; ++t) {
        auto h = rmsnorm(x[t], get(b + "attn_norm.weight"));
        q[t] = linear(h, get(b + "attn_q.weight"), qd);
        k[t] = linear(h, get(b + "attn_k.weight"), kvd);
        v[t] = linear(h, get(b + "attn_v.weight"), kvd);
        if (c_.qkv_bias) {
          add(q[t], get(b + "attn_q.bias"));
          add(k[t], get(b + "attn_k.bias"));
          add(v[t], get(b + "attn_v.bias"));
        }
        if (c_.qk_norm) {
          head_norm(q[t], get(b + "attn_q_norm.weight"));
          head_norm(k[t], get(b + "attn_k_norm.weight"));
        }
        rope(q[t], t, sliding);
        rope(k[t], t, sliding);
        if (kv_round_) {
          for (auto& e : k[t]) e = f16_to_f32(f32_to_f16(static_cast<float>(e)));
          for (auto& e : v[t]) e = f16_to_f32(f32_to_f16(static_cast<float>(e)));
        }
      }
      const double scale = c_.attn_scale > 0 ? c_.attn_scale : 1.0 / std::sqrt(static_cast<double>(D));
      for (int64_t t = 0; t < T; ++t) {
        for (int64_t h = 0; h < H; ++h) {
          const int64_t g = h / (H / Hkv);
          std::vector<double> s;
          std::vector<int64_t> js;
          for (int64_t j = 0; j <= t; ++j) {
            if (sliding && !(t - c_.sliding_window < j)) continue;
            double dot = 0;
            for (int64_t e = 0; e < D; ++e) dot += q[t][h * D + e] * k[j][g * D + e];
            dot *= scale;
            if (c_.attn_softcap > 0) dot = c_.attn_softcap * std::tanh(dot / c_.attn_softcap);
            s.push_back(dot);
            js.push_back(j);
          }
          double m = -INFINITY, sum = 0;
          for (double e : s) m = std::max(m, e);
          for (double& e : s) sum += (e = std::exp(e - m));
          for (size_t n = 0; n < s.size(); ++n)
            for (int64_t e = 0; e < D; ++e) att[t][h * D + e] += s[n] / sum * v[js[n]][g * D + e];
        }
      }
      for (int64_t t = 0; t < T; ++t) {
        auto o = linear(att[t], get(b + "attn_output.weight"), d);
        if (c_.post_norms) o = rmsnorm(o, get(b + "post_attention_norm.weight"));
        add(x[t], o);
        auto h = rmsnorm(x[t], get(b + "ffn_norm.weight"));
        auto gt = linear(h, get(b + "ffn_gate.weight"), c_.n_ff);
        auto up = linear(h, get(b + "ffn_up.weight"), c_.n_ff);
        for (int64_t i = 0; i < c_.n_ff; ++i) gt[i] = act(gt[i]) * up[i];
        auto dn = linear(gt, get(b + "ffn_down.weight"), d);
        if (c_.post_norms) dn = rmsnorm(dn, get(b + "post_ffw_norm.weight"));
        add(x[t], dn);
      }
    }
    auto h = rmsnorm(x[T - 1], get("output_norm.weight"));
    auto out = linear(h, get(f_.tensor("output.weight") ? "output.weight" : "token_embd.weight"), c_.n_vocab);
    if (c_.final_softcap > 0)
      for (auto& e : out) e = c_.final_softcap * std::tanh(e / c_.final_softcap);
    return out;
  }

 private:
  const std::vector<double>& get(const std::string& name) {
    auto it = cache_.find(name);
    if (it != cache_.end()) return it->second;
    auto v = f_.dequantize_tensor(name);
    EXPECT_TRUE(v.is_ok()) << v.status().to_string();
    std::vector<double> dv;
    if (v.is_ok()) dv.assign(v->begin(), v->end());
    return cache_[name] = std::move(dv);
  }
  // y = W x with W [n, x.size()] row-major.
  static std::vector<double> linear(const std::vector<double>& x, const std::vector<double>& w, int64_t n) {
    const size_t K = x.size();
    std::vector<double> y(static_cast<size_t>(n), 0.0);
    for (int64_t r = 0; r < n; ++r) {
      double s = 0;
      for (size_t i = 0; i < K; ++i) s += w[static_cast<size_t>(r) * K + i] * x[i];
      y[static_cast<size_t>(r)] = s;
    }
    return y;
  }
  static void add(std::vector<double>& x, const std::vector<double>& y) {
    for (size_t i = 0; i < x.size(); ++i) x[i] += y[i];
  }
  std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<double>& w) const {
    double ss = 0;
    for (double e : x) ss += e * e;
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(x.size()) + c_.rms_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w[i];  // GGUF Gemma weights already hold 1 + w
    return y;
  }
  void head_norm(std::vector<double>& x, const std::vector<double>& w) const {
    const size_t D = static_cast<size_t>(c_.head_dim);
    for (size_t h = 0; h < x.size() / D; ++h) {
      std::vector<double> part(x.begin() + h * D, x.begin() + (h + 1) * D);
      part = rmsnorm(part, w);
      std::copy(part.begin(), part.end(), x.begin() + h * D);
    }
  }
  void rope(std::vector<double>& x, int64_t pos, bool sliding) const {
    const int64_t D = c_.head_dim, rd = c_.rope_dim;
    const double base = sliding ? c_.rope_base_local : c_.rope_base;
    double fscale = 1.0;
    if (!sliding && c_.rope_scaling == models::RopeScaling::Linear) fscale = 1.0 / c_.rope_factor;
    const bool interleaved = c_.arch == models::Arch::Llama;  // llama GGUF: pairs (2i, 2i + 1)
    std::vector<double> ff(static_cast<size_t>(rd / 2), 1.0);
    if (!sliding && f_.tensor("rope_freqs.weight")) {
      auto v = f_.dequantize_tensor("rope_freqs.weight");
      for (size_t i = 0; i < ff.size(); ++i) ff[i] = (*v)[i];
    }
    for (size_t h = 0; h < x.size() / static_cast<size_t>(D); ++h) {
      double* p = x.data() + h * static_cast<size_t>(D);
      for (int64_t i = 0; i < rd / 2; ++i) {
        const double theta = fscale * static_cast<double>(pos) * std::pow(base, -2.0 * i / rd) / ff[i];
        const int64_t a = interleaved ? 2 * i : i, bb = interleaved ? 2 * i + 1 : i + rd / 2;
        const double x0 = p[a], x1 = p[bb];
        p[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
        p[bb] = x0 * std::sin(theta) + x1 * std::cos(theta);
      }
    }
  }
  double act(double g) const {
    if (c_.ffn_act == ops::Activation::Silu) return g / (1.0 + std::exp(-g));
    const double k = std::sqrt(2.0 / M_PI);
    return 0.5 * g * (1.0 + std::tanh(k * (g + 0.044715 * g * g * g)));
  }

  const io::GgufFile& f_;
  models::ModelConfig c_;
  bool kv_round_;
  std::map<std::string, std::vector<double>> cache_;
};

}  // namespace mlxn::test
