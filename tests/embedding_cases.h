// Embedding cases shared by the CPU and GPU tests.
#pragma once

#include "test_util.h"

namespace mlxn::test {

struct EmbeddingRun {
  std::vector<float> table;  // rounded to the table dtype
  std::vector<int32_t> ids;
  std::vector<float> out;
  Status status;
};

// Float table [vocab, dim] of dtype tt, ids including out-of-range ones, out of dtype to (poisoned first).
inline EmbeddingRun run_embedding(const Device& dev, DType tt, DType to, int64_t vocab, int64_t dim, int64_t n,
                                  float scale, uint64_t seed) {
  EmbeddingRun r;
  r.table = rounded(tt, randn(static_cast<size_t>(vocab * dim), seed));
  std::mt19937_64 g(seed + 1);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t k = g() % 10;
    r.ids.push_back(k == 0   ? -1 - static_cast<int32_t>(g() % 5)
                    : k == 1 ? static_cast<int32_t>(vocab + static_cast<int64_t>(g() % 3))
                             : static_cast<int32_t>(g() % static_cast<uint64_t>(vocab)));
  }
  Buffer table = make_buffer(dev, tt, {vocab, dim}, r.table);
  Buffer ids = dev.alloc(DType::I32, {n}).value();
  EXPECT_TRUE(ids.upload(r.ids.data(), r.ids.size() * 4).is_ok());
  Buffer out = dev.alloc(to, {n, dim}).value();
  poison(out);
  auto s = Session::create(dev).value();
  ops::EmbeddingParams p;
  p.scale = scale;
  r.status = ops::embedding(s, table, ids, out, p);
  if (r.status.is_ok()) r.status = s.finish();
  if (r.status.is_ok()) r.out = read_f32(out);
  return r;
}

}  // namespace mlxn::test
