// Reduction references: keys compared through kern::float_key_bits (NaN largest, -0 == +0), ties to the lower index,
// sums in double.
#include "kernels/reduce.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "cpu/common.h"
#include "kernels/keys.h"

namespace mlxn::cpu {
namespace {

uint32_t key_at(const void* x, DType t, int64_t i) { return kern::float_key_bits(f32_bits(load_f32(x, t, i))); }

// Row r's positions ordered by key descending (or ascending), ties by lower index.
std::vector<int32_t> sorted_positions(const void* x, DType t, int64_t base, int64_t cols, bool descending) {
  std::vector<int32_t> pos(static_cast<size_t>(cols));
  std::iota(pos.begin(), pos.end(), 0);
  std::vector<uint32_t> keys(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) keys[static_cast<size_t>(c)] = key_at(x, t, base + c);
  std::stable_sort(pos.begin(), pos.end(), [&](int32_t a, int32_t b) {
    const uint32_t ka = keys[static_cast<size_t>(a)], kb = keys[static_cast<size_t>(b)];
    return descending ? ka > kb : ka < kb;
  });
  return pos;
}

}  // namespace

Status argmax(const kern::ArgmaxParams& p, const ExecContext&) {
  parallel_for(p.rows, 4, [&](int64_t r) {
    const int64_t base = r * p.cols;
    int64_t best = 0;
    uint32_t best_key = key_at(p.x, p.tx, base);
    for (int64_t c = 1; c < p.cols; ++c) {
      const uint32_t k = key_at(p.x, p.tx, base + c);
      if (k > best_key) best_key = k, best = c;
    }
    p.idx[r] = static_cast<int32_t>(best);
    if (p.val) p.val[r] = load_f32(p.x, p.tx, base + best);
  });
  return Status::ok();
}

Status topk(const kern::TopKParams& p, const ExecContext&) {
  parallel_for(p.rows, 1, [&](int64_t r) {
    const int64_t base = r * p.cols;
    const auto pos = sorted_positions(p.x, p.tx, base, p.cols, true);
    for (int j = 0; j < p.k; ++j) {
      const int64_t o = r * p.k + j;
      p.indices[o] = pos[static_cast<size_t>(j)];
      if (p.values) store_f32(p.values, p.tx, o, load_f32(p.x, p.tx, base + pos[static_cast<size_t>(j)]));
    }
  });
  return Status::ok();
}

Status argsort(const kern::ArgsortParams& p, const ExecContext&) {
  parallel_for(p.rows, 1, [&](int64_t r) {
    const auto pos = sorted_positions(p.x, p.tx, r * p.cols, p.cols, p.descending);
    std::copy(pos.begin(), pos.end(), p.indices + r * p.cols);
  });
  return Status::ok();
}

Status row_sum(const kern::RowReduceParams& p, const ExecContext&) {
  parallel_for(p.rows, 16, [&](int64_t r) {
    double s = 0;
    for (int64_t c = 0; c < p.cols; ++c) s += load_f32(p.x, p.tx, r * p.cols + c);
    store_f32(p.out, p.tout, r, static_cast<float>(s));
  });
  return Status::ok();
}

Status cumsum(const kern::RowReduceParams& p, const ExecContext&) {
  parallel_for(p.rows, 16, [&](int64_t r) {
    double s = 0;
    for (int64_t c = 0; c < p.cols; ++c) {
      s += load_f32(p.x, p.tx, r * p.cols + c);
      store_f32(p.out, p.tout, r * p.cols + c, static_cast<float>(s));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
