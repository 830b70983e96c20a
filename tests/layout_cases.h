// Layout checks run by the CPU test and, on CUDA, by the GPU test: each op on random bytes against an index
// computation written here (the ops move bytes, so results must match exactly), outputs poisoned first.
#pragma once

#include <numeric>

#include "test_util.h"

namespace mlxn::test {

inline std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g());
  return v;
}

// A buffer of `shape` filled with random bytes; returns the bytes too.
inline Buffer random_buffer(const Device& dev, DType t, const Shape& shape, uint64_t seed, std::vector<uint8_t>* out) {
  auto b = dev.alloc(t, shape).value();
  auto bytes = random_bytes(b.nbytes(), seed);
  EXPECT_TRUE(b.upload(bytes.data(), bytes.size()).is_ok());
  if (out) *out = bytes;
  return b;
}

inline std::vector<uint8_t> read_bytes(const Buffer& b) {
  std::vector<uint8_t> v(b.nbytes());
  EXPECT_TRUE(b.download(v.data(), v.size()).is_ok());
  return v;
}

inline Buffer poisoned(const Device& dev, DType t, const Shape& shape) {
  auto b = dev.alloc(t, shape).value();
  EXPECT_TRUE(b.fill_bytes(0xA5).is_ok());
  return b;
}

// Row-major multi-index of i over shape.
inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(static_cast<size_t>(s.rank()));
  for (int d = s.rank() - 1; d >= 0; --d) {
    idx[static_cast<size_t>(d)] = i % s[d];
    i /= s[d];
  }
  return idx;
}

inline void check_permute(const Device& dev, uint64_t seed) {
  auto s = Session::create(dev).value();
  struct C {
    Shape shape;
    std::vector<int> perm;
    DType t;
    bool sliced;  // x is a view of every other row of a larger buffer (strided)
  };
  const std::vector<C> cases = {
      {{33, 65}, {1, 0}, DType::F32, false},
      {{64, 64}, {1, 0}, DType::BF16, false},
      {{7, 129}, {1, 0}, DType::U8, false},
      {{5, 31}, {1, 0}, DType::I64, false},
      {{3, 40, 70}, {0, 2, 1}, DType::BF16, false},
      {{3, 40, 70}, {1, 0, 2}, DType::F16, false},
      {{4, 5, 6}, {2, 0, 1}, DType::F32, false},
      {{4, 5, 6}, {1, 2, 0}, DType::I8, false},
      {{2, 3, 4, 5}, {0, 2, 1, 3}, DType::BF16, false},
      {{2, 3, 4, 5}, {3, 2, 1, 0}, DType::F32, false},
      {{2, 3, 36, 33}, {0, 1, 3, 2}, DType::U16, false},
      {{1, 9, 1, 70}, {3, 1, 2, 0}, DType::F32, false},
      {{10, 66}, {1, 0}, DType::BF16, true},
      {{6, 4, 8}, {0, 2, 1}, DType::F64, true},
  };
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(detail::cat("permute ", c.shape, " ", c.t, " case ", k));
    std::vector<uint8_t> xb;
    Shape store = c.shape;
    if (c.sliced) store[0] *= 2;
    Buffer xs = random_buffer(dev, c.t, store, seed + static_cast<uint64_t>(k++), &xb);
    Buffer x = xs;
    Strides xst = contiguous_strides(store);
    if (c.sliced) {
      Strides st = xst;
      st[0] *= 2;
      x = xs.view_strided(0, c.t, c.shape, st).value();
      xst = st;
    }
    Shape os = c.shape;
    for (int d = 0; d < c.shape.rank(); ++d) os[d] = c.shape[c.perm[static_cast<size_t>(d)]];
    Buffer y = poisoned(dev, c.t, os);
    ASSERT_TRUE(ops::permute(s, x, std::span<const int>(c.perm), y).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto got = read_bytes(y);
    const size_t es = dtype_size(c.t);
    for (int64_t i = 0; i < os.numel(); ++i) {
      const auto oi = unravel(i, os);
      int64_t src = 0;
      for (int d = 0; d < os.rank(); ++d) src += oi[static_cast<size_t>(d)] * xst[c.perm[static_cast<size_t>(d)]];
      ASSERT_EQ(std::memcmp(got.data() + static_cast<size_t>(i) * es, xb.data() + static_cast<size_t>(src) * es, es), 0)
          << "element " << i;
    }
  }
  // transpose() is permute with the last two swapped.
  std::vector<uint8_t> xb;
  Buffer x = random_buffer(dev, DType::BF16, {2, 17, 100}, seed + 99, &xb);
  Buffer y = poisoned(dev, DType::BF16, {2, 100, 17});
  ASSERT_TRUE(ops::transpose(s, x, y).is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  const auto got = read_bytes(y);
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 100; ++i)
      for (int j = 0; j < 17; ++j)
        ASSERT_EQ(std::memcmp(got.data() + 2 * ((b * 100 + i) * 17 + j), xb.data() + 2 * ((b * 17 + j) * 100 + i), 2),
                  0);
}

inline void check_repeat(const Device& dev, uint64_t seed) {
  auto s = Session::create(dev).value();
  // GQA tiled heads: [T, Hkv, D] -> [T, Hq, D] with dst[t, h] = src[t, h % Hkv]; and a general tile.
  struct C {
    Shape shape;
    std::vector<int64_t> reps;
    DType t;
  };
  const std::vector<C> cases = {{{3, 2, 64}, {1, 4, 1}, DType::BF16},
                                {{2, 3, 5}, {2, 1, 3}, DType::F32},
                                {{7}, {5}, DType::U8},
                                {{2, 1, 3, 2}, {1, 3, 2, 1}, DType::I32}};
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(detail::cat("repeat ", c.shape));
    std::vector<uint8_t> xb;
    Buffer x = random_buffer(dev, c.t, c.shape, seed + static_cast<uint64_t>(k++), &xb);
    Shape os = c.shape;
    for (int d = 0; d < os.rank(); ++d) os[d] *= c.reps[static_cast<size_t>(d)];
    Buffer y = poisoned(dev, c.t, os);
    ASSERT_TRUE(ops::repeat(s, x, std::span<const int64_t>(c.reps), y).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto got = read_bytes(y);
    const size_t es = dtype_size(c.t);
    const Strides xs = contiguous_strides(c.shape);
    for (int64_t i = 0; i < os.numel(); ++i) {
      const auto oi = unravel(i, os);
      int64_t src = 0;
      for (int d = 0; d < os.rank(); ++d) src += (oi[static_cast<size_t>(d)] % c.shape[d]) * xs[d];
      ASSERT_EQ(std::memcmp(got.data() + static_cast<size_t>(i) * es, xb.data() + static_cast<size_t>(src) * es, es),
                0);
    }
  }
}

// concat along every axis (2 to 6 inputs: more than one kernel group), contiguous and strided inputs, and a block
// type along its rows; then split back and compare.
inline void check_concat_split(const Device& dev, uint64_t seed) {
  auto s = Session::create(dev).value();
  int k = 0;
  for (DType t : {DType::BF16, DType::F32, DType::U8}) {
    for (int axis = 0; axis < 3; ++axis) {
      for (int n_in : {2, 6}) {
        for (bool strided : {false, true}) {
          SCOPED_TRACE(detail::cat("concat ", t, " axis ", axis, " inputs ", n_in, strided ? " strided" : ""));
          std::vector<Buffer> ins;
          std::vector<std::vector<uint8_t>> bytes;
          std::vector<Shape> shapes;
          int64_t total = 0;
          for (int j = 0; j < n_in; ++j) {
            Shape sh = {3, 5, 8};
            sh[axis] = 1 + (j * 7 + axis) % 5;
            total += sh[axis];
            std::vector<uint8_t> fb;
            Shape store = sh;
            if (strided) store[2] += 3;  // columns 1 .. sh[2] of wider rows: a strided view
            Buffer full = random_buffer(dev, t, store, seed + static_cast<uint64_t>(1000 + k++), &fb);
            Buffer in = strided ? full.slice(2, 1, sh[2]).value() : full;
            const size_t es = dtype_size(t);
            std::vector<uint8_t> b(static_cast<size_t>(sh.numel()) * es);
            for (int64_t e = 0; e < sh.numel(); ++e) {
              const auto ix = unravel(e, sh);
              const int64_t f = (ix[0] * store[1] + ix[1]) * store[2] + ix[2] + (strided ? 1 : 0);
              std::memcpy(b.data() + static_cast<size_t>(e) * es, fb.data() + static_cast<size_t>(f) * es, es);
            }
            ins.push_back(in);
            bytes.push_back(b);
            shapes.push_back(sh);
          }
          Shape os = {3, 5, 8};
          os[axis] = total;
          Buffer out = poisoned(dev, t, os);
          ASSERT_TRUE(ops::concat(s, ins, axis, out).is_ok());
          ASSERT_TRUE(s.finish().is_ok());
          const auto got = read_bytes(out);
          const size_t es = dtype_size(t);
          for (int64_t i = 0; i < os.numel(); ++i) {
            auto oi = unravel(i, os);
            int j = 0;
            while (oi[static_cast<size_t>(axis)] >= shapes[static_cast<size_t>(j)][axis]) {
              oi[static_cast<size_t>(axis)] -= shapes[static_cast<size_t>(j)][axis];
              ++j;
            }
            const Shape& sh = shapes[static_cast<size_t>(j)];
            const int64_t src = (oi[0] * sh[1] + oi[1]) * sh[2] + oi[2];
            ASSERT_EQ(std::memcmp(got.data() + static_cast<size_t>(i) * es,
                                  bytes[static_cast<size_t>(j)].data() + static_cast<size_t>(src) * es, es),
                      0)
                << "element " << i;
          }
          // Split back into fresh (poisoned) buffers.
          std::vector<Buffer> outs;
          for (const auto& sh : shapes) outs.push_back(poisoned(dev, t, sh));
          ASSERT_TRUE(ops::split(s, out, axis, outs).is_ok());
          ASSERT_TRUE(s.finish().is_ok());
          for (size_t j = 0; j < outs.size(); ++j) EXPECT_EQ(read_bytes(outs[j]), bytes[j]) << "split part " << j;
        }
      }
    }
  }
  // Q8_0 rows: [2, 64] and [3, 64] along axis 0.
  std::vector<uint8_t> a, b;
  Buffer qa = random_buffer(dev, DType::Q8_0, {2, 64}, seed + 5, &a);
  Buffer qb = random_buffer(dev, DType::Q8_0, {3, 64}, seed + 6, &b);
  Buffer qo = poisoned(dev, DType::Q8_0, {5, 64});
  const Buffer qs[2] = {qa, qb};
  ASSERT_TRUE(ops::concat(s, qs, 0, qo).is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  auto want = a;
  want.insert(want.end(), b.begin(), b.end());
  EXPECT_EQ(read_bytes(qo), want);
}

inline void check_slice(const Device& dev, uint64_t seed) {
  auto s = Session::create(dev).value();
  std::vector<uint8_t> xb;
  Buffer x = random_buffer(dev, DType::F16, {4, 9, 6}, seed, &xb);
  auto v = ops::slice_view(x, -2, 2, 5);
  ASSERT_TRUE(v.is_ok());
  EXPECT_EQ(v->shape(), (Shape{4, 5, 6}));
  EXPECT_EQ(v->storage_id(), x.storage_id());
  Buffer y = poisoned(dev, DType::F16, {4, 5, 6});
  ASSERT_TRUE(ops::slice(s, x, 1, 2, y).is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  const auto got = read_bytes(y);
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 5; ++b)
      for (int c = 0; c < 6; ++c)
        ASSERT_EQ(std::memcmp(got.data() + 2 * ((a * 5 + b) * 6 + c), xb.data() + 2 * ((a * 9 + b + 2) * 6 + c), 2), 0);
  EXPECT_EQ(ops::slice(s, x, 1, 5, y).code(), StatusCode::OutOfRange);
}

inline void check_gather_scatter(const Device& dev, uint64_t seed) {
  auto s = Session::create(dev).value();
  for (DType t : {DType::BF16, DType::F32, DType::U8, DType::Q4_K}) {
    SCOPED_TRACE(detail::cat("gather ", t));
    const int64_t rows = 37, cols = t == DType::Q4_K ? 512 : 33;
    std::vector<uint8_t> tb;
    Buffer table = random_buffer(dev, t, {rows, cols}, seed + 1, &tb);
    const std::vector<int32_t> idx = {3, 0, 36, -1, 37, 5, 5, 1 << 30, 12};
    Buffer ib = dev.alloc(DType::I32, {static_cast<int64_t>(idx.size())}).value();
    ASSERT_TRUE(ib.upload(idx.data(), idx.size() * 4).is_ok());
    Buffer out = poisoned(dev, t, {static_cast<int64_t>(idx.size()), cols});
    ASSERT_TRUE(ops::gather_rows(s, table, ib, out).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto got = read_bytes(out);
    const size_t rb = dtype_storage_bytes(t, cols).value();
    for (size_t i = 0; i < idx.size(); ++i) {
      const bool in = idx[i] >= 0 && idx[i] < rows;
      std::vector<uint8_t> want(rb, 0);
      if (in) std::memcpy(want.data(), tb.data() + static_cast<size_t>(idx[i]) * rb, rb);
      EXPECT_EQ(std::memcmp(got.data() + i * rb, want.data(), rb), 0) << "row " << i << " idx " << idx[i];
    }
  }
  // Scatter rows of src into a table (distinct indices, one out of range skipped) from a strided table view.
  std::vector<uint8_t> tb, sb;
  Buffer full = random_buffer(dev, DType::F32, {20, 12}, seed + 2, &tb);
  Buffer table = full.view_strided(4 * 2, DType::F32, {10, 7}, {24, 1}).value();  // every other row, columns 2..8
  Buffer src = random_buffer(dev, DType::F32, {4, 7}, seed + 3, &sb);
  const std::vector<int32_t> idx = {9, 0, 10, 4};
  Buffer ib = dev.alloc(DType::I32, {4}).value();
  ASSERT_TRUE(ib.upload(idx.data(), 16).is_ok());
  ASSERT_TRUE(ops::scatter_rows(s, src, ib, table).is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  auto want = tb;
  for (size_t i = 0; i < idx.size(); ++i) {
    if (idx[i] >= 10) continue;
    std::memcpy(want.data() + (static_cast<size_t>(idx[i]) * 24 + 2) * 4, sb.data() + i * 28, 28);
  }
  EXPECT_EQ(read_bytes(full), want);
}

inline void check_qkv_split(const Device& dev, uint64_t seed) {
  auto s = Session::create(dev).value();
  for (auto [T, Hq, Hkv, D] : std::vector<std::array<int64_t, 4>>{{1, 32, 8, 128}, {7, 4, 2, 64}, {5, 3, 1, 6}}) {
    SCOPED_TRACE(detail::cat("qkv ", T, " ", Hq, " ", Hkv, " ", D));
    const int64_t W = (Hq + 2 * Hkv) * D;
    std::vector<uint8_t> qb;
    // Rows strided: qkv lives in a wider buffer (e.g. a fused projection with padding).
    Buffer full = random_buffer(dev, DType::BF16, {T, W + 8}, seed + static_cast<uint64_t>(T), &qb);
    Buffer qkv = full.view_strided(0, DType::BF16, {T, W}, {W + 8, 1}).value();
    Buffer q = poisoned(dev, DType::BF16, {T, Hq, D});
    Buffer k = poisoned(dev, DType::BF16, {T, Hkv, D});
    Buffer v = poisoned(dev, DType::BF16, {T, Hkv * D});
    ASSERT_TRUE(ops::qkv_split(s, qkv, q, k, v).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto gq = read_bytes(q), gk = read_bytes(k), gv = read_bytes(v);
    for (int64_t t = 0; t < T; ++t) {
      const uint8_t* row = qb.data() + t * (W + 8) * 2;
      EXPECT_EQ(std::memcmp(gq.data() + t * Hq * D * 2, row, static_cast<size_t>(Hq * D * 2)), 0);
      EXPECT_EQ(std::memcmp(gk.data() + t * Hkv * D * 2, row + Hq * D * 2, static_cast<size_t>(Hkv * D * 2)), 0);
      EXPECT_EQ(std::memcmp(gv.data() + t * Hkv * D * 2, row + (Hq + Hkv) * D * 2, static_cast<size_t>(Hkv * D * 2)),
                0);
    }
  }
}

}  // namespace mlxn::test
