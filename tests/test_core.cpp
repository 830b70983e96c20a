// Core types: Status/Result, DType, Shape, Buffer views and host copies, BufferPool, KernelRegistry.
#include <thread>

#include "test_util.h"

namespace mlxn {
namespace {

using test::fresh_seed;

TEST(Status, CarriesCodeAndMessage) {
  Status ok;
  EXPECT_TRUE(ok.is_ok());
  Status s = invalid_argument("rms_norm", "weight has ", 4095, " elements, expected ", 4096);
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::InvalidArgument);
  EXPECT_EQ(s.message(), "[rms_norm] weight has 4095 elements, expected 4096");
  EXPECT_EQ(s.to_string(), "InvalidArgument: [rms_norm] weight has 4095 elements, expected 4096");
}

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("parse", "not positive: ", v);
  return v;
}

Status use_try(int v, int* out) {
  MLXN_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *out = x * 2;
  return Status::ok();
}

TEST(Status, ResultAndMacros) {
  int out = 0;
  EXPECT_TRUE(use_try(3, &out).is_ok());
  EXPECT_EQ(out, 6);
  Status s = use_try(-1, &out);
  EXPECT_EQ(s.code(), StatusCode::InvalidArgument);
  EXPECT_NE(s.message().find("not positive: -1"), std::string::npos);
  Result<int> r = Status::ok();  // an ok Status is not a value: becomes an Internal error
  EXPECT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::Internal);
}

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::Q4_0), 0u);
  EXPECT_TRUE(is_quantized(DType::Q6_K));
  EXPECT_EQ(dtype_name(DType::Q4_K), "q4_K");
  EXPECT_EQ(dtype_from_name("bf16"), DType::BF16);
  EXPECT_FALSE(dtype_from_name("nope").has_value());
  for (int i = 0; i < static_cast<int>(DType::Count_); ++i) {
    const auto t = static_cast<DType>(i);
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t) << dtype_name(t);
  }
  EXPECT_EQ(dtype_storage_bytes(DType::Q4_0, 64).value(), 36u);
  EXPECT_EQ(dtype_storage_bytes(DType::Q4_K, 512).value(), 288u);
  EXPECT_EQ(dtype_storage_bytes(DType::Q4_0, 33).status().code(), StatusCode::InvalidArgument);
  EXPECT_FALSE(dtype_storage_bytes(DType::F64, INT64_MAX).is_ok());  // overflows size_t
}

TEST(Half, RoundTripsAndRounding) {
  // Every f16 bit pattern converts to f32 and back unchanged (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
      continue;
    }
    ASSERT_EQ(f32_to_f16(f), h) << h;
  }
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(f32_to_bf16(f), h) << h;
  }
  // Ties go to even; overflow goes to infinity; the smallest subnormal and half of it.
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), f32_to_f16(1.0f));
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), f32_to_f16(1.0f + 4.0f / 2048));
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);
  EXPECT_EQ(f32_to_f16(65519.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(5.9604644775390625e-8f), 1);
  EXPECT_EQ(f32_to_f16(2.98023223876953125e-8f), 0);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), f32_to_bf16(1.0f));
  // Against a double-precision reference on random values: the nearest representable value.
  std::mt19937 g(static_cast<uint32_t>(fresh_seed()));
  std::uniform_real_distribution<float> d(-70000.0f, 70000.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = d(g) * (i % 3 == 0 ? 1e-6f : 1.0f);
    const float r = f16_to_f32(f32_to_f16(v));
    if (std::isinf(r)) continue;
    const float up = f16_to_f32(static_cast<uint16_t>(f32_to_f16(v) + 1));
    const float dn = f16_to_f32(static_cast<uint16_t>(f32_to_f16(v) - 1));
    EXPECT_LE(std::abs(static_cast<double>(r) - v), std::abs(static_cast<double>(up) - v) + 1e-30);
    EXPECT_LE(std::abs(static_cast<double>(r) - v), std::abs(static_cast<double>(dn) - v) + 1e-30);
  }
}

TEST(Shape, Basics) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s.rows(), 6);
  EXPECT_EQ(s.back(), 4);
  EXPECT_EQ(s.to_string(), "[2, 3, 4]");
  EXPECT_EQ(Shape{}.numel(), 1);
  EXPECT_FALSE((Shape{-1, 2}.valid()));
  EXPECT_FALSE((Shape{1LL << 40, 1LL << 40}.valid()));
  EXPECT_FALSE((Shape{1, 2, 3, 4, 5, 6, 7, 8, 9}.valid()));
  auto st = contiguous_strides(s);
  EXPECT_EQ(st[0], 12);
  EXPECT_EQ(st[1], 4);
  EXPECT_EQ(st[2], 1);
}

TEST(Buffer, ViewsHonourOffsets) {
  Device cpu = Device::cpu();
  auto whole = cpu.alloc(DType::F32, {16}).value();
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(i);
  ASSERT_TRUE(whole.upload(v.data(), 64).is_ok());

  auto mid = whole.view(4 * 4, DType::F32, {2, 3}).value();  // elements 4..9
  EXPECT_EQ(mid.byte_offset(), 16u);
  EXPECT_EQ(mid.nbytes(), 24u);
  EXPECT_EQ(mid.data_as<float>()[0], 4.0f);
  std::vector<float> got(6);
  ASSERT_TRUE(mid.download(got.data(), 24).is_ok());
  EXPECT_EQ(got, (std::vector<float>{4, 5, 6, 7, 8, 9}));
  // A view of a view adds offsets.
  auto inner = mid.view(8, DType::F32, {2}).value();
  EXPECT_EQ(inner.byte_offset(), 24u);
  float two[2];
  ASSERT_TRUE(inner.download(two, 8).is_ok());
  EXPECT_EQ(two[0], 6.0f);
  EXPECT_EQ(two[1], 7.0f);
  // Upload through a view writes only its bytes.
  const float w[2] = {-1.0f, -2.0f};
  ASSERT_TRUE(inner.upload(w, 8).is_ok());
  ASSERT_TRUE(whole.download(v.data(), 64).is_ok());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(v[i], i == 6 ? -1.0f : i == 7 ? -2.0f : static_cast<float>(i));
  // Ranges for hazard tracking follow the view.
  EXPECT_EQ(inner.range().begin, 24u);
  EXPECT_EQ(inner.range().end, 32u);
  EXPECT_EQ(inner.range().storage, whole.range().storage);
  // Slices and reshapes.
  auto m = whole.view(0, DType::F32, {4, 4}).value();
  auto rows = m.slice(0, 1, 2).value();
  EXPECT_EQ(rows.byte_offset(), 16u);
  EXPECT_EQ(rows.shape(), (Shape{2, 4}));
  auto cols = m.slice(1, 1, 2).value();
  EXPECT_FALSE(cols.is_contiguous());
  EXPECT_EQ(cols.byte_offset(), 4u);
  EXPECT_EQ(cols.nbytes(), (3 * 4 + 2) * 4u);
  EXPECT_TRUE(m.reshape({2, 8}).is_ok());
  EXPECT_FALSE(cols.reshape({4}).is_ok());
}

TEST(Buffer, ErrorPaths) {
  Device cpu = Device::cpu();
  auto b = cpu.alloc(DType::F32, {8}).value();
  auto past = b.view(4, DType::F32, {8});
  EXPECT_EQ(past.status().code(), StatusCode::OutOfRange);
  EXPECT_NE(past.status().message().find("[view]"), std::string::npos);
  EXPECT_EQ(b.view(SIZE_MAX - 2, DType::F32, {1}).status().code(), StatusCode::OutOfRange);  // offset overflow
  EXPECT_EQ(b.view(2, DType::F32, {1}).status().code(), StatusCode::InvalidArgument);        // misaligned
  EXPECT_FALSE(b.view(0, DType::F32, {-1}).is_ok());
  Strides st{};
  st[0] = 4;
  EXPECT_EQ(b.view_strided(0, DType::F32, {3}, st).status().code(), StatusCode::OutOfRange);  // reaches element 8
  st[0] = 3;
  EXPECT_TRUE(b.view_strided(4, DType::F32, {3}, st).is_ok());  // elements 1, 4, 7
  st[0] = -1;
  EXPECT_FALSE(b.view_strided(0, DType::F32, {3}, st).is_ok());
  float host[8];
  EXPECT_EQ(b.upload(host, 16).code(), StatusCode::InvalidArgument);  // wrong size
  EXPECT_EQ(b.download(host, 40).code(), StatusCode::InvalidArgument);
  EXPECT_EQ(b.slice(0, 6, 4).status().code(), StatusCode::OutOfRange);
  EXPECT_FALSE(b.slice(1, 0, 1).is_ok());
  EXPECT_FALSE(Buffer().view(0, DType::F32, {1}).is_ok());
  EXPECT_EQ(cpu.alloc(DType::Q4_0, {3, 33}).status().code(), StatusCode::InvalidArgument);
  auto q = cpu.alloc(DType::Q4_0, {4, 64}).value();
  EXPECT_EQ(q.nbytes(), 4u * 36u);
  auto q_rows = q.slice(0, 1, 2).value();
  EXPECT_EQ(q_rows.byte_offset(), 36u);
  EXPECT_FALSE(q.slice(1, 0, 32).is_ok());
  EXPECT_EQ(Device::open(Backend::Cpu, 1).status().code(), StatusCode::InvalidArgument);
}

TEST(Buffer, WrapKeepsOwnerAlive) {
  auto owner = std::make_shared<std::vector<float>>(10, 3.0f);
  std::weak_ptr<std::vector<float>> weak = owner;
  Buffer b;
  {
    auto r = Buffer::wrap(Device::cpu(), owner->data(), 40, DType::F32, {2, 5}, owner);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    b = r.value();
    owner.reset();
  }
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(b.data_as<float>()[9], 3.0f);
  b = Buffer();
  EXPECT_TRUE(weak.expired());
}

TEST(BufferPool, BucketsReuseAndReset) {
  EXPECT_EQ(BufferPool::bucket_bytes(1), 256u);
  EXPECT_EQ(BufferPool::bucket_bytes(1024), 1024u);
  EXPECT_EQ(BufferPool::bucket_bytes(1025), 1280u);
  EXPECT_EQ(BufferPool::bucket_bytes(1600), 1792u);
  for (size_t n = 257; n < 100000; n += 977) {
    const size_t b = BufferPool::bucket_bytes(n);
    EXPECT_GE(b, n);
    EXPECT_LE(static_cast<double>(b), n * 1.25 + 1);
  }
  BufferPool pool(Device::cpu());
  void* first_ptr = nullptr;
  {
    auto a = pool.alloc(DType::F32, {1000}).value();
    first_ptr = a.data();
    auto b = pool.alloc(DType::F32, {1000}).value();
    EXPECT_NE(a.data(), b.data());
    EXPECT_EQ(pool.stats().in_use_buffers, 2u);
  }
  pool.reset();
  auto st = pool.stats();
  EXPECT_EQ(st.in_use_buffers, 0u);
  EXPECT_EQ(st.free_buffers, 2u);
  EXPECT_EQ(st.device_allocs, 2u);
  // Same bucket: served from the free list.
  auto c = pool.alloc(DType::BF16, {2000}).value();
  EXPECT_TRUE(c.data() == first_ptr || pool.stats().reuses == 1);
  EXPECT_EQ(pool.stats().reuses, 1u);
  // A live handle keeps its buffer out of reset.
  pool.reset();
  EXPECT_EQ(pool.stats().held_at_reset, 1u);
  EXPECT_EQ(pool.stats().in_use_buffers, 1u);
  ASSERT_TRUE(pool.release(c).is_ok());
  EXPECT_EQ(pool.release(c).code(), StatusCode::InvalidArgument);  // double release
  EXPECT_EQ(pool.stats().in_use_buffers, 0u);
  pool.trim();
  EXPECT_EQ(pool.stats().bytes_reserved, 0u);
  EXPECT_EQ(pool.stats().free_buffers, 0u);
}

TEST(BufferPool, ThreadSafe) {
  BufferPool pool(Device::cpu());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto b = pool.alloc(DType::F32, {static_cast<int64_t>(64 + (i % 7) * 100 + t)});
        if (!b.is_ok()) {
          ++failures;
          continue;
        }
        // Write a pattern and check nobody else wrote into this buffer meanwhile.
        float* p = b->data_as<float>();
        const int64_t n = b->numel();
        for (int64_t k = 0; k < n; ++k) p[k] = static_cast<float>(t * 1000 + i);
        for (int64_t k = 0; k < n; ++k)
          if (p[k] != static_cast<float>(t * 1000 + i)) ++failures;
        if (!pool.release(*b).is_ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const auto st = pool.stats();
  EXPECT_EQ(st.allocations, 800u);
  EXPECT_EQ(st.in_use_buffers, 0u);
  EXPECT_GT(st.reuses, 700u);
}

TEST(KernelRegistry, SupportsAndRequire) {
  KernelRegistry r;
  r.add("rms_norm", KernelRegistry::key({DType::BF16, DType::BF16, DType::BF16}));
  EXPECT_TRUE(r.supports("rms_norm", "bf16.bf16.bf16"));
  EXPECT_FALSE(r.supports("rms_norm", "f32.f32.f32"));
  Status s = r.require("rms_norm", "f32.f32.f32");
  EXPECT_EQ(s.code(), StatusCode::Unsupported);
  EXPECT_NE(s.message().find("bf16.bf16.bf16"), std::string::npos);
  EXPECT_EQ(r.require("nope", "x").code(), StatusCode::Unsupported);
  int calls = 0;
  int tag = 0;
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(r.once(&tag, 100, [&] {
                   ++calls;
                   return Status::ok();
                 }).is_ok());
  EXPECT_EQ(calls, 1);
  // The CPU device lists every op it runs.
  Device cpu_dev = Device::cpu();
  const auto& cpu = cpu_dev.kernels();
  EXPECT_TRUE(cpu.supports("rms_norm", "f16.f32.bf16"));
  EXPECT_TRUE(cpu.supports("copy", "q4_K.q4_K"));
}

TEST(Device, OpenAndProperties) {
  Device cpu = Device::cpu();
  EXPECT_EQ(cpu.backend(), Backend::Cpu);
  EXPECT_GE(cpu.properties().multiprocessor_count, 1);
  EXPECT_EQ(Device::cpu(), cpu);
  Device best = Device::best();
  if (Device::cuda_device_count() == 0) {
    EXPECT_EQ(best.backend(), Backend::Cpu);
    auto r = Device::open(Backend::Cuda, 0);
    EXPECT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("[device]"), std::string::npos);
  } else {
    EXPECT_EQ(best.backend(), Backend::Cuda);
  }
}

}  // namespace
}  // namespace mlxn
