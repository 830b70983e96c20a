// safetensors reader: every dtype, zero-copy CPU loads, sharded checkpoints, config.json, MLX affine weights with
// per-module overrides, and hostile headers.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "mlxn/core/half.h"
#include "mlxn/io/safetensors.h"
#include "mlxn/quant/affine.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using io::SafetensorsFile;
using io::SafetensorsModel;
using io::StDtype;

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

std::string shape_json(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out.append(",");
    out.append(std::to_string(s[i]));
  }
  out.append("]");
  return out;
}

// A well-formed file; `header_override` replaces the generated JSON (to build broken files).
std::vector<uint8_t> make_file(const std::vector<StTensor>& ts, const std::string& metadata_json = "",
                               const std::string& header_override = "") {
  std::string h = "{";
  std::vector<uint8_t> data;
  if (!metadata_json.empty()) h.append("\"__metadata__\":").append(metadata_json);
  for (const auto& t : ts) {
    if (h.size() > 1) h.append(",");
    h.append("\"").append(t.name).append("\":{\"dtype\":\"").append(t.dtype).append("\",\"shape\":");
    h.append(shape_json(t.shape)).append(",\"data_offsets\":[").append(std::to_string(data.size())).append(",");
    h.append(std::to_string(data.size() + t.data.size())).append("]}");
    const size_t at = data.size();
    data.resize(at + t.data.size());
    if (!t.data.empty()) std::memcpy(data.data() + at, t.data.data(), t.data.size());
  }
  h.append("}");
  if (!header_override.empty()) h = header_override;
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');
  std::vector<uint8_t> out(8 + h.size() + data.size());
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, h.data(), h.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + h.size(), data.data(), data.size());
  return out;
}

template <typename T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Result<SafetensorsFile> parse(const std::vector<uint8_t>& bytes) {
  return SafetensorsFile::parse(io::MappedFile::borrow(bytes.data(), bytes.size(), "test.safetensors"));
}

void expect_format_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  auto r = parse(bytes);
  ASSERT_FALSE(r.is_ok()) << "parsed although it should fail with: " << needle;
  EXPECT_EQ(r.status().code(), StatusCode::FormatError) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message '" << r.status().message() << "' lacks '" << needle << "'";
}

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / "mlxn_test_safetensors" / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& p, const std::vector<uint8_t>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
void write(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
}

TEST(Safetensors, EveryDtypeParsesAndConverts) {
  const std::vector<float> f32 = {1.5f, -2.0f, 0.25f, 3.0f};
  std::vector<uint16_t> f16, bf16;
  for (float v : f32) {
    f16.push_back(f32_to_f16(v));
    bf16.push_back(f32_to_bf16(v));
  }
  std::vector<StTensor> ts = {
      {"f32", "F32", {2, 2}, bytes_of(f32)},
      {"f16", "F16", {4}, bytes_of(f16)},
      {"bf16", "BF16", {4}, bytes_of(bf16)},
      {"f64", "F64", {2}, bytes_of(std::vector<double>{0.5, -8.0})},
      {"i64", "I64", {1}, bytes_of(std::vector<int64_t>{-7})},
      {"u64", "U64", {1}, bytes_of(std::vector<uint64_t>{9})},
      {"i32", "I32", {1}, bytes_of(std::vector<int32_t>{-3})},
      {"u32", "U32", {1}, bytes_of(std::vector<uint32_t>{3})},
      {"i16", "I16", {1}, bytes_of(std::vector<int16_t>{-2})},
      {"u16", "U16", {1}, bytes_of(std::vector<uint16_t>{2})},
      {"i8", "I8", {1}, {0xFF}},
      {"u8", "U8", {1}, {0xFF}},
      {"bool", "BOOL", {2}, {0, 1}},
      {"e4m3", "F8_E4M3", {3}, {0x38, 0xB8, 0x7F}},  // 1.0, -1.0, NaN
      {"e5m2", "F8_E5M2", {2}, {0x3C, 0x7C}},        // 1.0, inf
      {"e8m0", "F8_E8M0", {2}, {127, 130}},          // 1, 8
      {"c64", "C64", {1}, std::vector<uint8_t>(8)},
      {"f4", "F4", {4}, {0x12, 0x34}},
      {"f6", "F6_E2M3", {4}, {1, 2, 3}},
      {"scalar", "F32", {}, bytes_of(std::vector<float>{42.0f})},
      {"empty", "F32", {0, 3}, {}},
  };
  const auto file = make_file(ts, "{\"format\":\"pt\"}");
  auto r = parse(file);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->metadata().at("format"), "pt");
  EXPECT_EQ(r->tensors().size(), ts.size());
  auto f = [&](const std::string& n) {
    auto v = r->dequantize_tensor(n);
    EXPECT_TRUE(v.is_ok()) << n << ": " << v.status().to_string();
    return v.is_ok() ? *v : std::vector<float>{};
  };
  EXPECT_EQ(f("f32"), f32);
  EXPECT_EQ(f("f16"), f32);
  EXPECT_EQ(f("bf16"), f32);
  EXPECT_EQ(f("f64"), (std::vector<float>{0.5f, -8.0f}));
  EXPECT_EQ(f("i64")[0], -7.0f);
  EXPECT_EQ(f("u64")[0], 9.0f);
  EXPECT_EQ(f("i8")[0], -1.0f);
  EXPECT_EQ(f("u8")[0], 255.0f);
  EXPECT_EQ(f("bool"), (std::vector<float>{0.0f, 1.0f}));
  const auto e4 = f("e4m3");
  EXPECT_EQ(e4[0], 1.0f);
  EXPECT_EQ(e4[1], -1.0f);
  EXPECT_TRUE(std::isnan(e4[2]));
  EXPECT_EQ(f("e5m2")[0], 1.0f);
  EXPECT_TRUE(std::isinf(f("e5m2")[1]));
  EXPECT_EQ(f("e8m0"), (std::vector<float>{1.0f, 8.0f}));
  EXPECT_EQ(f("scalar"), (std::vector<float>{42.0f}));
  EXPECT_EQ(r->tensor("scalar")->shape.rank(), 0);
  EXPECT_EQ(r->dequantize_tensor("c64").status().code(), StatusCode::Unsupported);
  EXPECT_EQ(r->tensor_data("f4")->size(), 2u);
  EXPECT_EQ(r->tensor_data("f6")->size(), 3u);
  EXPECT_EQ(r->load_tensor("u64", Device::cpu()).status().code(), StatusCode::Unsupported);
  auto b = r->load_tensor("f32", Device::cpu());
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->shape(), (Shape{2, 2}));
  EXPECT_EQ(b->data_as<float>()[3], 3.0f);
  EXPECT_EQ(r->load_tensor("missing", Device::cpu()).status().code(), StatusCode::NotFound);
}

TEST(Safetensors, CpuLoadIsZeroCopyAndKeepsTheMapping) {
  const auto dir = temp_dir("zero_copy");
  const auto x = test::randn(64, 3);
  write(dir / "model.safetensors", make_file({{"w", "F32", {8, 8}, bytes_of(x)}}));
  Buffer b;
  const uint8_t* base;
  {
    auto m = SafetensorsModel::open(dir.string());
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    base = m->shards()[0].tensor_data("w")->data();
    auto r = m->load_tensor("w", Device::cpu());
    ASSERT_TRUE(r.is_ok());
    b = *r;
  }
  EXPECT_EQ(static_cast<const uint8_t*>(b.data()), base);
  EXPECT_EQ(std::memcmp(b.data(), x.data(), 256), 0);
}

TEST(Safetensors, ShardedCheckpointWithIndexAndConfig) {
  const auto dir = temp_dir("sharded");
  const auto a = test::randn(16, 1), c = test::randn(32, 2);
  write(dir / "model-00001-of-00002.safetensors", make_file({{"model.embed_tokens.weight", "F32", {4, 4}, bytes_of(a)}}));
  write(dir / "model-00002-of-00002.safetensors", make_file({{"lm_head.weight", "F32", {4, 8}, bytes_of(c)}}));
  write(dir / "model.safetensors.index.json",
        std::string("{\"metadata\":{\"total_size\":192},\"weight_map\":{\"model.embed_tokens.weight\":"
                    "\"model-00001-of-00002.safetensors\",\"lm_head.weight\":\"model-00002-of-00002.safetensors\"}}"));
  write(dir / "config.json", std::string("{\"model_type\":\"bert\",\"hidden_size\":4,\"layer_norm_eps\":1e-12,"
                                         "\"architectures\":[\"BertModel\"],\"rope_scaling\":{\"factor\":8.0}}"));
  auto m = SafetensorsModel::open(dir.string());
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  EXPECT_EQ(m->shards().size(), 2u);
  EXPECT_EQ(m->tensor_names(), (std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight"}));
  EXPECT_EQ(*m->dequantize_tensor("lm_head.weight"), c);
  ASSERT_TRUE(m->config().has_value());
  EXPECT_EQ(m->config()->get<int64_t>("hidden_size").value(), 4);
  EXPECT_EQ(m->config()->get<double>("layer_norm_eps").value(), 1e-12);
  EXPECT_EQ(m->config()->get<double>("rope_scaling.factor").value(), 8.0);
  EXPECT_EQ(m->config()->get<std::vector<std::string>>("architectures").value()[0], "BertModel");
  EXPECT_EQ(m->config()->get<std::string>("hidden_size").status().code(), StatusCode::InvalidArgument);
  EXPECT_EQ(m->config()->get<int64_t>("num_layers").status().code(), StatusCode::NotFound);
  EXPECT_FALSE(m->mlx_quant().has_value());

  // The index may not point outside the checkpoint or at a shard lacking the tensor.
  write(dir / "model.safetensors.index.json",
        std::string("{\"weight_map\":{\"lm_head.weight\":\"../x.safetensors\"}}"));
  EXPECT_EQ(SafetensorsModel::open(dir.string()).status().code(), StatusCode::FormatError);
  write(dir / "model.safetensors.index.json",
        std::string("{\"weight_map\":{\"lm_head.weight\":\"model-00001-of-00002.safetensors\"}}"));
  auto bad = SafetensorsModel::open(dir.string());
  EXPECT_EQ(bad.status().code(), StatusCode::FormatError);
  EXPECT_NE(bad.status().message().find("lm_head.weight"), std::string::npos);
}

// An MLX checkpoint: two affine modules (default 4-bit / 64 and an 8-bit / 32 override), scales in bf16.
TEST(Safetensors, MlxAffineWeightsWithOverrides) {
  const auto dir = temp_dir("mlx");
  const int64_t rows = 4, cols = 128;
  const auto w1 = test::randn(static_cast<size_t>(rows * cols), 5), w2 = test::randn(static_cast<size_t>(rows * cols), 6);
  auto q1 = quant::affine_quantize({4, 64}, rows, cols, w1.data(), DType::BF16).value();
  auto q2 = quant::affine_quantize({8, 32}, rows, cols, w2.data(), DType::BF16).value();
  write(dir / "model.safetensors",
        make_file({{"model.layers.0.mlp.up_proj.weight", "U32", {rows, cols * 4 / 32}, q1.packed},
                   {"model.layers.0.mlp.up_proj.scales", "BF16", {rows, cols / 64}, q1.scales},
                   {"model.layers.0.mlp.up_proj.biases", "BF16", {rows, cols / 64}, q1.biases},
                   {"model.layers.0.mlp.down_proj.weight", "U32", {rows, cols * 8 / 32}, q2.packed},
                   {"model.layers.0.mlp.down_proj.scales", "BF16", {rows, cols / 32}, q2.scales},
                   {"model.layers.0.mlp.down_proj.biases", "BF16", {rows, cols / 32}, q2.biases},
                   {"model.norm.weight", "BF16", {cols}, std::vector<uint8_t>(cols * 2)}}));
  write(dir / "config.json",
        std::string("{\"model_type\":\"qwen3\",\"quantization\":{\"group_size\":64,\"bits\":4,"
                    "\"model.layers.0.mlp.down_proj\":{\"group_size\":32,\"bits\":8},\"lm_head\":false}}"));
  auto m = SafetensorsModel::open(dir.string());
  ASSERT_TRUE(m.is_ok()) << m.status().to_string();
  ASSERT_TRUE(m->mlx_quant().has_value());
  EXPECT_EQ(m->mlx_quant()->spec_for("model.layers.0.mlp.down_proj.weight")->bits, 8);
  EXPECT_EQ(m->mlx_quant()->spec_for("language_model.model.layers.0.mlp.down_proj")->group_size, 32);
  EXPECT_FALSE(m->mlx_quant()->spec_for("lm_head.weight").has_value());
  EXPECT_EQ(m->mlx_quant()->spec_for("model.layers.1.self_attn.q_proj")->bits, 4);
  EXPECT_TRUE(m->is_affine("model.layers.0.mlp.up_proj.weight"));
  EXPECT_FALSE(m->is_affine("model.norm.weight"));

  for (const auto& [mod, w, spec] : {std::tuple{"model.layers.0.mlp.up_proj", &w1, quant::AffineSpec{4, 64}},
                                     std::tuple{"model.layers.0.mlp.down_proj", &w2, quant::AffineSpec{8, 32}}}) {
    auto a = m->load_affine(mod, Device::cpu());
    ASSERT_TRUE(a.is_ok()) << a.status().to_string();
    EXPECT_EQ(a->rows, rows);
    EXPECT_EQ(a->cols, cols);
    EXPECT_EQ(a->spec.bits, spec.bits);
    EXPECT_EQ(a->scales.dtype(), DType::BF16);  // read from the file, not assumed
    EXPECT_EQ(a->packed.dtype(), DType::U32);
    auto y = m->dequantize_affine(std::string(mod) + ".weight");
    ASSERT_TRUE(y.is_ok()) << y.status().to_string();
    double err = 0;
    for (size_t i = 0; i < w->size(); ++i) err = std::max(err, std::fabs(static_cast<double>((*y)[i]) - (*w)[i]));
    EXPECT_LT(err, spec.bits == 8 ? 0.05 : 0.6) << mod;
  }

  // A config that disagrees with the shapes is caught with a hint.
  write(dir / "config.json", std::string("{\"quantization\":{\"group_size\":128,\"bits\":4}}"));
  auto m2 = SafetensorsModel::open(dir.string());
  ASSERT_TRUE(m2.is_ok());
  auto bad = m2->load_affine("model.layers.0.mlp.down_proj", Device::cpu());
  EXPECT_EQ(bad.status().code(), StatusCode::FormatError);
  EXPECT_NE(bad.status().message().find("down_proj"), std::string::npos) << bad.status().message();
}

// ---- hostile input --------------------------------------------------------------------------------------------

TEST(SafetensorsHostile, EveryTruncationIsAnError) {
  const auto file = make_file({{"a", "F32", {4}, std::vector<uint8_t>(16, 1)}, {"b", "I8", {3}, {1, 2, 3}}});
  ASSERT_TRUE(parse(file).is_ok());
  for (size_t n = 0; n < file.size(); ++n) {
    std::vector<uint8_t> cut(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse(cut);
    ASSERT_FALSE(r.is_ok()) << "cut to " << n << " bytes parsed";
    ASSERT_EQ(r.status().code(), StatusCode::FormatError) << r.status().to_string();
  }
}

TEST(SafetensorsHostile, RandomCorruptionNeverCrashes) {
  const auto file = make_file({{"a", "F32", {2, 4}, std::vector<uint8_t>(32, 1)}, {"b", "BF16", {3}, std::vector<uint8_t>(6, 7)}},
                              "{\"k\":\"v\"}");
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "MLXN_TEST_SEED=" << seed);
  std::mt19937_64 g(seed);
  for (int i = 0; i < 3000; ++i) {
    auto m = file;
    for (int k = 0; k < 1 + static_cast<int>(g() % 3); ++k) m[g() % m.size()] = static_cast<uint8_t>(g());
    auto r = parse(m);
    if (r.is_ok())
      for (const auto& t : r->tensors()) (void)r->dequantize_tensor(t.name);
  }
}

TEST(SafetensorsHostile, HeaderErrors) {
  const std::vector<uint8_t> data16(16, 0);
  expect_format_error({1, 2, 3}, "truncated");
  expect_format_error(make_file({}, "", "[1,2]"), "not a JSON object");
  {
    std::vector<uint8_t> f(16, 0);
    const uint64_t n = uint64_t{1} << 62;
    std::memcpy(f.data(), &n, 8);
    expect_format_error(f, "exceeds");
  }
  {
    std::vector<uint8_t> f(16, 0);
    const uint64_t n = 1000;
    std::memcpy(f.data(), &n, 8);
    f[8] = '{';
    expect_format_error(f, "truncated: the header needs 1000 bytes");
  }
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]"), "header JSON");
  expect_format_error(make_file({}, "", "{\"a\xff\":{}}"), "header JSON");  // invalid UTF-8
  expect_format_error(make_file({{"a", "F99", {4}, data16}}), "unknown dtype 'F99'");
  expect_format_error(make_file({{"a", "F32", {5}, data16}}), "holds 16 bytes");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}"),
                      "not a non-negative integer");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4.5],\"data_offsets\":[0,16]}}"),
                      "not a non-negative integer");
  expect_format_error(
      make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}"),
      "overflows");
  expect_format_error(
      make_file({}, "", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,16]}}"),
      "byte size overflows");
  expect_format_error(
      make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}"),
      "9 dimensions");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}"),
                      "reversed or past the end");
  expect_format_error(
      make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,18446744073709551615]}}"),
      "past the end");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}"),
                      "not a pair");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}"), "lacks");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":1}}"),
                      "unknown field 'x'");
  expect_format_error(make_file({}, "", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                                        "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
                      "duplicate tensor 'a'");
  expect_format_error(make_file({}, "", "{\"__metadata__\":{\"k\":1}}"), "not a string");
  expect_format_error(make_file({{"a", "F4", {3}, {0, 0}}}), "not a whole number of bytes");
  {
    // Tensors nested inside another one.
    auto f = make_file({}, "",
                       "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
                       "\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}");
    f.resize(f.size() + 16);
    expect_format_error(f, "overlaps tensor 'a'");
  }
  {
    std::string deep(200000, '[');
    expect_format_error(make_file({}, "", "{\"a\":" + deep + "}"), "header JSON");
  }
}

}  // namespace
}  // namespace mlxn

namespace mlxn {
namespace {

// The checked-in corpus of broken files (tests/data/make_corpus.py): each one is a FormatError, none crashes.
TEST(SafetensorsHostile, CorpusOfBrokenFiles) {
  const auto dir = fs::path(__FILE__).parent_path() / "data" / "safetensors";
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    ++n;
    auto r = SafetensorsFile::open(e.path().string());
    ASSERT_FALSE(r.is_ok()) << e.path() << " parsed";
    EXPECT_EQ(r.status().code(), StatusCode::FormatError) << e.path() << ": " << r.status().to_string();
  }
  EXPECT_GE(n, 25u) << "corpus missing under " << dir;
}

}  // namespace
}  // namespace mlxn
