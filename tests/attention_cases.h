// Attention / KV-cache cases shared by the CPU test (the CPU backend against a naive reference written here) and the
// GPU test (CUDA against the CPU backend). The test keeps every sequence's K and V by absolute position on the host,
// lays the history into the cache itself (its own layout mapping), appends this step's rows with kv_cache_write, runs
// attention, and reads back both the output and the cache.
#pragma once

#include <algorithm>
#include <limits>
#include <numeric>

#include "test_util.h"

namespace mlxn::test {

// tkv: f16, bf16, u8 (fp8 e4m3 with f32 scales), q8_0 / q4_0 (the split block layout: KvCache::quant).
struct AttnCase {
  int32_t batch = 1, q_len = 1, hq = 4, hkv = 1, d = 64;
  DType tq = DType::BF16, tkv = DType::BF16, tout = DType::BF16;
  ops::KvLayout layout = ops::KvLayout::Contiguous;
  int64_t capacity = 0;  // per sequence (contiguous, ring); paged: rounded up to whole pages
  int32_t page_size = 16;
  std::vector<int32_t> kv_lens;  // after this step
  std::vector<int32_t> q_lens;   // empty: every row
  bool causal = true;
  int32_t window = 0;
  float softcap = 0.0f;
  bool sinks = false, mask = false, mask_batch = false;
  float scale = 0.0f;
  float q_std = 1.0f;  // larger: peakier softmax
};

inline std::string describe(const AttnCase& c) {
  std::string lens;
  for (size_t b = 0; b < c.kv_lens.size(); ++b)
    lens += detail::cat(b ? "," : "", c.kv_lens[b], c.q_lens.empty() ? "" : detail::cat("/", c.q_lens[b]));
  const char* lay = c.layout == ops::KvLayout::Ring ? "ring" : c.layout == ops::KvLayout::Paged ? "paged" : "contig";
  return detail::cat("b=", c.batch, " q=", c.q_len, " hq=", c.hq, " hkv=", c.hkv, " d=", c.d, " q:", c.tq,
                     " kv:", c.tkv, " out:", c.tout, " ", lay, " cap=", c.capacity, " lens=[", lens,
                     "] causal=", c.causal, " W=", c.window, " cap=", c.softcap, " sinks=", c.sinks, " mask=", c.mask);
}

struct AttnRun {
  std::vector<float> q, out, sinks, mask;
  std::vector<std::vector<float>> k_abs, v_abs;  // per sequence: [kv_len][hkv * d] as stored in the cache
  std::vector<int32_t> n_q;                      // rows of this step per sequence
  bool cache_ok = true;                          // the cache read back holds what the test expects
  std::string cache_error;
  Status status;
};

inline int32_t rows_of(const AttnCase& c, int b) {
  const int32_t n = c.q_lens.empty() ? c.q_len : c.q_lens[static_cast<size_t>(b)];
  return std::min(n, c.kv_lens[static_cast<size_t>(b)]);
}

// The cache row (in positions) the test expects position t of sequence b in; -1: not present.
inline int64_t test_row(const AttnCase& c, const std::vector<int32_t>& table, int64_t max_pages, int b, int64_t t) {
  if (c.layout == ops::KvLayout::Paged)
    return static_cast<int64_t>(table[static_cast<size_t>(b * max_pages + t / c.page_size)]) * c.page_size +
           t % c.page_size;
  if (c.layout == ops::KvLayout::Ring) return b * c.capacity + t % c.capacity;
  return b * c.capacity + t;
}

// fp8 e4m3 (OCP E4M3FN) written independently of the library: the value of each code from its bit fields, and
// quantization as the nearest code by search (ties to the even code, saturating at 448).
inline float fp8_value(uint8_t code) {
  const int e = (code >> 3) & 15, m = code & 7;
  if (e == 15 && m == 7) return std::numeric_limits<float>::quiet_NaN();
  const float mag = e == 0 ? static_cast<float>(m) / 512.0f : std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
  return (code & 0x80) ? -mag : mag;
}
inline uint8_t fp8_nearest(float x) {
  static const std::vector<float> values = [] {  // codes 0 ... 0x7e: increasing
    std::vector<float> v;
    for (int code = 0; code <= 0x7e; ++code) v.push_back(fp8_value(static_cast<uint8_t>(code)));
    return v;
  }();
  const float a = std::fabs(x);
  const size_t hi = static_cast<size_t>(std::lower_bound(values.begin(), values.end(), a) - values.begin());
  size_t best = std::min<size_t>(hi, values.size() - 1);
  if (hi > 0 && hi < values.size()) {
    const float d_lo = a - values[hi - 1], d_hi = values[hi] - a;
    best = d_lo < d_hi || (d_lo == d_hi && (hi - 1) % 2 == 0) ? hi - 1 : hi;
  }
  return static_cast<uint8_t>(best | (std::signbit(x) ? 0x80u : 0u));
}
// One (position, head) vector: scale = max|x| / 448, codes of x / scale (as the header documents).
inline float fp8_quantize(const float* x, int64_t d, uint8_t* codes) {
  float amax = 0.0f;
  for (int64_t e = 0; e < d; ++e) amax = std::max(amax, std::fabs(x[e]));
  const float s = amax / 448.0f;
  const float inv = s > 0.0f ? 1.0f / s : 0.0f;
  for (int64_t e = 0; e < d; ++e) codes[e] = fp8_nearest(x[e] * inv);
  return s;
}

// q8_0 / q4_0 written independently of the library from ggml's definitions (quantize_row_q8_0_ref / q4_0_ref), one
// block of 32 at a time: codes (q8_0: one i8 byte per element; q4_0: byte i holds elements i and 16 + i in its low and
// high nibble) and the f16 scale d (returned as a float, exact). x * (1 / d) as ggml: a reciprocal, then a product.
inline float q8_0_block(const float* x, uint8_t* codes) {
  float amax = 0.0f;
  for (int e = 0; e < 32; ++e) amax = std::max(amax, std::fabs(x[e]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int e = 0; e < 32; ++e) {
    const float v = std::round(x[e] * id);  // halves away from zero, as C's roundf
    codes[e] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(v, -128.0f, 127.0f)));
  }
  return f16_to_f32(f32_to_f16(d));
}
inline float q4_0_block(const float* x, uint8_t* codes) {
  float amax = 0.0f, mx = 0.0f;
  for (int e = 0; e < 32; ++e)
    if (std::fabs(x[e]) > amax) {  // the first element of the largest magnitude
      amax = std::fabs(x[e]);
      mx = x[e];
    }
  const float d = mx / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  auto code = [&](float v) {
    const float t = v * id;
    const float u = t + 8.5f;
    return std::min(15, static_cast<int>(std::clamp(u, 0.0f, 127.0f)));  // C's truncation of a non-negative value
  };
  for (int i = 0; i < 16; ++i) codes[i] = static_cast<uint8_t>(code(x[i]) | (code(x[i + 16]) << 4));
  return f16_to_f32(f32_to_f16(d));
}
inline float q_block_value(DType t, const uint8_t* codes, float d, int e) {
  if (t == DType::Q8_0) return static_cast<float>(static_cast<int8_t>(codes[e])) * d;
  const int nib = e < 16 ? codes[e] & 15 : codes[e - 16] >> 4;
  return static_cast<float>(nib - 8) * d;
}

// Bytes of codes and number of scales per (position, head) vector of a quantized cache (0 scales: not quantized).
inline int64_t code_bytes_of(DType t, int64_t d) { return t == DType::Q4_0 ? d / 2 : d; }
inline int64_t scales_of(DType t, int64_t d) {
  return t == DType::U8 ? 1 : t == DType::Q8_0 || t == DType::Q4_0 ? d / 32 : 0;
}
// Quantizes one (position, head) vector x[0..d) as the cache type t does; x is replaced by the values it represents.
inline void quantize_vector(DType t, float* x, int64_t d, uint8_t* codes, float* scales) {
  if (t == DType::U8) {
    scales[0] = fp8_quantize(x, d, codes);
    for (int64_t e = 0; e < d; ++e) x[e] = fp8_value(codes[e]) * scales[0];
    return;
  }
  const int64_t cb = t == DType::Q4_0 ? 16 : 32;
  for (int64_t blk = 0; blk < d / 32; ++blk) {
    uint8_t* bc = codes + blk * cb;
    float* bx = x + blk * 32;
    scales[blk] = t == DType::Q8_0 ? q8_0_block(bx, bc) : q4_0_block(bx, bc);
    for (int e = 0; e < 32; ++e) bx[e] = q_block_value(t, bc, scales[blk], e);
  }
}

// A one-byte (u8 / i8) buffer from codes held as floats (0 ... 255).
inline Buffer make_u8_buffer(const Device& dev, const Shape& shape, const std::vector<float>& codes,
                             DType t = DType::U8) {
  std::vector<uint8_t> bytes(codes.size());
  for (size_t i = 0; i < codes.size(); ++i) bytes[i] = static_cast<uint8_t>(codes[i]);
  auto b = dev.alloc(t, shape);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_TRUE(b->upload(bytes.data(), bytes.size()).is_ok());
  return b.value();
}
inline std::vector<float> read_u8(const Buffer& b) {
  std::vector<uint8_t> bytes(b.nbytes());
  EXPECT_TRUE(b.download(bytes.data(), bytes.size()).is_ok());
  return std::vector<float>(bytes.begin(), bytes.end());
}

inline AttnRun run_attention(const Device& dev, const AttnCase& c, uint64_t seed,
                             const ops::AttentionParams* pp = nullptr) {
  AttnRun run;
  const int64_t row = static_cast<int64_t>(c.hkv) * c.d;
  std::mt19937_64 g(seed);
  run.q = rounded(c.tq, randn(static_cast<size_t>(c.batch) * c.q_len * c.hq * c.d, g(), c.q_std));
  // New rows: in q's dtype (the projection's), then converted on write.
  auto k_new = rounded(c.tq, randn(static_cast<size_t>(c.batch) * c.q_len * row, g()));
  auto v_new = rounded(c.tq, randn(static_cast<size_t>(c.batch) * c.q_len * row, g()));
  run.k_abs.resize(static_cast<size_t>(c.batch));
  run.v_abs.resize(static_cast<size_t>(c.batch));
  for (int b = 0; b < c.batch; ++b) {
    const int32_t kv = c.kv_lens[static_cast<size_t>(b)], n = rows_of(c, b);
    run.n_q.push_back(n);
    auto& ka = run.k_abs[static_cast<size_t>(b)];
    auto& va = run.v_abs[static_cast<size_t>(b)];
    ka = rounded(c.tkv, randn(static_cast<size_t>(kv) * row, g()));
    va = rounded(c.tkv, randn(static_cast<size_t>(kv) * row, g()));
    for (int32_t i = 0; i < n; ++i)
      for (int64_t e = 0; e < row; ++e) {
        const size_t src = (static_cast<size_t>(b) * c.q_len + i) * row + e;
        const size_t dst = static_cast<size_t>(kv - n + i) * row + e;
        ka[dst] = round_to(c.tkv, k_new[src]);
        va[dst] = round_to(c.tkv, v_new[src]);
      }
  }
  // Quantized caches (fp8, q8_0, q4_0): every (position, head) vector quantized; k_abs / v_abs then hold the values
  // the cache represents. Per vector: cb bytes of codes and ns scales (crow / srow per position).
  const bool fp8 = c.tkv == DType::U8;
  const bool quant = scales_of(c.tkv, c.d) > 0;
  const bool block_quant = c.tkv == DType::Q8_0 || c.tkv == DType::Q4_0;
  const int64_t cb = code_bytes_of(c.tkv, c.d), ns = scales_of(c.tkv, c.d);
  const int64_t crow = quant ? c.hkv * cb : row, srow = c.hkv * ns;
  std::vector<std::vector<uint8_t>> k_codes(static_cast<size_t>(c.batch)), v_codes(static_cast<size_t>(c.batch));
  std::vector<std::vector<float>> k_sc(static_cast<size_t>(c.batch)), v_sc(static_cast<size_t>(c.batch));
  if (quant) {
    for (int b = 0; b < c.batch; ++b) {
      const size_t bb = static_cast<size_t>(b);
      const int64_t kv = c.kv_lens[bb];
      k_codes[bb].resize(static_cast<size_t>(kv * crow));
      v_codes[bb].resize(static_cast<size_t>(kv * crow));
      k_sc[bb].resize(static_cast<size_t>(kv * srow));
      v_sc[bb].resize(static_cast<size_t>(kv * srow));
      for (int64_t t = 0; t < kv; ++t)
        for (int64_t h = 0; h < c.hkv; ++h) {
          const size_t o = static_cast<size_t>(t * row + h * c.d), co = static_cast<size_t>(t * crow + h * cb),
                       so = static_cast<size_t>(t * srow + h * ns);
          quantize_vector(c.tkv, &run.k_abs[bb][o], c.d, &k_codes[bb][co], &k_sc[bb][so]);
          quantize_vector(c.tkv, &run.v_abs[bb][o], c.d, &v_codes[bb][co], &v_sc[bb][so]);
        }
    }
  }
  // Cache storage, NaN everywhere a kernel has no business reading (0xFFFF is NaN in f16 and bf16).
  const bool paged = c.layout == ops::KvLayout::Paged;
  const int64_t max_pages = paged ? (c.capacity + c.page_size - 1) / c.page_size : 0;
  const int64_t n_pages = paged ? c.batch * max_pages + 3 : 0;
  const int64_t cap = paged ? max_pages * c.page_size : c.capacity;
  std::vector<int32_t> table;
  if (paged) {
    table.resize(static_cast<size_t>(c.batch * max_pages));
    std::iota(table.begin(), table.end(), 3);
    std::shuffle(table.begin(), table.end(), g);
    // Pages past a sequence's length are unmapped (-1): kernels must never touch them.
    for (int b = 0; b < c.batch; ++b)
      for (int64_t pg = (c.kv_lens[static_cast<size_t>(b)] + c.page_size - 1) / c.page_size; pg < max_pages; ++pg)
        table[static_cast<size_t>(b * max_pages + pg)] = -1;
  }
  const int64_t cols = quant ? cb : c.d;
  const Shape cache_shape = paged ? Shape{n_pages, c.page_size, c.hkv, cols} : Shape{c.batch, c.capacity, c.hkv, cols};
  const int64_t cache_rows = paged ? n_pages * c.page_size : c.batch * c.capacity;
  // Quantized: kc / vc hold codes (fp8: 255 = NaN; q8_0: 0x80 = -128, a code the quantizer never writes; q4_0: 0xff)
  // and ksc / vsc the scales (NaN where unwritten).
  const float unwritten = fp8           ? 255.0f
                          : block_quant ? (c.tkv == DType::Q8_0 ? 128.0f : 255.0f)
                                        : std::numeric_limits<float>::quiet_NaN();
  std::vector<float> kc(static_cast<size_t>(cache_rows * crow), unwritten);
  std::vector<float> vc = kc;
  auto expect_k = kc, expect_v = kc;
  std::vector<float> ksc(static_cast<size_t>(cache_rows * srow), std::numeric_limits<float>::quiet_NaN());
  std::vector<float> vsc = ksc;
  auto expect_ks = ksc, expect_vs = ksc;
  for (int b = 0; b < c.batch; ++b) {
    const int32_t kv = c.kv_lens[static_cast<size_t>(b)], hist = kv - run.n_q[static_cast<size_t>(b)];
    const int64_t first = c.layout == ops::KvLayout::Ring ? std::max<int64_t>(0, kv - cap) : 0;
    for (int64_t t = first; t < kv; ++t) {
      const int64_t r = test_row(c, table, max_pages, b, t);
      for (int64_t e = 0; e < srow; ++e) {
        const size_t dst = static_cast<size_t>(r * srow + e), src = static_cast<size_t>(t * srow + e);
        expect_ks[dst] = k_sc[static_cast<size_t>(b)][src];
        expect_vs[dst] = v_sc[static_cast<size_t>(b)][src];
        if (t < hist) {
          ksc[dst] = expect_ks[dst];
          vsc[dst] = expect_vs[dst];
        }
      }
      for (int64_t e = 0; e < crow; ++e) {
        const size_t src = static_cast<size_t>(t * crow + e);
        const float kvv = quant ? k_codes[static_cast<size_t>(b)][src] : run.k_abs[static_cast<size_t>(b)][src];
        const float vvv = quant ? v_codes[static_cast<size_t>(b)][src] : run.v_abs[static_cast<size_t>(b)][src];
        expect_k[static_cast<size_t>(r * crow + e)] = kvv;
        expect_v[static_cast<size_t>(r * crow + e)] = vvv;
        if (t < hist) {  // history: laid in by the test; this step's rows come from kv_cache_write
          kc[static_cast<size_t>(r * crow + e)] = kvv;
          vc[static_cast<size_t>(r * crow + e)] = vvv;
        }
      }
    }
    // A ring's history older than the new rows' reach is still in the ring before the write: lay it in too.
    if (c.layout == ops::KvLayout::Ring)
      for (int64_t t = std::max<int64_t>(0, hist - cap); t < first; ++t) {
        const int64_t r = test_row(c, table, max_pages, b, t);
        for (int64_t e = 0; e < crow; ++e) {
          kc[static_cast<size_t>(r * crow + e)] = 100.0f;  // overwritten by the write (checked below)
          vc[static_cast<size_t>(r * crow + e)] = 100.0f;
        }
        for (int64_t e = 0; e < srow; ++e) {
          ksc[static_cast<size_t>(r * srow + e)] = 100.0f;
          vsc[static_cast<size_t>(r * srow + e)] = 100.0f;
        }
      }
  }
  const DType code_t = c.tkv == DType::Q8_0 ? DType::I8 : DType::U8;
  auto k_cache = quant ? make_u8_buffer(dev, cache_shape, kc, code_t) : make_buffer(dev, c.tkv, cache_shape, kc);
  auto v_cache = quant ? make_u8_buffer(dev, cache_shape, vc, code_t) : make_buffer(dev, c.tkv, cache_shape, vc);
  ops::KvCache cache{k_cache, v_cache, c.layout, Buffer()};
  if (fp8) {
    const Shape scale_shape{cache_shape[0], cache_shape[1], cache_shape[2]};
    cache.k_scale = make_buffer(dev, DType::F32, scale_shape, ksc);
    cache.v_scale = make_buffer(dev, DType::F32, scale_shape, vsc);
  } else if (block_quant) {
    const Shape scale_shape{cache_shape[0], cache_shape[1], cache_shape[2], ns};
    cache.k_scale = make_buffer(dev, DType::F16, scale_shape, ksc);
    cache.v_scale = make_buffer(dev, DType::F16, scale_shape, vsc);
    cache.quant = c.tkv == DType::Q8_0 ? ops::KvQuant::Q8_0 : ops::KvQuant::Q4_0;
  }
  if (paged) {
    cache.page_table = dev.alloc(DType::I32, {c.batch, max_pages}).value();
    EXPECT_TRUE(cache.page_table.upload(table.data(), table.size() * 4).is_ok());
  }
  ops::SeqLens lens;
  lens.kv_lens = dev.alloc(DType::I32, {c.batch}).value();
  EXPECT_TRUE(lens.kv_lens.upload(c.kv_lens.data(), c.kv_lens.size() * 4).is_ok());
  if (!c.q_lens.empty()) {
    lens.q_lens = dev.alloc(DType::I32, {c.batch}).value();
    EXPECT_TRUE(lens.q_lens.upload(c.q_lens.data(), c.q_lens.size() * 4).is_ok());
  }
  const Shape kshape{c.batch, c.q_len, c.hkv, c.d};
  auto kn = make_buffer(dev, c.tq, kshape, k_new);
  auto vn = make_buffer(dev, c.tq, kshape, v_new);
  const Shape qshape{c.batch, c.q_len, c.hq, c.d};
  auto q = make_buffer(dev, c.tq, qshape, run.q);
  auto out = dev.alloc(c.tout, qshape).value();
  poison(out);
  Buffer sinks, mask;
  if (c.sinks) {
    run.sinks = rounded(DType::F32, randn(static_cast<size_t>(c.hq), g(), 2.0f));
    sinks = make_buffer(dev, DType::F32, {c.hq}, run.sinks);
  }
  if (c.mask) {
    const int64_t mb = c.mask_batch ? c.batch : 1;
    run.mask.resize(static_cast<size_t>(mb * c.q_len * cap));
    std::uniform_real_distribution<float> u(-2.0f, 1.0f);
    // Some -inf entries (blocked keys), the rest finite biases.
    for (auto& m : run.mask) m = u(g) < -1.6f ? -std::numeric_limits<float>::infinity() : round_to(c.tq, u(g));
    mask = make_buffer(dev, c.tq, {mb, c.q_len, cap}, run.mask);
  }
  ops::AttentionParams p;
  if (pp) p = *pp;
  p.scale = c.scale;
  p.causal = c.causal;
  p.window = c.window;
  p.softcap = c.softcap;
  const size_t ws_bytes = ops::attention_workspace_bytes(dev, q, cache);
  Buffer ws;
  if (ws_bytes > 0) {
    ws = dev.alloc(DType::U8, {static_cast<int64_t>(ws_bytes)}).value();
    poison(ws);
  }
  auto s = Session::create(dev).value();
  run.status = ops::kv_cache_write(s, kn, vn, cache, lens);
  if (run.status.is_ok()) run.status = ops::attention(s, q, cache, lens, out, p, sinks, mask, ws);
  if (run.status.is_ok()) run.status = s.finish();
  if (!run.status.is_ok()) return run;
  run.out = read_f32(out);
  // The caches must hold exactly the expected rows (NaN where nothing was written).
  auto kr = quant ? read_u8(k_cache) : read_f32(k_cache), vr = quant ? read_u8(v_cache) : read_f32(v_cache);
  auto same = [](float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
  if (quant) {
    auto ksr = read_f32(cache.k_scale), vsr = read_f32(cache.v_scale);
    for (size_t i = 0; i < ksr.size() && run.cache_ok; ++i)
      if (!same(ksr[i], expect_ks[i]) || !same(vsr[i], expect_vs[i])) {
        run.cache_ok = false;
        run.cache_error =
            detail::cat("scale ", i, ": k ", ksr[i], " v ", vsr[i], ", expected ", expect_ks[i], " / ", expect_vs[i]);
      }
  }
  for (size_t i = 0; i < kr.size() && run.cache_ok; ++i) {
    if (!same(kr[i], expect_k[i]) || !same(vr[i], expect_v[i])) {
      run.cache_ok = false;
      run.cache_error = detail::cat("cache element ", i, " (row ", static_cast<int64_t>(i) / crow, "): k ", kr[i],
                                    " v ", vr[i], ", expected ", expect_k[i], " / ", expect_v[i]);
    }
  }
  return run;
}

// The naive reference: an explicit score row per query over every position of the sequence, the visibility
// predicate written out, softmax (with the sink column) in double. It never looks at the cache layout.
inline std::vector<double> attention_naive(const AttnCase& c, const AttnRun& r) {
  std::vector<double> out(static_cast<size_t>(c.batch) * c.q_len * c.hq * c.d, 0.0);
  const int64_t row = static_cast<int64_t>(c.hkv) * c.d;
  const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.d));
  const int group = c.hq / c.hkv;
  for (int b = 0; b < c.batch; ++b) {
    const int64_t kv = c.kv_lens[static_cast<size_t>(b)];
    const int32_t n = r.n_q[static_cast<size_t>(b)];
    for (int32_t i = 0; i < n; ++i) {
      const int64_t t = kv - n + i;
      for (int h = 0; h < c.hq; ++h) {
        const int kvh = h / group;
        std::vector<double> score(static_cast<size_t>(kv), -INFINITY);
        for (int64_t j = 0; j < kv; ++j) {
          const bool visible = (!c.causal || j <= t) && (c.window == 0 || j > t - c.window);
          if (!visible) continue;
          double dot = 0;
          for (int e = 0; e < c.d; ++e)
            dot += static_cast<double>(r.q[((static_cast<size_t>(b) * c.q_len + i) * c.hq + h) * c.d + e]) *
                   r.k_abs[static_cast<size_t>(b)][static_cast<size_t>(j * row + kvh * c.d + e)];
          double s = scale * dot;
          if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
          if (c.mask) {
            const int64_t cap = static_cast<int64_t>(r.mask.size()) / ((c.mask_batch ? c.batch : 1) * c.q_len);
            s += r.mask[static_cast<size_t>(((c.mask_batch ? b : 0) * c.q_len + i) * cap + j)];
          }
          score[static_cast<size_t>(j)] = s;
        }
        double m = -INFINITY;
        for (double s : score) m = std::max(m, s);
        if (c.sinks) m = std::max(m, static_cast<double>(r.sinks[static_cast<size_t>(h)]));
        if (m == -INFINITY) continue;  // nothing visible: zeros
        double den = c.sinks ? std::exp(r.sinks[static_cast<size_t>(h)] - m) : 0.0;
        std::vector<double> o(static_cast<size_t>(c.d), 0.0);
        for (int64_t j = 0; j < kv; ++j) {
          const double w = std::exp(score[static_cast<size_t>(j)] - m);
          den += w;
          for (int e = 0; e < c.d; ++e)
            o[static_cast<size_t>(e)] +=
                w * r.v_abs[static_cast<size_t>(b)][static_cast<size_t>(j * row + kvh * c.d + e)];
        }
        for (int e = 0; e < c.d; ++e)
          out[((static_cast<size_t>(b) * c.q_len + i) * c.hq + h) * c.d + static_cast<size_t>(e)] =
              den > 0 ? o[static_cast<size_t>(e)] / den : 0.0;
      }
    }
  }
  return out;
}

// Builds a case with `batch` sequences of lengths kv (this step: q rows each unless q_lens given).
inline AttnCase attn_case(int32_t q_len, int32_t hq, int32_t hkv, int32_t d, std::vector<int32_t> kv_lens,
                          ops::KvLayout layout = ops::KvLayout::Contiguous, int64_t capacity = 0) {
  AttnCase c;
  c.batch = static_cast<int32_t>(kv_lens.size());
  c.q_len = q_len;
  c.hq = hq;
  c.hkv = hkv;
  c.d = d;
  c.kv_lens = std::move(kv_lens);
  c.layout = layout;
  int32_t mx = 1;
  for (int32_t v : c.kv_lens) mx = std::max(mx, v);
  c.capacity = capacity > 0 ? capacity : mx + 5;
  return c;
}

// Cases over the semantics: decode and prefill, GQA 1 / 4 / 8, lengths 1 / 17 / 4097, windows below and above the
// length, softcap, sinks, masks, every layout, uneven batches. `head_dims` and `types` widen it for the GPU test.
inline std::vector<AttnCase> attn_cases(const std::vector<int32_t>& head_dims,
                                        const std::vector<std::pair<DType, DType>>& types, bool large) {
  using L = ops::KvLayout;
  std::vector<AttnCase> cases;
  int k = 0;
  for (int32_t d : head_dims) {
    for (auto [tq, tkv] : types) {
      auto add = [&](AttnCase c) {
        c.tq = tq;
        c.tout = tq;
        c.tkv = tkv;
        if (k % 5 == 3 && tq != DType::F32) c.tout = DType::F32;  // out in another dtype now and then (CPU only)
        ++k;
        cases.push_back(std::move(c));
      };
      // Decode, batch 1: GQA 4, lengths 1 / 17 / long.
      add(attn_case(1, 8, 2, d, {1}));
      add(attn_case(1, 8, 2, d, {17}));
      add(attn_case(1, 8, 1, d, {large ? 4097 : 1500}));
      // MHA (ratio 1) and GQA 8, batch 3 of uneven lengths, paged.
      add(attn_case(1, 4, 4, d, {33, 1, 200}, L::Paged, 256));
      add(attn_case(1, 16, 2, d, {300, 45, 7}, L::Paged, 320));
      // Speculative decode: 5 query rows, some sequences with fewer (q_lens), sinks and softcap.
      {
        auto c = attn_case(5, 8, 2, d, {40, 5, 123});
        c.q_lens = {5, 2, 3};
        c.sinks = true;
        c.softcap = 5.0f;
        c.q_std = 3.0f;
        add(c);
      }
      // Sliding windows: smaller than the sequence, larger, exactly the length; ring buffers wrapping.
      {
        auto c = attn_case(1, 8, 2, d, {large ? 4097 : 700, 20});
        c.window = 16;
        add(c);
        c.window = 5000;
        add(c);
        c.window = 20;
        add(c);
        auto r = attn_case(3, 8, 2, d, {large ? 4097 : 700, 18}, L::Ring, 40);
        r.window = 32;
        r.sinks = true;
        add(r);
        auto r1 = attn_case(1, 4, 1, d, {1000, 3}, L::Ring, 64);
        r1.window = 64;
        add(r1);
      }
      // Prefill from 0 (lower triangle), chunked prefill resuming at an offset, uneven batch.
      add(attn_case(33, 8, 2, d, {33}));
      {
        auto c = attn_case(40, 8, 8, d, {100, 40, 77});
        c.q_lens = {40, 17, 40};
        c.softcap = 30.0f;
        add(c);
        auto w = attn_case(37, 8, 1, d, {large ? 300 : 90, 37}, L::Paged, 320);
        w.window = 24;
        w.sinks = true;
        add(w);
      }
      // Encoder: non-causal with a padding / bias mask per sequence; a causal case with a broadcast mask.
      {
        auto c = attn_case(19, 4, 4, d, {19, 12});
        c.q_lens = {19, 12};
        c.causal = false;
        c.mask = true;
        c.mask_batch = true;
        add(c);
        auto m = attn_case(3, 8, 2, d, {50});
        m.mask = true;
        m.scale = 0.3f;
        add(m);
      }
    }
  }
  return cases;
}

}  // namespace mlxn::test
