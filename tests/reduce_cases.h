// Shared runners of the reduce, sample and moe tests: upload inputs (optionally as views at an offset), poison the
// outputs, run the op on a device and read the results back.
#pragma once

#include <algorithm>
#include <cmath>

#include "test_util.h"

namespace mlxn::test {

// N(0, 1) values on a coarse grid (steps of 1/4), rounded to t: many exact ties, to test the tie order.
inline std::vector<float> tie_data(size_t n, uint64_t seed, DType t) {
  auto v = randn(n, seed, 2.0f);
  for (auto& x : v) x = std::round(x * 4.0f) / 4.0f;
  return rounded(t, v);
}

// A buffer of dtype t and `shape` holding v, placed `offset` elements into a larger allocation (a view).
inline Buffer upload_at(const Device& dev, DType t, const Shape& shape, const std::vector<float>& v, size_t offset) {
  auto store = dev.alloc(t, {static_cast<int64_t>(v.size() + offset + 5)}).value();
  poison(store);
  auto b = store.view(offset * dtype_size(t), t, shape).value();
  auto bytes = to_bytes(t, v);
  EXPECT_TRUE(b.upload(bytes.data(), bytes.size()).is_ok());
  return b;
}

inline Buffer upload_i32(const Device& dev, const Shape& shape, const std::vector<int32_t>& v) {
  auto b = dev.alloc(DType::I32, shape).value();
  EXPECT_TRUE(b.upload(v.data(), v.size() * 4).is_ok());
  return b;
}

inline std::vector<int32_t> read_i32(const Buffer& b) {
  std::vector<int32_t> v(static_cast<size_t>(b.numel()));
  EXPECT_TRUE(b.download(v.data(), v.size() * 4).is_ok());
  return v;
}

inline Buffer poisoned(const Device& dev, DType t, const Shape& shape) {
  auto b = dev.alloc(t, shape).value();
  poison(b);
  return b;
}

inline Buffer workspace(const Device& dev, size_t bytes) {
  auto b = dev.alloc(DType::U8, {static_cast<int64_t>(std::max<size_t>(bytes, 1))}).value();
  poison(b);
  return b;
}

struct IndexRun {
  std::vector<int32_t> idx;
  std::vector<float> val;
  Status status;
};

inline IndexRun run_argmax(const Device& dev, DType t, int64_t rows, int64_t cols, const std::vector<float>& x,
                           size_t offset, bool use_ws) {
  IndexRun out;
  auto s = Session::create(dev).value();
  auto xb = upload_at(dev, t, {rows, cols}, x, offset);
  auto idx = poisoned(dev, DType::I32, {rows});
  auto val = poisoned(dev, DType::F32, {rows});
  Buffer ws = use_ws ? workspace(dev, ops::argmax_workspace_bytes(rows, cols)) : Buffer();
  out.status = ops::argmax(s, xb, idx, val, ws);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.idx = read_i32(idx);
  out.val = read_f32(val);
  return out;
}

inline IndexRun run_topk(const Device& dev, DType t, int64_t rows, int64_t cols, int k, const std::vector<float>& x,
                         size_t offset) {
  IndexRun out;
  auto s = Session::create(dev).value();
  auto xb = upload_at(dev, t, {rows, cols}, x, offset);
  auto idx = poisoned(dev, DType::I32, {rows, k});
  auto val = poisoned(dev, t, {rows, k});
  auto ws = workspace(dev, ops::topk_workspace_bytes(rows, cols, k));
  out.status = ops::topk(s, xb, k, val, idx, ws);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.idx = read_i32(idx);
  out.val = read_f32(val);
  return out;
}

inline IndexRun run_argsort(const Device& dev, DType t, int64_t rows, int64_t cols, bool desc,
                            const std::vector<float>& x, size_t offset) {
  IndexRun out;
  auto s = Session::create(dev).value();
  auto xb = upload_at(dev, t, {rows, cols}, x, offset);
  auto idx = poisoned(dev, DType::I32, {rows, cols});
  out.status = ops::argsort(s, xb, idx, desc);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.idx = read_i32(idx);
  return out;
}

// Row sum (scan = false) or inclusive cumsum (scan = true) into an output of dtype to.
inline IndexRun run_row_reduce(const Device& dev, DType tx, DType to, int64_t rows, int64_t cols,
                               const std::vector<float>& x, size_t offset, bool scan) {
  IndexRun out;
  auto s = Session::create(dev).value();
  auto xb = upload_at(dev, tx, {rows, cols}, x, offset);
  auto ob = poisoned(dev, to, scan ? Shape{rows, cols} : Shape{rows});
  out.status = scan ? ops::cumsum(s, xb, ob) : ops::row_sum(s, xb, ob);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.val = read_f32(ob);
  return out;
}

inline std::vector<std::pair<int64_t, int64_t>> reduce_shapes(bool large) {
  if (!large) return {{1, 1}, {3, 7}, {2, 33}, {5, 256}, {1, 4097}, {2, 9000}, {1, 20000}};
  return {{1, 1},    {3, 7},     {2, 33},     {7, 1000},  {1, 4096},  {1, 4097},
          {3, 8191}, {1, 20000}, {2, 151936}, {70, 5000}, {1, 262144}};
}

}  // namespace mlxn::test
