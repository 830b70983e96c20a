// Dequantize / quantized-embedding cases shared by the CPU and GPU tests. Weights come from qmatmul_cases.h
// (Gaussian data through our reference quantizers; random codes under a small scale for IQ4_XS) with their exact
// decode (quant::dequantize / quant::affine_dequantize, checked bit-exact against the gguf package by the oracle).
#pragma once

#include "qmatmul_cases.h"

namespace mlxn::test {

// A weight as uploaded to a device: the GGML blocks, or the affine triple.
struct DeviceQWeight {
  Buffer w;
  ops::AffineWeight aw;
};

inline DeviceQWeight upload_qweight(const Device& dev, const QMatmulCase& c, const QWeights& q) {
  DeviceQWeight d;
  if (c.tw == DType::U32) {
    d.aw.bits = c.bits;
    d.aw.group_size = c.group;
    d.aw.packed = dev.alloc(DType::U32, {c.N, c.K * c.bits / 32}).value();
    d.aw.scales = dev.alloc(c.ts, {c.N, c.K / c.group}).value();
    d.aw.biases = dev.alloc(c.ts, {c.N, c.K / c.group}).value();
    EXPECT_TRUE(d.aw.packed.upload(q.blocks.data(), q.blocks.size()).is_ok());
    EXPECT_TRUE(d.aw.scales.upload(q.scales.data(), q.scales.size()).is_ok());
    EXPECT_TRUE(d.aw.biases.upload(q.biases.data(), q.biases.size()).is_ok());
  } else {
    d.w = dev.alloc(c.tw, {c.N, c.K}).value();
    EXPECT_TRUE(d.w.upload(q.blocks.data(), q.blocks.size()).is_ok());
  }
  return d;
}

struct DequantRun {
  std::vector<float> out;  // [rows, K], the padding of a strided output dropped
  Status status;
};

// Dequantizes rows [row0, row0 + rows) of the weight into `to`; out_pad > 0 makes out a 2-D view whose rows are
// K + out_pad apart. The output is poisoned first; the padding must stay poisoned.
inline DequantRun run_dequant(const Device& dev, const QMatmulCase& c, const QWeights& q, DType to, int64_t row0,
                              int64_t rows, int64_t out_pad) {
  DequantRun r;
  auto d = upload_qweight(dev, c, q);
  const int64_t ld = c.K + out_pad;
  auto store = dev.alloc(to, {std::max<int64_t>(rows, 1), ld}).value();
  poison(store);
  Buffer out = store;
  if (out_pad) {
    Strides st{};
    st[0] = ld;
    st[1] = 1;
    out = store.view_strided(0, to, {rows, c.K}, st).value();
  } else {
    out = store.view(0, to, {rows, c.K}).value();
  }
  auto s = Session::create(dev).value();
  if (c.tw == DType::U32) {
    ops::AffineWeight aw = d.aw;
    aw.packed = d.aw.packed.slice(0, row0, rows).value();
    aw.scales = d.aw.scales.slice(0, row0, rows).value();
    aw.biases = d.aw.biases.slice(0, row0, rows).value();
    r.status = ops::dequantize_affine(s, aw, out);
  } else {
    r.status = ops::dequantize(s, d.w.slice(0, row0, rows).value(), out);
  }
  if (r.status.is_ok()) r.status = s.finish();
  if (!r.status.is_ok()) return r;
  const auto all = read_f32(store);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t k = 0; k < c.K; ++k) r.out.push_back(all[static_cast<size_t>(i * ld + k)]);
    for (int64_t k = c.K; k < ld; ++k)
      if (!std::isnan(all[static_cast<size_t>(i * ld + k)])) r.status = invalid_argument("test", "padding written");
  }
  return r;
}

// Every weight format and affine variant, with shapes: N odd or 1, K of one block and of several, a row offset.
struct DequantCase {
  QMatmulCase w;  // M unused
  int64_t row0, rows, out_pad;
};

inline std::vector<DequantCase> dequant_cases(bool big) {
  std::vector<DequantCase> v;
  int i = 0;
  for (DType t : qmatmul_formats()) {
    const int64_t kb = dtype_info(t).block_elems;
    for (auto [N, K, row0, rows] : std::vector<std::array<int64_t, 4>>{
             {1, kb, 0, 1}, {7, 3 * kb, 2, 5}, {33, kb, 0, 33}, {9, (big ? 4096 / kb + 1 : 2) * kb, 1, 8}}) {
      v.push_back({{t, 0, 0, DType::F16, 0, N, K, DType::F32, 0}, row0, rows, (i % 3 == 2) ? 8 : 0});
      ++i;
    }
  }
  const DType ts[] = {DType::F16, DType::BF16, DType::F32};
  for (int bits : {2, 3, 4, 5, 6, 8})
    for (int group : {32, 64, 128}) {
      for (auto [N, K, row0, rows] :
           std::vector<std::array<int64_t, 4>>{{1, 128, 0, 1}, {7, 384, 2, 5}, {33, big ? 4096 : 256, 0, 33}}) {
        v.push_back({{DType::U32, bits, group, ts[i % 3], 0, N, K, DType::F32, 0}, row0, rows, (i % 3 == 2) ? 8 : 0});
        ++i;
      }
    }
  return v;
}

inline std::string describe(const DequantCase& c) {
  return detail::cat(describe(c.w), " rows [", c.row0, ", ", c.row0 + c.rows, ") pad=", c.out_pad);
}

// Embedding through a quantized table: ids with out-of-range entries; returns the output as f32.
inline DequantRun run_qembedding(const Device& dev, const QMatmulCase& c, const QWeights& q, DType to,
                                 const std::vector<int32_t>& idv, float scale) {
  DequantRun r;
  auto d = upload_qweight(dev, c, q);
  const auto n = static_cast<int64_t>(idv.size());
  auto ids = dev.alloc(DType::I32, {n}).value();
  EXPECT_TRUE(ids.upload(idv.data(), idv.size() * 4).is_ok());
  auto out = dev.alloc(to, {n, c.K}).value();
  poison(out);
  auto s = Session::create(dev).value();
  ops::EmbeddingParams p;
  p.scale = scale;
  r.status = c.tw == DType::U32 ? ops::embedding_affine(s, d.aw, ids, out, p) : ops::embedding(s, d.w, ids, out, p);
  if (r.status.is_ok()) r.status = s.finish();
  if (r.status.is_ok()) r.out = read_f32(out);
  return r;
}

inline std::vector<int32_t> embedding_ids(int64_t vocab, int64_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = g() % 8;
    ids.push_back(k == 0   ? -1 - static_cast<int32_t>(g() % 3)
                  : k == 1 ? static_cast<int32_t>(vocab + static_cast<int64_t>(g() % 3))
                           : static_cast<int32_t>(g() % static_cast<uint64_t>(vocab)));
  }
  return ids;
}

}  // namespace mlxn::test
