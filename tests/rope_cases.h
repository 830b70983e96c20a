// RoPE cases shared by the CPU test (against closed forms written here) and the GPU test (CUDA against the CPU
// backend): layouts, partial rotary, frequency factors, scaling, sections, strided views inside a fused qkv row,
// in place, and the fused per-head norm.
#pragma once

#include <complex>
#include <numbers>

#include "test_util.h"

namespace mlxn::test {

struct RopeCase {
  int64_t tokens, heads, head_dim, rope_dim;
  DType t;
  ops::RopeLayout layout;
  bool freq_factors = false;
  int scaling = 0;  // 0 none, 1 linear (factor 4), 2 YaRN
  ops::RopeSections sections = ops::RopeSections::None;
  int n_streams = 1;
  bool in_qkv = false;  // x and out are q-like views inside a wider [tokens, 3 * heads * head_dim] row (+ offset)
  bool in_place = false;
  bool norm = false;
  DType tw = DType::F32;  // norm weight dtype
  bool norm_weight = true;
  float w_offset = 0.0f;
  int32_t max_pos = 300;
};

inline int64_t rope_dim_of(const RopeCase& c) { return c.rope_dim == 0 ? c.head_dim : c.rope_dim; }

inline ops::RopeParams rope_params(const RopeCase& c) {
  ops::RopeParams p;
  p.layout = c.layout;
  p.rope_dim = c.rope_dim;
  p.base = c.sections != ops::RopeSections::None ? 1e6f : 10000.0f;
  if (c.scaling == 1) p.freq_scale = 0.25f;
  if (c.scaling == 2) {
    p.freq_scale = 0.25f;
    p.ext_factor = 1.0f;
    p.attn_factor = 1.0f;
    p.beta_fast = 32.0f;
    p.beta_slow = 1.0f;
    p.n_ctx_orig = 4096;
  }
  p.sections_mode = c.sections;
  if (c.sections != ops::RopeSections::None) {
    // Qwen2-VL-like proportions of the rope_dim / 2 pairs: [t, h, w] = [1/2, 1/4, 1/4] (the rest to h).
    const int32_t half = static_cast<int32_t>(rope_dim_of(c) / 2);
    p.sections[0] = half / 2;
    p.sections[2] = half / 4;
    p.sections[1] = half - p.sections[0] - p.sections[2];
  }
  return p;
}

struct RopeRun {
  std::vector<float> x, w, ff, y;  // x as [tokens, heads, head_dim] (rounded), y likewise
  std::vector<int32_t> pos;        // [n_streams, tokens]
  Status status;
};

// Runs rope / rope_head_norm on `dev` for case c with inputs from `seed`; the output is poisoned first and the
// bytes of the surrounding allocation are checked to stay untouched (outside the view's rows).
inline RopeRun run_rope(const Device& dev, const RopeCase& c, uint64_t seed) {
  RopeRun r;
  const int64_t rows = c.tokens * c.heads, n = rows * c.head_dim;
  r.x = rounded(c.t, randn(static_cast<size_t>(n), seed));
  std::mt19937_64 g(seed + 7);
  r.pos.resize(static_cast<size_t>(c.n_streams * c.tokens));
  for (auto& v : r.pos) v = static_cast<int32_t>(g() % static_cast<uint64_t>(c.max_pos + 1));
  if (c.freq_factors) {
    r.ff.resize(static_cast<size_t>(rope_dim_of(c) / 2));
    for (auto& v : r.ff) v = 1.0f + static_cast<float>(g() % 1000) / 125.0f;  // 1 .. 9
  }
  r.w = rounded(c.tw, randn(static_cast<size_t>(c.head_dim), seed + 3, 0.3f, 1.0f));
  auto s = Session::create(dev).value();

  // Storage: [tokens, width] rows; the view starts `lead` elements in (with in_qkv: a q/k-like slice of a fused row).
  const int64_t width = c.in_qkv ? 3 * c.heads * c.head_dim + 8 : c.heads * c.head_dim;
  const int64_t lead = c.in_qkv ? c.heads * c.head_dim + 8 : 0;
  const int64_t es = static_cast<int64_t>(dtype_size(c.t));
  auto make_store = [&]() { return dev.alloc(c.t, {c.tokens * width + lead + 4}).value(); };
  Buffer xs = make_store();
  std::vector<float> xfull(static_cast<size_t>(c.tokens * width + lead + 4), 0.0f);
  for (int64_t t = 0; t < c.tokens; ++t)
    for (int64_t k = 0; k < c.heads * c.head_dim; ++k)
      xfull[static_cast<size_t>(lead + t * width + k)] = r.x[static_cast<size_t>(t * c.heads * c.head_dim + k)];
  auto xb = to_bytes(c.t, xfull);
  EXPECT_TRUE(xs.upload(xb.data(), xb.size()).is_ok());
  const Strides st = {width, c.head_dim, 1};
  Buffer x = xs.view_strided(static_cast<size_t>(lead * es), c.t, {c.tokens, c.heads, c.head_dim}, st).value();
  Buffer ys = c.in_place ? xs : make_store();
  if (!c.in_place) poison(ys);
  Buffer y = c.in_place
                 ? x
                 : ys.view_strided(static_cast<size_t>(lead * es), c.t, {c.tokens, c.heads, c.head_dim}, st).value();

  Buffer pos = dev.alloc(DType::I32, c.n_streams == 1 ? Shape{c.tokens} : Shape{c.n_streams, c.tokens}).value();
  EXPECT_TRUE(pos.upload(r.pos.data(), r.pos.size() * 4).is_ok());
  Buffer ff;
  if (c.freq_factors) ff = make_buffer(dev, DType::F32, {rope_dim_of(c) / 2}, r.ff);
  Buffer w;
  if (c.norm && c.norm_weight) w = make_buffer(dev, c.tw, {c.head_dim}, r.w);
  const auto p = rope_params(c);
  if (c.norm) {
    ops::HeadNormParams np;
    np.eps = 1e-6f;
    np.weight_offset = c.w_offset;
    r.status = ops::rope_head_norm(s, x, w, pos, ff, y, p, np);
  } else {
    r.status = ops::rope(s, x, pos, ff, y, p);
  }
  if (r.status.is_ok()) r.status = s.finish();
  if (!r.status.is_ok()) return r;
  const auto all = read_f32(ys);
  r.y.resize(static_cast<size_t>(n));
  for (int64_t t = 0; t < c.tokens; ++t)
    for (int64_t k = 0; k < c.heads * c.head_dim; ++k)
      r.y[static_cast<size_t>(t * c.heads * c.head_dim + k)] = all[static_cast<size_t>(lead + t * width + k)];
  // Elements outside the view: untouched (poison NaN, or x's zeros in place).
  for (int64_t i = 0; i < static_cast<int64_t>(all.size()); ++i) {
    const int64_t j = i - lead;
    const bool inside = j >= 0 && j / width < c.tokens && j % width < c.heads * c.head_dim;
    if (inside) continue;
    if (c.in_place) {
      EXPECT_EQ(all[static_cast<size_t>(i)], 0.0f) << "wrote outside the view at " << i;
    } else {
      EXPECT_TRUE(std::isnan(all[static_cast<size_t>(i)])) << "wrote outside the view at " << i;
    }
  }
  return r;
}

inline std::vector<RopeCase> rope_cases(bool large) {
  using L = ops::RopeLayout;
  using S = ops::RopeSections;
  std::vector<RopeCase> cs;
  int i = 0;
  for (DType t : float_dtypes()) {
    for (L layout : {L::Normal, L::Neox}) {
      // Full rotary at common head dims, odd token / head counts.
      cs.push_back({7, 3, 128, 0, t, layout});
      cs.push_back({1, 32, 128, 0, t, layout});
      cs.push_back({5, 2, 64, 0, t, layout, true});
      cs.push_back({3, 4, 256, 0, t, layout, false, 1});
      // Partial rotary (Phi-2-like 32 of 80; 64 of 128), odd rope dims for the fallback kernel.
      cs.push_back({4, 3, 80, 32, t, layout});
      cs.push_back({6, 2, 128, 64, t, layout, true, 2});
      cs.push_back({3, 2, 22, 10, t, layout});
      cs.push_back({2, 3, 6, 6, t, layout});
      // Strided views inside a fused qkv row, in place and out of place.
      RopeCase q{9, 4, 128, 0, t, layout};
      q.in_qkv = true;
      cs.push_back(q);
      q.in_place = true;
      cs.push_back(q);
      q.rope_dim = 64;  // partial in place: the tail is left alone
      cs.push_back(q);
      // Sections: M-RoPE with 3 streams, IMROPE with 3 and 4 streams, 2-D vision (2 streams).
      RopeCase m{5, 2, 128, 0, t, layout};
      m.sections = S::Mrope;
      m.n_streams = 3;
      cs.push_back(m);
      m.sections = S::Imrope;
      cs.push_back(m);
      m.n_streams = 4;
      m.rope_dim = 64;
      cs.push_back(m);
      m.sections = S::Mrope;
      m.n_streams = 2;
      m.rope_dim = 0;
      cs.push_back(m);
      // Fused per-head norm: Qwen3 (f32 / x-dtype weight), Gemma (1 + w), no weight, partial, in place.
      for (int k = 0; k < 4; ++k) {
        RopeCase n{5, 3, k == 3 ? 256 : 128, k == 2 ? 64 : 0, t, layout};
        n.norm = true;
        n.tw = (i + k) % 2 ? DType::F32 : t;
        n.norm_weight = k != 1;
        n.w_offset = k == 3 ? 1.0f : 0.0f;
        n.in_qkv = k >= 2;
        n.in_place = k == 2;
        cs.push_back(n);
      }
      RopeCase odd{3, 2, 36, 0, t, layout};  // odd units: fallback with the norm
      odd.norm = true;
      cs.push_back(odd);
      if (large) {
        cs.push_back({300, 8, 128, 0, t, layout, true});
        RopeCase lp{33, 5, 128, 0, t, layout};
        lp.max_pos = 1 << 20;  // long positions: double-precision angles on both backends
        cs.push_back(lp);
        RopeCase big{64, 1, 512, 0, t, layout};
        cs.push_back(big);
        RopeCase h1{100, 1, 64, 0, t, layout};
        h1.norm = true;
        cs.push_back(h1);
      }
      ++i;
    }
  }
  return cs;
}

inline std::string describe(const RopeCase& c) {
  return detail::cat(
      c.tokens, "x", c.heads, "x", c.head_dim, " rope_dim=", c.rope_dim, " ", c.t,
      c.layout == ops::RopeLayout::Neox ? " neox" : " normal", c.freq_factors ? " ff" : "", " scaling=", c.scaling,
      " sections=", static_cast<int>(c.sections), "/", c.n_streams, c.in_qkv ? " in_qkv" : "",
      c.in_place ? " in_place" : "",
      c.norm ? detail::cat(" norm w=", c.norm_weight ? dtype_name(c.tw) : "none", " off=", c.w_offset) : "",
      " max_pos=", c.max_pos);
}

}  // namespace mlxn::test
