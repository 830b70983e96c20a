// Dequantize ops (dequantize, dequantize_affine), the affine embedding lookup and the session scratch on the CPU
// backend. The reference is the whole weight decoded at once by quant::dequantize / quant::affine_dequantize
// (checked against the gguf package by the oracle test); the ops under test decode row slices into strided,
// poisoned outputs of every float type, which must hold that value rounded once.
#include "dequant_cases.h"

namespace mlxn {
namespace {

TEST(Dequantize, MatchesWholeTensorDecode) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::dequant_cases(false)) {
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c.w, seed);
    for (DType to : test::float_dtypes()) {
      SCOPED_TRACE(detail::cat("out ", to));
      auto r = test::run_dequant(Device::cpu(), c.w, q, to, c.row0, c.rows, c.out_pad);
      ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
      ASSERT_EQ(r.out.size(), static_cast<size_t>(c.rows * c.w.K));
      for (size_t i = 0; i < r.out.size(); ++i) {
        const float want = test::round_to(to, q.w[static_cast<size_t>(c.row0 * c.w.K) + i]);
        ASSERT_EQ(r.out[i], want) << "element " << i;
      }
    }
  }
}

// The decoded weights are close to the data they were quantized from (an independent sanity check of the
// reference path: a wrong row or block order would decode another row's values).
TEST(Dequantize, CloseToQuantizedData) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType t : {DType::Q8_0, DType::Q6_K, DType::Q5_K}) {
    SCOPED_TRACE(detail::cat(t));
    const test::QMatmulCase c{t, 0, 0, DType::F16, 0, 5, 512, DType::F32, 0};
    const auto q = test::make_qweights(c, seed);
    const auto src = test::randn(static_cast<size_t>(c.N * c.K), seed, 1.0f);
    auto r = test::run_dequant(Device::cpu(), c, q, DType::F32, 0, c.N, 0);
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_LT(test::rel_l2(r.out, src), t == DType::Q8_0 ? 0.01 : 0.05);
  }
}

TEST(Dequantize, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto w = cpu.alloc(DType::Q4_K, {4, 256}).value();
  ASSERT_TRUE(w.fill_bytes(0).is_ok());
  auto out = cpu.alloc(DType::BF16, {4, 256}).value();
  EXPECT_TRUE(ops::dequantize(s, w, out).is_ok());
  auto out_bad = cpu.alloc(DType::BF16, {4, 255}).value();
  EXPECT_NE(ops::dequantize(s, w, out_bad).message().find("[dequantize] out has shape"), std::string::npos);
  auto out_int = cpu.alloc(DType::I32, {4, 256}).value();
  EXPECT_EQ(ops::dequantize(s, w, out_int).code(), StatusCode::Unsupported);
  auto q8k = cpu.alloc(DType::Q8_K, {4, 256}).value();
  EXPECT_EQ(ops::dequantize(s, q8k, out).code(), StatusCode::Unsupported);
  auto dense = cpu.alloc(DType::F32, {4, 256}).value();
  EXPECT_NE(ops::dequantize(s, dense, out).message().find("GGML weight format"), std::string::npos);
  auto flat = cpu.alloc(DType::Q4_K, {1024}).value();
  EXPECT_NE(ops::dequantize(s, flat, out).message().find("[N, K]"), std::string::npos);
  // out inside w's storage.
  auto storage = cpu.alloc(DType::U8, {4 * 144 + 4 * 256 * 2}).value();
  auto w2 = storage.view(0, DType::Q4_K, {4, 256}).value();
  auto out2 = storage.view(4 * 144 - 64, DType::BF16, {4, 256});
  ASSERT_TRUE(out2.is_ok());
  EXPECT_NE(ops::dequantize(s, w2, out2.value()).message().find("overlaps"), std::string::npos);
  // Columns of out not contiguous.
  Strides st{};
  st[0] = 1;
  st[1] = 4;
  auto outt = cpu.alloc(DType::F32, {256, 4}).value().view_strided(0, DType::F32, {4, 256}, st).value();
  EXPECT_NE(ops::dequantize(s, w, outt).message().find("contiguous rows"), std::string::npos);
  // A misaligned block weight (2-byte loads on CUDA) and a buffer of another device are rejected.
  auto odd = storage.view(1, DType::Q4_0, {1, 32}).value();
  auto out32 = cpu.alloc(DType::F32, {1, 32}).value();
  EXPECT_NE(ops::dequantize(s, odd, out32).message().find("aligned"), std::string::npos);
  EXPECT_EQ(ops::dequantize(s, Buffer(), out).code(), StatusCode::InvalidArgument);

  ops::AffineWeight aw;
  aw.bits = 4;
  aw.group_size = 64;
  aw.packed = cpu.alloc(DType::U32, {4, 32}).value();
  aw.scales = cpu.alloc(DType::F16, {4, 4}).value();
  aw.biases = cpu.alloc(DType::F16, {4, 4}).value();
  for (const Buffer* b : {&aw.packed, &aw.scales, &aw.biases}) ASSERT_TRUE(b->fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::dequantize_affine(s, aw, out).is_ok());
  auto bad = aw;
  bad.bits = 7;
  EXPECT_NE(ops::dequantize_affine(s, bad, out).message().find("bits = 7"), std::string::npos);
  bad = aw;
  bad.group_size = 48;
  EXPECT_NE(ops::dequantize_affine(s, bad, out).message().find("group_size 48"), std::string::npos);
  bad = aw;
  bad.scales = cpu.alloc(DType::F16, {4, 3}).value();
  EXPECT_NE(ops::dequantize_affine(s, bad, out).message().find("scales have shape"), std::string::npos);
  bad = aw;
  bad.biases = cpu.alloc(DType::BF16, {4, 4}).value();
  EXPECT_NE(ops::dequantize_affine(s, bad, out).message().find("biases have dtype"), std::string::npos);
  bad = aw;
  bad.scales = cpu.alloc(DType::I32, {4, 4}).value();
  bad.biases = cpu.alloc(DType::I32, {4, 4}).value();
  EXPECT_EQ(ops::dequantize_affine(s, bad, out).code(), StatusCode::Unsupported);
  EXPECT_NE(ops::dequantize_affine(s, aw, out_bad).message().find("[dequantize_affine] out has shape"),
            std::string::npos);
  ASSERT_TRUE(s.finish().is_ok());
}

TEST(Dequantize, AffineEmbedding) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    const test::QMatmulCase c{DType::U32, bits, bits == 3 ? 32 : 64, bits % 2 ? DType::BF16 : DType::F32, 0, 13, 256,
                              DType::F32, 0};
    SCOPED_TRACE(test::describe(c));
    const auto q = test::make_qweights(c, seed);
    const auto ids = test::embedding_ids(c.N, 21, seed + 3);
    for (DType to : test::float_dtypes()) {
      auto r = test::run_qembedding(Device::cpu(), c, q, to, ids, 1.5f);
      ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
      for (size_t t = 0; t < ids.size(); ++t)
        for (int64_t k = 0; k < c.K; ++k) {
          const bool in = ids[t] >= 0 && ids[t] < c.N;
          const float want = in ? test::round_to(to, q.w[static_cast<size_t>(ids[t] * c.K + k)] * 1.5f) : 0.0f;
          ASSERT_EQ(r.out[t * static_cast<size_t>(c.K) + static_cast<size_t>(k)], want) << "row " << t;
        }
    }
  }
  // Error paths.
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  const test::QMatmulCase c{DType::U32, 4, 64, DType::F16, 0, 8, 128, DType::F32, 0};
  auto d = test::upload_qweight(cpu, c, test::make_qweights(c, seed));
  auto ids = cpu.alloc(DType::I32, {3}).value();
  ASSERT_TRUE(ids.fill_bytes(0).is_ok());
  auto out = cpu.alloc(DType::F32, {3, 128}).value();
  EXPECT_TRUE(ops::embedding_affine(s, d.aw, ids, out).is_ok());
  auto out_bad = cpu.alloc(DType::F32, {3, 64}).value();
  EXPECT_NE(ops::embedding_affine(s, d.aw, ids, out_bad).message().find("[embedding_affine] out has shape"),
            std::string::npos);
  auto ids_u = cpu.alloc(DType::U32, {3}).value();
  EXPECT_NE(ops::embedding_affine(s, d.aw, ids_u, out).message().find("ids has dtype"), std::string::npos);
  EXPECT_EQ(ops::embedding_affine(s, d.aw, ids, out, {NAN}).code(), StatusCode::InvalidArgument);
  auto bad = d.aw;
  bad.bits = 1;
  EXPECT_NE(ops::embedding_affine(s, bad, ids, out).message().find("bits = 1"), std::string::npos);
  ASSERT_TRUE(s.finish().is_ok());
}

TEST(Session, ScratchGrowsAndKeepsOldBuffers) {
  auto s = Session::create(Device::cpu()).value();
  auto a = s.scratch(1000);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_GE(a->nbytes(), 1000u);
  auto b = s.scratch(10);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->storage_id(), a->storage_id());  // one buffer serves every request that fits
  auto c = s.scratch(a->nbytes() + 1);
  ASSERT_TRUE(c.is_ok());
  EXPECT_NE(c->storage_id(), a->storage_id());
  EXPECT_GE(c->nbytes(), a->nbytes() + 1);
  // The older buffer stays valid (a graph may still use it): writing it must work.
  EXPECT_TRUE(a->fill_bytes(1).is_ok());
}

}  // namespace
}  // namespace mlxn
