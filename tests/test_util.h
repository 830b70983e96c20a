// Shared test helpers: fresh random data, host <-> dtype conversions, poisoned outputs, error measures.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mlxn/mlxn.h"

namespace mlxn::test {

// A fresh seed per call (printed by the tests through SCOPED_TRACE so a failure can be replayed with
// MLXN_TEST_SEED=<seed>).
inline uint64_t fresh_seed() {
  if (const char* s = std::getenv("MLXN_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  static std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// A fresh directory under the system temp folder, removed with everything in it at scope exit. Named from a random
// device draw and a per-process counter (not fresh_seed(), which MLXN_TEST_SEED pins: two directories of one test
// must not coincide).
struct TmpDir {
  std::filesystem::path path;
  TmpDir() {
    static std::atomic<uint64_t> counter{0};
    static std::random_device rd;
    const uint64_t tag = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    path = std::filesystem::temp_directory_path() /
           ("mlxn_test_" + std::to_string(tag) + "_" + std::to_string(counter.fetch_add(1)));
    std::filesystem::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TmpDir(const TmpDir&) = delete;
  TmpDir& operator=(const TmpDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline std::vector<float> randn(size_t n, uint64_t seed, float stddev = 1.0f, float mean = 0.0f) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

// Values rounded to what `t` can hold, so a reference computed from them sees exactly the device's inputs.
inline float round_to(DType t, float v) {
  if (t == DType::F16) return f16_to_f32(f32_to_f16(v));
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(v));
  return v;
}
inline std::vector<float> rounded(DType t, std::vector<float> v) {
  for (auto& x : v) x = round_to(t, x);
  return v;
}

inline std::vector<uint8_t> to_bytes(DType t, const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * dtype_size(t));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::F32) {
      std::memcpy(out.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = t == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

inline std::vector<float> from_bytes(DType t, const std::vector<uint8_t>& b) {
  const size_t es = dtype_size(t);
  std::vector<float> out(b.size() / es);
  for (size_t i = 0; i < out.size(); ++i) {
    if (t == DType::F32) {
      std::memcpy(&out[i], b.data() + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, b.data() + 2 * i, 2);
      out[i] = t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
  }
  return out;
}

// A contiguous buffer holding `v` converted to `t`.
inline Buffer make_buffer(const Device& dev, DType t, const Shape& shape, const std::vector<float>& v) {
  auto b = dev.alloc(t, shape);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  auto bytes = to_bytes(t, v);
  EXPECT_TRUE(b->upload(bytes.data(), bytes.size()).is_ok());
  return b.value();
}

inline std::vector<float> read_f32(const Buffer& b) {
  std::vector<uint8_t> bytes(b.nbytes());
  Status s = b.download(bytes.data(), bytes.size());
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  return from_bytes(b.dtype(), bytes);
}

// 0xFF bytes: NaN in f32, f16 and bf16, so an element a kernel fails to write cannot pass a comparison.
inline void poison(const Buffer& b) { ASSERT_TRUE(b.fill_bytes(0xFF).is_ok()); }

// ||a - b|| / ||b|| over all elements; infinity if any element of a is not finite while b's is.
inline double rel_l2(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(a[i]) && std::isfinite(ref[i])) return INFINITY;
    const double d = static_cast<double>(a[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}
inline double rel_l2(const std::vector<float>& a, const std::vector<float>& ref) {
  return rel_l2(a, std::vector<double>(ref.begin(), ref.end()));
}

// Largest |a - b| / (atol + rtol * |b|); <= 1 passes. NaN anywhere fails.
inline double max_scaled_err(const std::vector<float>& a, const std::vector<float>& b, double atol, double rtol) {
  double worst = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / (atol + rtol * std::abs(b[i])));
  }
  return worst;
}

// Tolerance per dtype for one rounding of an f32 result (half an ulp is 2^-11 for f16, 2^-8 for bf16).
inline double rtol_for(DType t) { return t == DType::F32 ? 1e-5 : t == DType::F16 ? 2e-3 : 1.6e-2; }

inline std::vector<DType> float_dtypes() { return {DType::F32, DType::F16, DType::BF16}; }

}  // namespace mlxn::test

// Skips the test with a message where no CUDA device is visible; else binds `dev` to CUDA device 0.
#define MLXN_CUDA_DEVICE_OR_SKIP(dev)                                                                 \
  if (::mlxn::Device::cuda_device_count() == 0)                                                      \
    GTEST_SKIP() << (::mlxn::Device::cuda_compiled() ? "no CUDA device visible"                       \
                                                     : "this build has no CUDA backend");             \
  auto dev##_result = ::mlxn::Device::open(::mlxn::Backend::Cuda, 0);                                 \
  ASSERT_TRUE(dev##_result.is_ok()) << dev##_result.status().to_string();                             \
  ::mlxn::Device dev = dev##_result.value()
