// Elementwise ops and copies on the CPU backend against references computed here in double: every dtype combination,
// odd sizes, broadcasting, in place, views at byte offsets, strided copies, step-parameter scalars and error paths.
// The ops are specified as f32 arithmetic rounded once to the output dtype, which the double reference models
// exactly, so outputs are compared byte for byte (the bytes around every view included).
#include <cfloat>
#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include "test_util.h"

namespace mlxn {
namespace {

// ---- reference arithmetic ----

// v rounded to nearest (ties to even) in a binary format of `p` significand bits, smallest normal exponent `emin`
// and largest finite value `max`; written in double without the library's conversions.
double round_format(double v, int p, int emin, double max) {
  if (v == 0.0 || !std::isfinite(v)) return v;
  int e = 0;
  std::frexp(v, &e);                       // |v| = m * 2^e, m in [0.5, 1)
  const int lead = std::max(e - 1, emin);  // exponent of the leading bit; subnormals share the smallest
  const double ulp = std::ldexp(1.0, lead - (p - 1));
  const double r = std::nearbyint(v / ulp) * ulp;  // the default rounding mode: nearest, ties to even
  return std::abs(r) > max ? std::copysign(INFINITY, v) : r;
}

double round_dtype(DType t, double v) {
  switch (t) {
    case DType::F32:
      return round_format(v, 24, -126, FLT_MAX);
    case DType::F16:
      return round_format(v, 11, -14, 65504.0);
    case DType::BF16:
      return round_format(v, 8, -126, 3.3895313892515355e38);
    default:
      ADD_FAILURE() << "no reference rounding for " << t;
      return NAN;
  }
}

// The specified result: the exact value rounded to f32 (f32 arithmetic), then once to the output dtype.
float expected(DType tout, double exact) {
  return static_cast<float>(round_dtype(tout, round_dtype(DType::F32, exact)));
}

// Row-major index i of `shape` -> element offset in a view with `strides`.
int64_t offset_of(const Shape& shape, const Strides& strides, int64_t i) {
  int64_t off = 0;
  for (int d = shape.rank() - 1; d >= 0; --d) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

// Row-major index into b of out's index i, b broadcasting numpy-style against out's shape.
int64_t broadcast_index(const Shape& out, const Shape& b, int64_t i) {
  int64_t bi = 0, scale = 1;
  for (int d = out.rank() - 1, db = b.rank() - 1; db >= 0; --d, --db) {
    const int64_t idx = i % out[d];
    i /= out[d];
    if (b[db] != 1) bi += idx * scale;
    scale *= b[db];
  }
  return bi;
}

// ---- views placed in poisoned storage ----

// A view of `shape` x `t` (contiguous, or with `strides`) `front` elements into a storage of 0xFF bytes that has
// `back` spare elements after the view's extent; `image` is a host copy of the whole storage.
struct Placed {
  DType t = DType::F32;
  Buffer whole, view;
  size_t front_bytes = 0;
  std::vector<uint8_t> image;

  // Sets row-major element i of the view in the image (dtype_size(t) bytes at `elem`).
  void set(int64_t i, const void* elem) {
    const size_t es = dtype_size(t);
    const int64_t off = offset_of(view.shape(), view.strides(), i);
    std::memcpy(image.data() + front_bytes + static_cast<size_t>(off) * es, elem, es);
  }
  void set_values(const std::vector<float>& v) {
    const auto bytes = test::to_bytes(t, v);
    for (size_t i = 0; i < v.size(); ++i) set(static_cast<int64_t>(i), bytes.data() + i * dtype_size(t));
  }
  void upload() const { ASSERT_TRUE(whole.upload(image.data(), image.size()).is_ok()); }
};

Placed place(const Device& dev, DType t, const Shape& shape, int64_t front = 0, int64_t back = 0,
             std::optional<Strides> strides = std::nullopt) {
  Placed p;
  p.t = t;
  const Strides st = strides ? *strides : contiguous_strides(shape);
  int64_t extent = shape.numel() == 0 ? 0 : 1;
  for (int d = 0; d < shape.rank(); ++d) extent += (shape[d] - 1) * st[d];
  const size_t es = dtype_size(t);
  p.front_bytes = static_cast<size_t>(front) * es;
  p.image.assign(static_cast<size_t>(front + extent + back) * es, 0xFF);
  p.whole = dev.alloc(DType::U8, {static_cast<int64_t>(p.image.size())}).value();
  EXPECT_TRUE(p.whole.fill_bytes(0xFF).is_ok());
  p.view = p.whole.view_strided(p.front_bytes, t, shape, st).value();
  return p;
}

// An input view holding `v` (already representable in t).
Placed place_input(const Device& dev, DType t, const Shape& shape, const std::vector<float>& v, int64_t front = 0,
                   std::optional<Strides> strides = std::nullopt) {
  Placed p = place(dev, t, shape, front, 2, strides);
  p.set_values(v);
  p.upload();
  return p;
}

std::vector<uint8_t> download_all(const Buffer& whole) {
  std::vector<uint8_t> bytes(whole.nbytes());
  EXPECT_TRUE(whole.download(bytes.data(), bytes.size()).is_ok());
  return bytes;
}

// The whole storage of `out` equals `want` byte for byte; reports the first mismatching element of dtype t.
void expect_storage(const Placed& out, const std::vector<uint8_t>& want) {
  const auto got = download_all(out.whole);
  ASSERT_EQ(got.size(), want.size());
  const size_t es = std::max<size_t>(1, dtype_size(out.t));
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad == 0) return;
  const size_t e = (first - out.front_bytes % es) / es * es + out.front_bytes % es;
  std::string what;
  if (is_compute_float(out.t) && e + es <= got.size() && e >= out.front_bytes % es) {
    auto g = test::from_bytes(
        out.t, std::vector<uint8_t>(got.begin() + static_cast<long>(e), got.begin() + static_cast<long>(e + es)));
    auto w = test::from_bytes(
        out.t, std::vector<uint8_t>(want.begin() + static_cast<long>(e), want.begin() + static_cast<long>(e + es)));
    what = detail::cat(": got ", g[0], ", want ", w[0]);
  }
  ADD_FAILURE() << bad << " bytes differ; the first at byte " << first << " (view starts at " << out.front_bytes << ")"
                << what;
}

std::vector<float> random_values(DType t, int64_t n, uint64_t seed, float stddev = 1.0f) {
  return test::rounded(t, test::randn(static_cast<size_t>(n), seed, stddev));
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g() >> 56);
  return v;
}

#define ASSERT_OK(expr)                          \
  do {                                           \
    const ::mlxn::Status st_ = (expr);           \
    ASSERT_TRUE(st_.is_ok()) << st_.to_string(); \
  } while (0)

// ---- binary ops ----

enum class Bin { Add, Mul };

Status run_binary(Session& s, Bin op, const Buffer& a, const Buffer& b, const Buffer& out) {
  return op == Bin::Add ? ops::add(s, a, b, out) : ops::mul(s, a, b, out);
}
double apply(Bin op, double a, double b) { return op == Bin::Add ? a + b : a * b; }

// One binary op on the CPU: a, b and out are views at small offsets into poisoned storage; the whole output storage
// must equal the reference (the result inside the view, poison around it).
void check_binary(Bin op, DType ta, DType tb, DType tout, const Shape& sa, const Shape& sb, uint64_t seed,
                  int64_t front) {
  SCOPED_TRACE(
      detail::cat(op == Bin::Add ? "add " : "mul ", ta, ".", tb, ".", tout, " a", sa, " b", sb, " view+", front));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const auto va = random_values(ta, sa.numel(), seed);
  const auto vb = random_values(tb, sb.numel(), seed + 1);
  Placed a = place_input(cpu, ta, sa, va, front);
  Placed b = place_input(cpu, tb, sb, vb, (front + 1) % 4);
  Placed out = place(cpu, tout, sa, front, 3);
  ASSERT_OK(run_binary(s, op, a.view, b.view, out.view));
  std::vector<float> want(va.size());
  for (size_t i = 0; i < va.size(); ++i)
    want[i] =
        expected(tout, apply(op, va[i], vb[static_cast<size_t>(broadcast_index(sa, sb, static_cast<int64_t>(i)))]));
  out.set_values(want);
  expect_storage(out, out.image);
}

TEST(Elementwise, BinaryEveryDtypeCombination) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<Shape> shapes = {{1}, {31}, {2, 4097}, {2, 3, 5, 7}};
  int64_t front = 0;
  for (const Shape& shape : shapes)
    for (Bin op : {Bin::Add, Bin::Mul})
      for (DType ta : test::float_dtypes())
        for (DType tb : test::float_dtypes())
          for (DType tout : test::float_dtypes()) check_binary(op, ta, tb, tout, shape, shape, seed, front++ % 4);
}

TEST(Elementwise, BinaryBroadcast) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{4, 5}, {5}},
      {{4, 5}, {4, 1}},
      {{4, 5}, {1}},
      {{4, 5}, {1, 1}},
      {{3, 4, 5}, {4, 5}},
      {{3, 4, 5}, {4, 1}},
      {{3, 4, 5}, {3, 1, 5}},
      {{3, 4, 5}, {3, 1, 1}},
      {{2, 3, 4, 5}, {3, 1, 5}},
      {{2, 1, 31}, {31}},
      {{3, 4097}, {4097}},
      {{3, 4097}, {3, 1}},
      {{5, 3, 2}, {5, 1, 2}},
      {{1, 7}, {7}},
      {{6}, {1}},
      {{2, 2, 2, 2, 2, 2, 2, 3}, {2, 1, 2, 1, 2, 1, 3}},  // rank 8
  };
  const auto f = test::float_dtypes();
  int i = 0;
  for (const auto& [sa, sb] : cases) {
    for (Bin op : {Bin::Add, Bin::Mul}) {
      // A different dtype triple per case, all 27 over the list.
      check_binary(op, f[i % 3], f[(i / 3) % 3], f[(i / 9) % 3], sa, sb, seed + static_cast<uint64_t>(i), i % 3);
      ++i;
    }
  }
}

TEST(Elementwise, InPlace) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  for (DType t : test::float_dtypes()) {
    SCOPED_TRACE(detail::cat(t));
    const Shape shape{3, 31};
    const auto va = random_values(t, 93, seed), vb = random_values(t, 93, seed + 1),
               vr = random_values(t, 31, seed + 2);
    std::vector<float> want(93);
    {  // out = a, b broadcast
      Placed a = place_input(cpu, t, shape, va, 1);
      Placed r = place_input(cpu, t, {31}, vr);
      ASSERT_OK(ops::add(s, a.view, r.view, a.view));
      for (size_t i = 0; i < 93; ++i) want[i] = expected(t, static_cast<double>(va[i]) + vr[i % 31]);
      a.set_values(want);
      expect_storage(a, a.image);
    }
    {  // out = b
      Placed a = place_input(cpu, t, shape, va), b = place_input(cpu, t, shape, vb, 3);
      ASSERT_OK(ops::mul(s, a.view, b.view, b.view));
      for (size_t i = 0; i < 93; ++i) want[i] = expected(t, static_cast<double>(va[i]) * vb[i]);
      b.set_values(want);
      expect_storage(b, b.image);
    }
    {  // x = x + x, then x = x * 0.75, then x = x + (-1.5), then cast onto itself
      Placed x = place_input(cpu, t, shape, va, 2);
      ASSERT_OK(ops::add(s, x.view, x.view, x.view));
      ASSERT_OK(ops::scale(s, x.view, Scalar::of(0.75f), x.view));
      ASSERT_OK(ops::add_scalar(s, x.view, Scalar::of(-1.5f), x.view));
      ASSERT_OK(ops::cast(s, x.view, x.view));
      for (size_t i = 0; i < 93; ++i) {
        const double twice = expected(t, 2.0 * va[i]);
        want[i] = expected(t, expected(t, twice * 0.75) - 1.5);
      }
      x.set_values(want);
      expect_storage(x, x.image);
    }
  }
}

// ---- unary ops ----

enum class Un { Scale, AddScalar, Cast };

void check_unary(Un op, DType tx, DType tout, const Shape& shape, Scalar k, float k_value, uint64_t seed,
                 int64_t front) {
  SCOPED_TRACE(detail::cat(op == Un::Scale       ? "scale "
                           : op == Un::AddScalar ? "add_scalar "
                                                 : "cast ",
                           tx, ".", tout, " ", shape, " k ", k_value, k.step_slot >= 0 ? " (step slot)" : "", " view+",
                           front));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  if (k.step_slot >= 0) ASSERT_OK(s.set_step_f32(k.step_slot, k_value));
  const auto vx = random_values(tx, shape.numel(), seed, 3.0f);
  Placed x = place_input(cpu, tx, shape, vx, front);
  Placed out = place(cpu, tout, shape, (front + 1) % 4, 2);
  ASSERT_OK(op == Un::Scale       ? ops::scale(s, x.view, k, out.view)
            : op == Un::AddScalar ? ops::add_scalar(s, x.view, k, out.view)
                                  : ops::cast(s, x.view, out.view));
  std::vector<float> want(vx.size());
  for (size_t i = 0; i < vx.size(); ++i) {
    const double v = vx[i];
    want[i] = op == Un::Scale       ? expected(tout, v * k_value)
              : op == Un::AddScalar ? expected(tout, v + k_value)
                                    : static_cast<float>(round_dtype(tout, v));
  }
  out.set_values(want);
  expect_storage(out, out.image);
}

TEST(Elementwise, UnaryEveryDtypePair) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<Shape> shapes = {{1}, {31}, {4097}, {3, 5, 7, 2}};
  int i = 0;
  for (const Shape& shape : shapes)
    for (DType tx : test::float_dtypes())
      for (DType tout : test::float_dtypes()) {
        const int64_t front = i++ % 4;
        check_unary(Un::Cast, tx, tout, shape, Scalar{}, 0.0f, seed, front);
        check_unary(Un::Scale, tx, tout, shape, Scalar::of(0.3f), 0.3f, seed, front);
        check_unary(Un::AddScalar, tx, tout, shape, Scalar::of(-2.71828f), -2.71828f, seed, front);
        // From a step-parameter slot, set before the op.
        check_unary(Un::Scale, tx, tout, shape, Scalar::step(5), -1.7f, seed, front);
        check_unary(Un::AddScalar, tx, tout, shape, Scalar::step(kStepParamSlots - 1), 100.25f, seed, front);
      }
}

TEST(Elementwise, CastRoundsToNearestEven) {
  // Ties and near-ties of f32 -> f16 / bf16, subnormals, overflow to infinity, and infinities passing through.
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const std::vector<float> v = {1.0f + 0x1p-11f,
                                1.0f + 3 * 0x1p-11f,
                                1.0f + 0x1p-8f,
                                1.0f + 3 * 0x1p-8f,
                                1.0f + 0x1p-11f + 0x1p-20f,
                                -(1.0f + 0x1p-8f + 0x1p-20f),
                                0x1p-25f,
                                3 * 0x1p-26f,
                                0x1.8p-130f,
                                65520.0f,
                                65519.0f,
                                -1e30f,
                                3.40282347e38f,
                                INFINITY,
                                -INFINITY,
                                0.0f,
                                -0.0f};
  for (DType t : {DType::F16, DType::BF16}) {
    SCOPED_TRACE(detail::cat(t));
    Placed x = place_input(cpu, DType::F32, {static_cast<int64_t>(v.size())}, v);
    Placed out = place(cpu, t, x.view.shape(), 1, 1);
    ASSERT_OK(ops::cast(s, x.view, out.view));
    std::vector<float> want(v.size());
    for (size_t i = 0; i < v.size(); ++i) want[i] = static_cast<float>(round_dtype(t, v[i]));
    out.set_values(want);
    expect_storage(out, out.image);
  }
}

TEST(Elementwise, StepSlotIsReadWhenTheOpRuns) {
  // Captured ops read the slot at replay, so every replay sees the value set just before it.
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const auto vx = random_values(DType::F32, 31, seed);
  Placed x = place_input(cpu, DType::F32, {31}, vx);
  Placed y = place(cpu, DType::BF16, {31}, 0, 1);
  Placed z = place(cpu, DType::F32, {31}, 0, 1);
  ASSERT_OK(s.set_step_f32(3, 1000.0f));
  ASSERT_OK(s.begin_capture());
  ASSERT_OK(ops::add_scalar(s, x.view, Scalar::step(3), y.view));
  ASSERT_OK(ops::scale(s, y.view, Scalar::step(4), z.view));
  auto g = s.end_capture();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (auto [k3, k4] : {std::pair{0.5f, 2.0f}, std::pair{-3.25f, -0.125f}}) {
    ASSERT_OK(s.set_step_f32(3, k3));
    ASSERT_OK(s.set_step_f32(4, k4));
    ASSERT_OK(g->replay());
    ASSERT_OK(s.finish());
    std::vector<float> wy(31), wz(31);
    for (size_t i = 0; i < 31; ++i) {
      wy[i] = expected(DType::BF16, static_cast<double>(vx[i]) + k3);
      wz[i] = expected(DType::F32, static_cast<double>(wy[i]) * k4);
    }
    y.set_values(wy);
    z.set_values(wz);
    expect_storage(y, y.image);
    expect_storage(z, z.image);
  }
}

// ---- copies ----

struct CopyLayout {
  std::string name;
  Shape shape;
  std::optional<Strides> src_strides, dst_strides;  // contiguous when absent
  int64_t src_front = 0, dst_front = 0;
};

std::vector<CopyLayout> copy_layouts() {
  return {
      {"contiguous", {5, 31}, std::nullopt, std::nullopt, 3, 1},
      {"contiguous rank 1", {4097}, std::nullopt, std::nullopt, 0, 2},
      {"transposed src", {5, 31}, Strides{1, 5}, std::nullopt, 1, 0},
      {"transposed dst", {31, 5}, std::nullopt, Strides{1, 31}, 0, 1},
      {"column slice src", {5, 31}, Strides{40, 1}, std::nullopt, 43, 0},
      {"column slice dst", {5, 31}, std::nullopt, Strides{40, 1}, 0, 43},
      {"slices both sides", {6, 8}, Strides{10, 1}, Strides{12, 1}, 2, 4},
      {"broadcast read", {4, 31}, Strides{0, 1}, std::nullopt, 0, 0},
      {"permuted rank 4", {5, 4, 3, 2}, Strides{1, 5, 20, 60}, std::nullopt, 1, 1},
      {"rank 4 slices", {2, 3, 4, 6}, Strides{200, 50, 10, 1}, Strides{1, 2, 6, 24}, 5, 0},
      {"rank 8",
       {2, 2, 2, 2, 2, 2, 2, 3},
       Strides{1, 2, 4, 8, 16, 32, 64, 128},
       Strides{400, 200, 100, 50, 25, 12, 6, 2},
       0,
       3},
  };
}

TEST(Copy, SameDtypeIsABitCopyForEveryPlainDtype) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const DType plain[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I8, DType::U8,
                         DType::I16, DType::U16, DType::I32,  DType::U32, DType::I64};
  uint64_t k = 0;
  for (DType t : plain) {
    for (const auto& l : copy_layouts()) {
      SCOPED_TRACE(detail::cat(t, " ", l.name, " ", l.shape));
      const size_t es = dtype_size(t), n = static_cast<size_t>(l.shape.numel());
      const auto bytes = random_bytes(n * es, seed + k++);
      Placed src = place(cpu, t, l.shape, l.src_front, 2, l.src_strides);
      Placed dst = place(cpu, t, l.shape, l.dst_front, 2, l.dst_strides);
      for (size_t i = 0; i < n; ++i) src.set(static_cast<int64_t>(i), bytes.data() + i * es);
      src.upload();
      ASSERT_OK(ops::copy(s, src.view, dst.view));
      // A broadcast read repeats source elements: the expected value at i is what the view reads there.
      for (size_t i = 0; i < n; ++i) {
        const int64_t so = offset_of(l.shape, src.view.strides(), static_cast<int64_t>(i));
        dst.set(static_cast<int64_t>(i), src.image.data() + src.front_bytes + static_cast<size_t>(so) * es);
      }
      expect_storage(dst, dst.image);
      expect_storage(src, src.image);  // the source is untouched
    }
  }
}

TEST(Copy, ConvertsAmongFloatTypes) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  uint64_t k = 0;
  for (DType ts : test::float_dtypes())
    for (DType td : test::float_dtypes())
      for (const auto& l : copy_layouts()) {
        if (l.name == "broadcast read") continue;  // covered by the bit copies
        SCOPED_TRACE(detail::cat(ts, " -> ", td, " ", l.name, " ", l.shape));
        const auto v = random_values(ts, l.shape.numel(), seed + k++, 1000.0f);
        Placed src = place(cpu, ts, l.shape, l.src_front, 2, l.src_strides);
        src.set_values(v);
        src.upload();
        Placed dst = place(cpu, td, l.shape, l.dst_front, 2, l.dst_strides);
        ASSERT_OK(ops::copy(s, src.view, dst.view));
        std::vector<float> want(v.size());
        for (size_t i = 0; i < v.size(); ++i) want[i] = static_cast<float>(round_dtype(td, v[i]));
        dst.set_values(want);
        expect_storage(dst, dst.image);
      }
}

TEST(Copy, BlockTypesCopyFlat) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::MXFP4}) {
    SCOPED_TRACE(detail::cat(t));
    const int64_t cols = 2 * dtype_info(t).block_elems;
    const size_t bb = static_cast<size_t>(dtype_info(t).block_bytes), n_bytes = 3 * 2 * bb;
    auto src_all = cpu.alloc(DType::U8, {static_cast<int64_t>(n_bytes + bb)}).value();
    auto dst_all = cpu.alloc(DType::U8, {static_cast<int64_t>(n_bytes + 3 * bb)}).value();
    auto bytes = random_bytes(n_bytes + bb, seed);
    ASSERT_OK(src_all.upload(bytes.data(), bytes.size()));
    ASSERT_OK(dst_all.fill_bytes(0xFF));
    // Views one block into the source and two blocks into the destination.
    auto src = src_all.view(bb, t, {3, cols}).value();
    auto dst = dst_all.view(2 * bb, t, {3, cols}).value();
    ASSERT_OK(ops::copy(s, src, dst));
    std::vector<uint8_t> want(n_bytes + 3 * bb, 0xFF);
    std::memcpy(want.data() + 2 * bb, bytes.data() + bb, n_bytes);
    EXPECT_EQ(download_all(dst_all), want);
    auto to_f32 = cpu.alloc(DType::F32, {3, cols}).value();
    EXPECT_EQ(ops::copy(s, src, to_f32).code(), StatusCode::Unsupported);
  }
  auto q4 = cpu.alloc(DType::Q4_0, {32}).value(), q8 = cpu.alloc(DType::Q8_0, {32}).value();
  Status st = ops::copy(s, q4, q8);
  EXPECT_EQ(st.code(), StatusCode::Unsupported);
  EXPECT_EQ(st.message().rfind("[copy] cannot convert q4_0 to q8_0", 0), 0u) << st.message();
}

TEST(Elementwise, ZeroElementsAreNoOps) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  Placed a = place(cpu, DType::F32, {0, 5}, 0, 2), b = place(cpu, DType::BF16, {5}, 0, 2);
  Placed out = place(cpu, DType::F16, {0, 5}, 0, 2);
  ASSERT_OK(ops::add(s, a.view, b.view, out.view));
  ASSERT_OK(ops::scale(s, a.view, Scalar::of(2.0f), out.view));
  ASSERT_OK(ops::cast(s, a.view, out.view));
  ASSERT_OK(ops::copy(s, a.view, out.view));
  expect_storage(out, out.image);
}

// ---- errors ----

void expect_error(const Status& st, StatusCode code, std::string_view prefix, std::string_view part = {}) {
  EXPECT_EQ(st.code(), code) << st.to_string();
  EXPECT_EQ(st.message().rfind(prefix, 0), 0u) << st.message();
  if (!part.empty()) {
    EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
  }
}

TEST(Elementwise, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto a = cpu.alloc(DType::F32, {4, 5}).value();
  auto out = cpu.alloc(DType::BF16, {4, 5}).value();
  test::poison(out);

  Status st = ops::add(s, a, cpu.alloc(DType::F32, {3, 5}).value(), out);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_EQ(st.message(), "[add] b has shape [3, 5], which does not broadcast to a's [4, 5]");
  expect_error(ops::mul(s, a, cpu.alloc(DType::F32, {2, 4, 5}).value(), out), StatusCode::InvalidArgument,
               "[mul] b has shape [2, 4, 5]");
  expect_error(ops::add(s, a, a, cpu.alloc(DType::F32, {4, 4}).value()), StatusCode::InvalidArgument,
               "[add] out has shape [4, 4], expected a's [4, 5]");
  expect_error(ops::scale(s, a, Scalar::of(1.0f), cpu.alloc(DType::F32, {20}).value()), StatusCode::InvalidArgument,
               "[scale] out has shape [20]");

  // Unsupported dtypes.
  auto ai = cpu.alloc(DType::I32, {4, 5}).value();
  expect_error(ops::add(s, ai, a, out), StatusCode::Unsupported, "[add] a has dtype i32");
  expect_error(ops::mul(s, a, ai, out), StatusCode::Unsupported, "[mul] b has dtype i32");
  expect_error(ops::add_scalar(s, a, Scalar::of(1.0f), ai), StatusCode::Unsupported, "[add_scalar] out has dtype i32");
  expect_error(ops::cast(s, cpu.alloc(DType::F64, {4, 5}).value(), out), StatusCode::Unsupported,
               "[cast] x has dtype f64");
  expect_error(ops::copy(s, ai, a), StatusCode::Unsupported, "[copy] cannot convert i32 to f32");

  // Empty buffers.
  expect_error(ops::add(s, Buffer(), a, out), StatusCode::InvalidArgument, "[add] a is an empty buffer");
  expect_error(ops::mul(s, a, a, Buffer()), StatusCode::InvalidArgument, "[mul] out is an empty buffer");
  expect_error(ops::scale(s, Buffer(), Scalar::of(1.0f), out), StatusCode::InvalidArgument, "[scale] x is an empty");
  expect_error(ops::copy(s, a, Buffer()), StatusCode::InvalidArgument, "[copy] dst is an empty buffer");

  // Step-parameter slots out of range.
  expect_error(ops::scale(s, a, Scalar::step(kStepParamSlots), out), StatusCode::InvalidArgument,
               "[scale] step-parameter slot 64");
  expect_error(ops::add_scalar(s, a, Scalar{1.0f, -2}, out), StatusCode::InvalidArgument,
               "[add_scalar] step-parameter slot -2");

  // Non-contiguous operands of the elementwise ops.
  auto wide = cpu.alloc(DType::F32, {4, 8}).value();
  auto cols = wide.slice(1, 0, 5).value();
  expect_error(ops::add(s, cols, a, out), StatusCode::InvalidArgument, "[add] a must be contiguous");
  expect_error(ops::cast(s, a, cols), StatusCode::InvalidArgument, "[cast] out must be contiguous");

  // Partial overlaps: rows [0, 2) and [1, 3) of one allocation.
  auto big = cpu.alloc(DType::F32, {3, 5}).value();
  auto r01 = big.slice(0, 0, 2).value(), r12 = big.slice(0, 1, 2).value();
  auto two = cpu.alloc(DType::F32, {2, 5}).value();
  expect_error(ops::add(s, r01, two, r12), StatusCode::InvalidArgument, "[add] a and out overlap");
  expect_error(ops::mul(s, two, r01, r12), StatusCode::InvalidArgument, "[mul] b and out overlap");
  expect_error(ops::scale(s, r01, Scalar::of(2.0f), r12), StatusCode::InvalidArgument, "[scale] x and out overlap");
  expect_error(ops::copy(s, r01, r12), StatusCode::InvalidArgument, "[copy] src and dst overlap");
  // b is out's first row: it broadcasts, but the op would read what it has already written.
  auto row0 = big.slice(0, 0, 1).value().reshape({5}).value();
  auto all3 = big;
  expect_error(ops::add(s, cpu.alloc(DType::F32, {3, 5}).value(), row0, all3), StatusCode::InvalidArgument,
               "[add] b and out overlap");
  // The same bytes seen as another dtype are not "the same view".
  auto as_f16 = big.view(0, DType::F16, {3, 5}).value();
  expect_error(ops::cast(s, big.slice(0, 0, 1).value().reshape({5}).value(), as_f16.slice(0, 0, 1).value()),
               StatusCode::InvalidArgument, "[cast] out has shape");
  expect_error(ops::cast(s, big.view(0, DType::F32, {5}).value(), big.view(0, DType::F16, {5}).value()),
               StatusCode::InvalidArgument, "[cast] x and out overlap");

  // Copy: shapes must match; copying a view onto itself is allowed (nothing to do).
  expect_error(ops::copy(s, a, cpu.alloc(DType::F32, {5, 4}).value()), StatusCode::InvalidArgument,
               "[copy] dst has shape [5, 4], expected src's [4, 5]");
  EXPECT_TRUE(ops::copy(s, r01, r01).is_ok());
  auto transposed = big.view_strided(0, DType::F32, {5, 3}, Strides{1, 5}).value();
  EXPECT_TRUE(ops::copy(s, transposed, transposed).is_ok());

  // Nothing above wrote to out.
  for (float v : test::read_f32(out)) EXPECT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace mlxn
