// Elementwise ops and copies on CUDA against the CPU backend on the same inputs: every dtype combination, odd and
// large sizes (vector, scalar and broadcast paths, grid-stride loops), views at offsets that break 16-byte alignment,
// strided copies, in place, step-parameter scalars in a captured graph, and registry / dispatch agreement.
// Every output lives in poisoned storage; the bytes around it must come back as poison on both backends.
#include <cstring>
#include <functional>
#include <optional>
#include <random>

#include "test_util.h"

namespace mlxn {
namespace {

#define ASSERT_OK(expr)                          \
  do {                                           \
    const ::mlxn::Status st_ = (expr);           \
    ASSERT_TRUE(st_.is_ok()) << st_.to_string(); \
  } while (0)

int64_t offset_of(const Shape& shape, const Strides& strides, int64_t i) {
  int64_t off = 0;
  for (int d = shape.rank() - 1; d >= 0; --d) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

// Where a view sits in its storage: `front` elements in, contiguous or with `strides`, `back` spare elements after.
struct Layout {
  Shape shape;
  int64_t front = 0;
  std::optional<Strides> strides = std::nullopt;
  int64_t back = 2;
};

// A host image of a poisoned storage holding one view; the same image is placed on each device.
struct Image {
  DType t = DType::F32;
  Layout layout;
  size_t front_bytes = 0;
  std::vector<uint8_t> bytes;

  Image(DType dtype, Layout l) : t(dtype), layout(std::move(l)) {
    const Strides st = strides();
    int64_t extent = layout.shape.numel() == 0 ? 0 : 1;
    for (int d = 0; d < layout.shape.rank(); ++d) extent += (layout.shape[d] - 1) * st[d];
    front_bytes = static_cast<size_t>(layout.front) * dtype_size(t);
    bytes.assign(static_cast<size_t>(layout.front + extent + layout.back) * dtype_size(t), 0xFF);
  }
  Strides strides() const { return layout.strides ? *layout.strides : contiguous_strides(layout.shape); }
  size_t elem_pos(int64_t i) const {
    return front_bytes + static_cast<size_t>(offset_of(layout.shape, strides(), i)) * dtype_size(t);
  }
  void set_values(const std::vector<float>& v) {
    const auto b = test::to_bytes(t, v);
    for (size_t i = 0; i < v.size(); ++i)
      std::memcpy(bytes.data() + elem_pos(static_cast<int64_t>(i)), b.data() + i * dtype_size(t), dtype_size(t));
  }
  void set_random_bits(uint64_t seed) {
    std::mt19937_64 g(seed);
    for (int64_t i = 0; i < layout.shape.numel(); ++i) {
      const uint64_t r = g();
      std::memcpy(bytes.data() + elem_pos(i), &r, dtype_size(t));
    }
  }
};

// An image uploaded to a device: the storage and the view into it.
struct Placed {
  Buffer whole, view;
};

Placed place(const Device& dev, const Image& img) {
  Placed p;
  p.whole = dev.alloc(DType::U8, {static_cast<int64_t>(img.bytes.size())}).value();
  EXPECT_TRUE(p.whole.upload(img.bytes.data(), img.bytes.size()).is_ok());
  p.view = p.whole.view_strided(img.front_bytes, img.t, img.layout.shape, img.strides()).value();
  return p;
}

std::vector<uint8_t> download_all(const Buffer& whole) {
  std::vector<uint8_t> bytes(whole.nbytes());
  EXPECT_TRUE(whole.download(bytes.data(), bytes.size()).is_ok());
  return bytes;
}

// The output storage after an op ran on `dev`, or nothing if the op failed.
using Recorder = std::function<Status(Session&, const std::vector<Placed>&)>;

std::optional<std::vector<uint8_t>> run_on(const Device& dev, const std::vector<Image>& images, size_t out_index,
                                           const Recorder& record) {
  auto s = Session::create(dev).value();
  std::vector<Placed> placed;
  for (const auto& img : images) placed.push_back(place(dev, img));
  Status st = record(s, placed);
  if (st.is_ok()) st = s.finish();
  EXPECT_TRUE(st.is_ok()) << dev.properties().name << ": " << st.to_string();
  if (!st.is_ok()) return std::nullopt;
  return download_all(placed[out_index].whole);
}

// Compares the output storage of both backends: the bytes outside the (contiguous) output view exactly, the view's
// values exactly (copies, casts) or within one rounding of the output dtype (arithmetic).
void expect_same(const Image& out, const std::vector<uint8_t>& gpu, const std::vector<uint8_t>& cpu, bool exact) {
  ASSERT_EQ(gpu.size(), cpu.size());
  if (exact) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < gpu.size(); ++i)
      if (gpu[i] != cpu[i] && bad++ == 0) first = i;
    EXPECT_EQ(bad, 0u) << "bytes differ, the first at " << first << " (view at byte " << out.front_bytes << ")";
    return;
  }
  const size_t begin = out.front_bytes, end = begin + static_cast<size_t>(out.layout.shape.numel()) * dtype_size(out.t);
  for (size_t i = 0; i < gpu.size(); ++i) {
    if (i >= begin && i < end) continue;
    ASSERT_EQ(gpu[i], 0xFF) << "CUDA wrote outside the view, at byte " << i;
    ASSERT_EQ(cpu[i], 0xFF) << "the CPU wrote outside the view, at byte " << i;
  }
  const auto g = test::from_bytes(
      out.t, std::vector<uint8_t>(gpu.begin() + static_cast<long>(begin), gpu.begin() + static_cast<long>(end)));
  const auto c = test::from_bytes(
      out.t, std::vector<uint8_t>(cpu.begin() + static_cast<long>(begin), cpu.begin() + static_cast<long>(end)));
  EXPECT_LE(test::max_scaled_err(g, c, 1e-6, test::rtol_for(out.t)), 1.0);
}

void compare(const Device& gpu, const std::vector<Image>& images, size_t out_index, bool exact,
             const Recorder& record) {
  auto c = run_on(Device::cpu(), images, out_index, record);
  auto g = run_on(gpu, images, out_index, record);
  ASSERT_TRUE(c && g);
  expect_same(images[out_index], *g, *c, exact);
}

std::vector<float> random_values(DType t, int64_t n, uint64_t seed) {
  return test::rounded(t, test::randn(static_cast<size_t>(n), seed));
}

Image input(DType t, Layout l, uint64_t seed) {
  Image img(t, std::move(l));
  img.set_values(random_values(t, img.layout.shape.numel(), seed));
  return img;
}

// ---- binary ops ----

enum class InPlace { None, OutIsA, OutIsB };

struct BinaryCase {
  bool add;
  DType ta, tb, tout;
  Shape sa, sb;
  int64_t front_a = 0, front_b = 0, front_out = 0;
  InPlace in_place = InPlace::None;
};

void check_binary(const Device& gpu, const BinaryCase& c, uint64_t seed) {
  SCOPED_TRACE(detail::cat(c.add ? "add " : "mul ", c.ta, ".", c.tb, ".", c.tout, " a", c.sa, "+", c.front_a, " b",
                           c.sb, "+", c.front_b, " out+", c.front_out, " in place ", static_cast<int>(c.in_place)));
  std::vector<Image> imgs = {input(c.ta, {c.sa, c.front_a}, seed), input(c.tb, {c.sb, c.front_b}, seed + 1),
                             Image(c.tout, {c.sa, c.front_out, std::nullopt, 5})};
  const size_t out = c.in_place == InPlace::OutIsA ? 0 : c.in_place == InPlace::OutIsB ? 1 : 2;
  compare(gpu, imgs, out, false, [&](Session& s, const std::vector<Placed>& p) {
    return c.add ? ops::add(s, p[0].view, p[1].view, p[out].view) : ops::mul(s, p[0].view, p[1].view, p[out].view);
  });
}

TEST(GpuElementwise, BinaryEveryDtypeCombination) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  // Element offsets: 0 keeps 16-byte alignment (vector path), 1 breaks it (scalar path).
  const std::vector<Shape> shapes = {{1}, {7}, {8}, {31}, {4097}, {3, 4097}, {2, 3, 5, 7}};
  int i = 0;
  for (const Shape& shape : shapes)
    for (DType ta : test::float_dtypes())
      for (DType tb : test::float_dtypes())
        for (DType tout : test::float_dtypes()) {
          const int64_t off = (i % 5 == 4) ? 1 : 0;
          check_binary(gpu, {i % 2 == 0, ta, tb, tout, shape, shape, off, 0, i % 7 == 6 ? 1 : 0}, seed + i);
          ++i;
        }
}

TEST(GpuElementwise, BinaryLarge) {
  // Enough elements for several grid-stride steps of every path.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const DType bf = DType::BF16, f32 = DType::F32, f16 = DType::F16;
  check_binary(gpu, {true, bf, bf, bf, {2304, 4096}, {2304, 4096}}, seed);
  check_binary(gpu, {false, f32, bf, f16, {2304, 4097}, {2304, 4097}}, seed);
  check_binary(gpu, {true, bf, bf, bf, {2304, 4096}, {2304, 4096}, 1, 0, 1}, seed);  // unaligned: scalar path
  check_binary(gpu, {true, bf, f32, bf, {2304, 4096}, {4096}}, seed);                // bias row
  check_binary(gpu, {false, f32, f32, f32, {2304, 4096}, {2304, 1}}, seed);          // per-row scale
}

TEST(GpuElementwise, BinaryBroadcast) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  struct Bc {
    Shape a, b;
  };
  const std::vector<Bc> cases = {
      {{4, 5}, {5}},         {{4, 5}, {4, 1}},
      {{4099}, {1}},         {{4, 5}, {1, 1}},
      {{300, 4096}, {4096}}, {{300, 4096}, {1, 4096}},
      {{33, 4097}, {4097}},  {{33, 4097}, {33, 1}},
      {{1000, 3}, {3}},      {{1000, 5}, {1000, 1}},
      {{64, 1024}, {64, 1}}, {{16, 33, 64}, {16, 1, 64}},
      {{7, 9, 11}, {9, 1}},  {{2, 3, 4, 5}, {3, 1, 5}},
      {{2, 1, 31}, {31}},    {{2, 2, 2, 2, 2, 2, 2, 24}, {2, 1, 2, 1, 2, 1, 24}},
  };
  const auto f = test::float_dtypes();
  int i = 0;
  for (const auto& c : cases) {
    for (int variant = 0; variant < 3; ++variant) {
      // Aligned; a and out unaligned; b unaligned.
      const int64_t fa = variant == 1 ? 1 : 0, fb = variant == 2 ? 1 : 0;
      check_binary(gpu, {i % 2 == 0, f[i % 3], f[(i / 3) % 3], f[(i / 9) % 3], c.a, c.b, fa, fb, fa}, seed + i);
      ++i;
    }
  }
}

TEST(GpuElementwise, BinaryInPlace) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : test::float_dtypes()) {
    for (int64_t front : {0, 1}) {
      check_binary(gpu, {true, t, t, t, {3, 4097}, {3, 4097}, front, 0, 0, InPlace::OutIsA}, seed);
      check_binary(gpu, {false, t, t, t, {3, 4097}, {3, 4097}, 0, front, 0, InPlace::OutIsB}, seed);
      check_binary(gpu, {true, t, DType::F32, t, {33, 512}, {512}, front, 0, 0, InPlace::OutIsA}, seed);
    }
  }
}

// ---- unary ops ----

enum class Un { Scale, AddScalar, Cast };

struct UnaryCase {
  Un op;
  DType tx, tout;
  Shape shape;
  Scalar k;
  float slot_value = 0.0f;
  int64_t front_x = 0, front_out = 0;
  bool in_place = false;
};

void check_unary(const Device& gpu, const UnaryCase& c, uint64_t seed) {
  SCOPED_TRACE(detail::cat(c.op == Un::Scale       ? "scale "
                           : c.op == Un::AddScalar ? "add_scalar "
                                                   : "cast ",
                           c.tx, ".", c.tout, " ", c.shape, " x+", c.front_x, " out+", c.front_out, " slot ",
                           c.k.step_slot, c.in_place ? " in place" : ""));
  std::vector<Image> imgs = {input(c.tx, {c.shape, c.front_x}, seed), Image(c.tout, {c.shape, c.front_out})};
  const size_t out = c.in_place ? 0 : 1;
  compare(gpu, imgs, out, c.op == Un::Cast, [&](Session& s, const std::vector<Placed>& p) -> Status {
    if (c.k.step_slot >= 0) MLXN_TRY(s.set_step_f32(c.k.step_slot, c.slot_value));
    switch (c.op) {
      case Un::Scale:
        return ops::scale(s, p[0].view, c.k, p[out].view);
      case Un::AddScalar:
        return ops::add_scalar(s, p[0].view, c.k, p[out].view);
      case Un::Cast:
        return ops::cast(s, p[0].view, p[out].view);
    }
    return Status::ok();
  });
}

TEST(GpuElementwise, UnaryEveryDtypePair) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const std::vector<Shape> shapes = {{1}, {7}, {31}, {4097}, {3, 4097}, {2, 3, 5, 7}};
  int i = 0;
  for (const Shape& shape : shapes)
    for (DType tx : test::float_dtypes())
      for (DType tout : test::float_dtypes()) {
        const int64_t fx = i % 4 == 3 ? 1 : 0, fo = i % 5 == 4 ? 1 : 0;
        check_unary(gpu, {Un::Cast, tx, tout, shape, Scalar{}, 0.0f, fx, fo}, seed + i);
        check_unary(gpu, {Un::Scale, tx, tout, shape, Scalar::of(-0.37f), 0.0f, fx, fo}, seed + i);
        check_unary(gpu, {Un::AddScalar, tx, tout, shape, Scalar::of(2.5f), 0.0f, fx, fo}, seed + i);
        check_unary(gpu, {Un::Scale, tx, tout, shape, Scalar::step(7), 1.75f, fx, fo}, seed + i);
        check_unary(gpu, {Un::AddScalar, tx, tout, shape, Scalar::step(kStepParamSlots - 1), -9.5f, fx, fo}, seed + i);
        ++i;
      }
}

TEST(GpuElementwise, UnaryLargeAndInPlace) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const DType bf = DType::BF16, f32 = DType::F32, f16 = DType::F16;
  check_unary(gpu, {Un::Scale, bf, bf, {2304, 4096}, Scalar::of(0.5f)}, seed);
  check_unary(gpu, {Un::Cast, f32, bf, {2304, 4097}, Scalar{}}, seed);
  check_unary(gpu, {Un::AddScalar, f16, f32, {2304, 4096}, Scalar::step(0), 3.0f, 1, 0}, seed);
  for (DType t : test::float_dtypes()) {
    check_unary(gpu, {Un::Scale, t, t, {3, 4097}, Scalar::of(3.0f), 0.0f, 0, 0, true}, seed);
    check_unary(gpu, {Un::AddScalar, t, t, {3, 4097}, Scalar::step(1), -1.0f, 1, 0, true}, seed);
    check_unary(gpu, {Un::Cast, t, t, {3, 4097}, Scalar{}, 0.0f, 1, 0, true}, seed);
  }
}

TEST(GpuElementwise, StepSlotChangesGraphReplays) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const int64_t n = 4097;
  const auto vx = random_values(DType::F32, n, seed);
  auto x = test::make_buffer(gpu, DType::F32, {n}, vx);
  auto y = gpu.alloc(DType::F32, {n}).value();
  test::poison(y);
  auto s = Session::create(gpu).value();
  ASSERT_OK(s.set_step_f32(2, 100.0f));
  ASSERT_OK(s.begin_capture());
  ASSERT_OK(ops::add_scalar(s, x, Scalar::step(2), y));
  auto g = s.end_capture();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  for (float k : {1.5f, -2.25f, 1e4f}) {
    ASSERT_OK(s.set_step_f32(2, k));
    ASSERT_OK(g->replay());
    ASSERT_OK(s.finish());
    const auto got = test::read_f32(y);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(got[static_cast<size_t>(i)], vx[static_cast<size_t>(i)] + k) << "k " << k << " at " << i;
  }
}

// ---- copies ----

struct CopyCase {
  std::string name;
  Shape shape;
  std::optional<Strides> src_strides, dst_strides;
  int64_t src_front = 0, dst_front = 0;
  bool large = false;
};

std::vector<CopyCase> copy_cases() {
  return {
      {"contiguous", {5, 31}, std::nullopt, std::nullopt, 3, 1},
      {"contiguous aligned", {3, 4096}, std::nullopt, std::nullopt, 0, 0},
      {"contiguous large", {2048, 4100}, std::nullopt, std::nullopt, 0, 8, true},
      {"transposed src", {5, 31}, Strides{1, 5}, std::nullopt, 1, 0},
      {"transposed dst", {31, 5}, std::nullopt, Strides{1, 31}, 0, 1},
      {"transposed large", {1024, 2050}, Strides{1, 1024}, std::nullopt, 0, 0, true},
      {"column slice src", {5, 31}, Strides{40, 1}, std::nullopt, 43, 0},
      {"column slice dst", {5, 31}, std::nullopt, Strides{40, 1}, 0, 43},
      {"row slices, even widths", {64, 256}, Strides{512, 1}, Strides{264, 1}, 512, 8},
      {"row slices, unaligned", {64, 256}, Strides{512, 1}, Strides{264, 1}, 513, 9},
      {"row slices, odd widths", {64, 255}, Strides{512, 1}, Strides{264, 1}, 0, 0},
      {"large slices", {4096, 1024}, Strides{2048, 1}, std::nullopt, 1024, 0, true},
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

TEST(GpuCopy, SameDtypeEveryPlainDtype) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  const DType plain[] = {DType::F32, DType::F16, DType::BF16, DType::F64, DType::I8, DType::U8,
                         DType::I16, DType::U16, DType::I32,  DType::U32, DType::I64};
  uint64_t k = 0;
  for (DType t : plain) {
    for (const auto& c : copy_cases()) {
      SCOPED_TRACE(detail::cat(t, " ", c.name, " ", c.shape));
      Image src(t, {c.shape, c.src_front, c.src_strides});
      src.set_random_bits(seed + k++);
      std::vector<Image> imgs = {src, Image(t, {c.shape, c.dst_front, c.dst_strides})};
      compare(gpu, imgs, 1, true,
              [](Session& s, const std::vector<Placed>& p) { return ops::copy(s, p[0].view, p[1].view); });
    }
  }
}

TEST(GpuCopy, ConvertsAmongFloatTypes) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  uint64_t k = 0;
  for (DType ts : test::float_dtypes())
    for (DType td : test::float_dtypes())
      for (const auto& c : copy_cases()) {
        if (c.large && ts != DType::F32 && td != DType::F32) continue;  // the f32 pairs cover the large paths
        SCOPED_TRACE(detail::cat(ts, " -> ", td, " ", c.name, " ", c.shape));
        Image src(ts, {c.shape, c.src_front, c.src_strides});
        auto v = random_values(ts, c.shape.numel(), seed + k++);
        for (auto& x : v) x = test::round_to(ts, x * 3000.0f);  // some overflow f16
        src.set_values(v);
        std::vector<Image> imgs = {src, Image(td, {c.shape, c.dst_front, c.dst_strides})};
        compare(gpu, imgs, 1, true,
                [](Session& s, const std::vector<Placed>& p) { return ops::copy(s, p[0].view, p[1].view); });
      }
}

TEST(GpuCopy, BlockTypesCopyFlat) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::MXFP4}) {
    SCOPED_TRACE(detail::cat(t));
    const int64_t cols = 4 * dtype_info(t).block_elems;
    const auto bb = static_cast<size_t>(dtype_info(t).block_bytes);
    // Raw bytes images (U8) seen as block views one block in.
    Image src(DType::U8, {{static_cast<int64_t>(bb * 4 * 33)}, static_cast<int64_t>(bb)});
    src.set_random_bits(seed);
    std::vector<Image> imgs = {src, Image(DType::U8, {{static_cast<int64_t>(bb * 4 * 33)}, static_cast<int64_t>(bb)})};
    compare(gpu, imgs, 1, true, [&](Session& s, const std::vector<Placed>& p) -> Status {
      MLXN_ASSIGN_OR_RETURN(Buffer a, p[0].whole.view(bb, t, {33, cols}));
      MLXN_ASSIGN_OR_RETURN(Buffer b, p[1].whole.view(bb, t, {33, cols}));
      return ops::copy(s, a, b);
    });
  }
}

// ---- registry ----

TEST(GpuElementwise, RegistryAgreesWithDispatch) {
  // Every variant the CPU backend has, this build lists too (all sets build them), and each listed one runs.
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  std::vector<Buffer> keep;  // alive until the session has finished
  auto zeros = [&](DType t, const Shape& shape) {
    auto b = gpu.alloc(t, shape).value();
    EXPECT_TRUE(b.fill_bytes(0).is_ok());
    keep.push_back(b);
    return b;
  };
  const auto f = test::float_dtypes();
  for (DType ta : f)
    for (DType tb : f)
      for (DType to : f) {
        const std::string key = KernelRegistry::key({ta, tb, to});
        EXPECT_TRUE(gpu.kernels().supports("add", key)) << key;
        EXPECT_TRUE(gpu.kernels().supports("mul", key)) << key;
        EXPECT_TRUE(ops::add(s, zeros(ta, {2, 40}), zeros(tb, {40}), zeros(to, {2, 40})).is_ok()) << key;
        EXPECT_TRUE(ops::mul(s, zeros(ta, {2, 40}), zeros(tb, {2, 40}), zeros(to, {2, 40})).is_ok()) << key;
      }
  for (DType tx : f)
    for (DType to : f) {
      const std::string key = KernelRegistry::key({tx, to});
      for (const char* op : {"scale", "add_scalar", "cast", "copy"}) EXPECT_TRUE(gpu.kernels().supports(op, key)) << op;
      EXPECT_TRUE(ops::scale(s, zeros(tx, {40}), Scalar::of(2.0f), zeros(to, {40})).is_ok()) << key;
      EXPECT_TRUE(ops::add_scalar(s, zeros(tx, {40}), Scalar::step(0), zeros(to, {40})).is_ok()) << key;
      EXPECT_TRUE(ops::cast(s, zeros(tx, {40}), zeros(to, {40})).is_ok()) << key;
      EXPECT_TRUE(ops::copy(s, zeros(tx, {40}), zeros(to, {40})).is_ok()) << key;
    }
  for (int i = 0; i < static_cast<int>(DType::Count_); ++i) {
    const auto t = static_cast<DType>(i);
    EXPECT_TRUE(gpu.kernels().supports("copy", KernelRegistry::key({t, t}))) << t;
    const Shape shape{2, dtype_info(t).block_elems};
    EXPECT_TRUE(ops::copy(s, zeros(t, shape), zeros(t, shape)).is_ok()) << t;
  }
  // Conversions outside f32 / f16 / bf16 are not variants of either backend.
  EXPECT_EQ(ops::copy(s, zeros(DType::I32, {4}), zeros(DType::F32, {4})).code(), StatusCode::Unsupported);
  ASSERT_OK(s.finish());
}

}  // namespace
}  // namespace mlxn
