// Embedding lookup on the CPU backend: float tables against a plain loop here, GGML block tables against the
// whole table decoded once (rows chosen, scaled and rounded here), out-of-range ids giving zero rows, errors.
#include "embedding_cases.h"
#include "mlxn/quant/quant.h"

namespace mlxn {
namespace {

TEST(Embedding, FloatTables) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (DType tt : test::float_dtypes()) {
    for (DType to : test::float_dtypes()) {
      for (auto [vocab, dim, n] : std::vector<std::array<int64_t, 3>>{{50, 64, 9}, {7, 33, 20}, {1, 1, 3}}) {
        SCOPED_TRACE(detail::cat(tt, "->", to, " ", vocab, "x", dim, " n=", n));
        const float scale = std::sqrt(static_cast<float>(dim));  // Gemma's sqrt(hidden)
        auto r = test::run_embedding(Device::cpu(), tt, to, vocab, dim, n, scale, seed);
        ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
        std::vector<float> want(static_cast<size_t>(n * dim), 0.0f);
        for (int64_t t = 0; t < n; ++t) {
          const int32_t id = r.ids[static_cast<size_t>(t)];
          if (id < 0 || id >= vocab) continue;  // documented: a zero row
          for (int64_t c = 0; c < dim; ++c)
            want[static_cast<size_t>(t * dim + c)] =
                test::round_to(to, r.table[static_cast<size_t>(id * dim + c)] * scale);
        }
        EXPECT_EQ(r.out, want);
      }
    }
  }
}

TEST(Embedding, BlockTablesOnCpu) {
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  Device cpu = Device::cpu();
  for (int ti = 0; ti < static_cast<int>(DType::Count_); ++ti) {
    const auto tt = static_cast<DType>(ti);
    if (!is_quantized(tt) || !quant::can_quantize(tt)) continue;
    SCOPED_TRACE(detail::cat(tt));
    const int64_t vocab = 11, dim = 512;  // whole blocks of every type (32 or 256 elements)
    const auto vals = test::randn(static_cast<size_t>(vocab * dim), seed);
    const size_t bytes = dtype_storage_bytes(tt, vocab * dim).value();
    std::vector<uint8_t> packed(bytes);
    ASSERT_TRUE(quant::quantize(tt, vals.data(), vocab * dim, packed.data(), bytes).is_ok());
    std::vector<float> decoded(static_cast<size_t>(vocab * dim));
    ASSERT_TRUE(quant::dequantize(tt, packed.data(), bytes, decoded.data(), vocab * dim).is_ok());
    auto table = cpu.alloc(tt, {vocab, dim}).value();
    ASSERT_TRUE(table.upload(packed.data(), bytes).is_ok());
    const std::vector<int32_t> idv = {10, 0, -3, 4, 11, 4};
    auto ids = cpu.alloc(DType::I32, {6}).value();
    ASSERT_TRUE(ids.upload(idv.data(), 24).is_ok());
    for (DType to : test::float_dtypes()) {
      auto out = cpu.alloc(to, {6, dim}).value();
      test::poison(out);
      auto s = Session::create(cpu).value();
      ASSERT_TRUE(ops::embedding(s, table, ids, out, {2.0f}).is_ok());
      const auto got = test::read_f32(out);
      for (size_t t = 0; t < idv.size(); ++t)
        for (int64_t c = 0; c < dim; ++c) {
          const bool in = idv[t] >= 0 && idv[t] < vocab;
          const float want = in ? test::round_to(to, decoded[static_cast<size_t>(idv[t] * dim + c)] * 2.0f) : 0.0f;
          ASSERT_EQ(got[t * static_cast<size_t>(dim) + static_cast<size_t>(c)], want) << "row " << t << " col " << c;
        }
    }
  }
}

TEST(Embedding, ErrorPaths) {
  Device cpu = Device::cpu();
  auto s = Session::create(cpu).value();
  auto table = cpu.alloc(DType::BF16, {100, 64}).value();
  auto ids = cpu.alloc(DType::I32, {3}).value();
  auto out = cpu.alloc(DType::F32, {3, 64}).value();
  ASSERT_TRUE(ids.fill_bytes(0).is_ok());
  EXPECT_TRUE(ops::embedding(s, table, ids, out).is_ok());
  auto out_bad = cpu.alloc(DType::F32, {3, 63}).value();
  EXPECT_NE(ops::embedding(s, table, ids, out_bad).message().find("[embedding] out has shape"), std::string::npos);
  auto ids_u = cpu.alloc(DType::U32, {3}).value();
  EXPECT_NE(ops::embedding(s, table, ids_u, out).message().find("ids has dtype"), std::string::npos);
  auto t_i8 = cpu.alloc(DType::I8, {100, 64}).value();
  EXPECT_EQ(ops::embedding(s, t_i8, ids, out).code(), StatusCode::Unsupported);
  auto out_i = cpu.alloc(DType::I32, {3, 64}).value();
  EXPECT_EQ(ops::embedding(s, table, ids, out_i).code(), StatusCode::Unsupported);
  EXPECT_EQ(ops::embedding(s, table, ids, out, {NAN}).code(), StatusCode::InvalidArgument);
  auto flat = cpu.alloc(DType::BF16, {6400}).value();
  EXPECT_NE(ops::embedding(s, flat, ids, out).message().find("[vocab, dim]"), std::string::npos);
}

}  // namespace
}  // namespace mlxn
