// GGUF reader: metadata of every type, typed access, tensor infos, zero-copy CPU loads, and hostile files
// (truncations, huge counts, overflowing sizes, bad UTF-8, misaligned / overlapping / out-of-range data).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "mlxn/core/half.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/gguf_writer.h"
#include "mlxn/quant/quant.h"
#include "test_util.h"

namespace mlxn {
namespace {

using io::GgufFile;
using io::GgufType;
using io::GgufWriter;

// Raw little-endian byte builder for hand-made (and deliberately broken) files.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u8(uint8_t v) { b.push_back(v); return *this; }
  Bytes& u32(uint32_t v) { return raw(&v, 4); }
  Bytes& u64(uint64_t v) { return raw(&v, 8); }
  Bytes& f32(float v) { return raw(&v, 4); }
  Bytes& str(std::string_view s) { u64(s.size()); return raw(s.data(), s.size()); }
  Bytes& raw(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Bytes& pad_to(size_t align) {
    b.resize((b.size() + align - 1) / align * align, 0);
    return *this;
  }
};

Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes h;
  h.u32(0x46554747).u32(version).u64(n_tensors).u64(n_kv);
  return h;
}

Result<GgufFile> parse(const std::vector<uint8_t>& bytes) {
  return GgufFile::parse(io::MappedFile::borrow(bytes.data(), bytes.size(), "test.gguf"));
}

void expect_format_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  auto r = parse(bytes);
  ASSERT_FALSE(r.is_ok()) << "parsed although it should fail with: " << needle;
  EXPECT_EQ(r.status().code(), StatusCode::FormatError) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message '" << r.status().message() << "' lacks '" << needle << "'";
}

std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "mlxn_test_gguf";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// A file with every metadata type and a few tensors of different types.
struct Sample {
  std::vector<float> w_f32 = test::randn(4 * 64, 1);
  std::vector<float> w_q = test::randn(8 * 256, 2);
  std::vector<uint8_t> q4k, q8;
  std::vector<uint16_t> f16;
  GgufWriter w{64};

  Sample() {
    w.set_string("general.architecture", "qwen3");
    w.set_u32("qwen3.block_count", 28);
    w.set_u8("t.u8", 200);
    w.set_i8("t.i8", -100);
    w.set_u16("t.u16", 65000);
    w.set_i16("t.i16", -30000);
    w.set_i32("t.i32", -5);
    w.set_u64("t.u64", uint64_t{1} << 40);
    w.set_i64("t.i64", -(int64_t{1} << 40));
    w.set_f32("t.f32", 1e-6f);
    w.set_f64("t.f64", 0.1);
    w.set_bool("t.bool", true);
    w.set_array_string("tokenizer.ggml.tokens", {"<s>", "hello", "wörld", ""});
    w.set_array_f32("tokenizer.ggml.scores", {0.0f, -1.5f, 2.0f, 3.0f});
    w.set_array_i32("t.ints", {1, -2, 3});
    q4k.resize(dtype_storage_bytes(DType::Q4_K, 8 * 256).value());
    EXPECT_TRUE(quant::quantize(DType::Q4_K, w_q.data(), 8 * 256, q4k.data(), q4k.size()).is_ok());
    q8.resize(dtype_storage_bytes(DType::Q8_0, 8 * 256).value());
    EXPECT_TRUE(quant::quantize(DType::Q8_0, w_q.data(), 8 * 256, q8.data(), q8.size()).is_ok());
    for (float v : w_f32) f16.push_back(f32_to_f16(v));
    EXPECT_TRUE(w.add_tensor("token_embd.weight", 0, Shape{4, 64},
                             {reinterpret_cast<const uint8_t*>(w_f32.data()), w_f32.size() * 4}).is_ok());
    EXPECT_TRUE(w.add_tensor("blk.0.ffn_down.weight", 12, Shape{8, 256}, q4k).is_ok());
    EXPECT_TRUE(w.add_tensor("blk.0.attn_q.weight", 8, Shape{8, 256}, q8).is_ok());
    EXPECT_TRUE(w.add_tensor("output_norm.weight", 1, Shape{256},
                             {reinterpret_cast<const uint8_t*>(f16.data()), 64 * 2}).is_ok() == false);
    EXPECT_TRUE(w.add_tensor("output_norm.weight", 1, Shape{4, 64},
                             {reinterpret_cast<const uint8_t*>(f16.data()), f16.size() * 2}).is_ok());
  }
};

TEST(Gguf, MetadataOfEveryTypeAndTypedAccess) {
  Sample s;
  const auto bytes = s.w.bytes();
  auto r = parse(bytes);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const GgufFile& f = *r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.architecture(), "qwen3");
  EXPECT_EQ(f.get<uint32_t>("qwen3.block_count").value(), 28u);
  EXPECT_EQ(f.get<int64_t>("qwen3.block_count").value(), 28);   // widening is allowed
  EXPECT_EQ(f.get<uint8_t>("t.u8").value(), 200);
  EXPECT_EQ(f.get<int8_t>("t.i8").value(), -100);
  EXPECT_EQ(f.get<uint16_t>("t.u16").value(), 65000);
  EXPECT_EQ(f.get<int16_t>("t.i16").value(), -30000);
  EXPECT_EQ(f.get<int32_t>("t.i32").value(), -5);
  EXPECT_EQ(f.get<uint64_t>("t.u64").value(), uint64_t{1} << 40);
  EXPECT_EQ(f.get<int64_t>("t.i64").value(), -(int64_t{1} << 40));
  EXPECT_EQ(f.get<float>("t.f32").value(), 1e-6f);
  EXPECT_EQ(f.get<double>("t.f64").value(), 0.1);
  EXPECT_EQ(f.get<double>("t.f32").value(), static_cast<double>(1e-6f));
  EXPECT_TRUE(f.get<bool>("t.bool").value());
  EXPECT_EQ(f.get<std::vector<std::string>>("tokenizer.ggml.tokens").value(),
            (std::vector<std::string>{"<s>", "hello", "wörld", ""}));
  EXPECT_EQ(f.get<std::vector<float>>("tokenizer.ggml.scores").value()[1], -1.5f);
  EXPECT_EQ(f.get<std::vector<int64_t>>("t.ints").value(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(f.find("t.ints")->to_string(2), "[1, -2, ... (3 i32 items)]");

  auto missing = f.get<uint32_t>("qwen3.context_length");
  EXPECT_EQ(missing.status().code(), StatusCode::NotFound);
  EXPECT_NE(missing.status().message().find("qwen3.context_length"), std::string::npos);
  auto wrong = f.get<uint32_t>("general.architecture");
  EXPECT_EQ(wrong.status().code(), StatusCode::InvalidArgument);
  EXPECT_NE(wrong.status().message().find("'general.architecture': value is string, expected u32"), std::string::npos)
      << wrong.status().message();
  EXPECT_FALSE(f.get<uint32_t>("t.i32").is_ok());  // negative into unsigned
  EXPECT_FALSE(f.get<int8_t>("t.u8").is_ok());     // 200 does not fit
  EXPECT_FALSE(f.get<float>("t.f64").is_ok());     // no silent narrowing
  auto arr = f.get<std::vector<uint32_t>>("t.ints");
  EXPECT_NE(arr.status().message().find("array element 1"), std::string::npos) << arr.status().message();
}

TEST(Gguf, TensorInfosShapesAndAlignment) {
  Sample s;
  const auto bytes = s.w.bytes();
  auto r = parse(bytes);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const GgufFile& f = *r;
  ASSERT_EQ(f.tensors().size(), 4u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  const auto* t = f.tensor("blk.0.ffn_down.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (Shape{8, 256}));  // outermost first
  EXPECT_EQ(t->dtype, DType::Q4_K);
  EXPECT_EQ(t->type_name, "q4_K");
  EXPECT_EQ(t->nbytes, 8u * 144u);
  for (const auto& ti : f.tensors()) EXPECT_EQ(ti.offset % 64, 0u) << ti.name;
  EXPECT_EQ(f.tensor("nope"), nullptr);
  EXPECT_EQ(f.load_tensor("nope", Device::cpu()).status().code(), StatusCode::NotFound);
}

TEST(Gguf, LoadTensorOnCpuWrapsTheMappingInPlace) {
  Sample s;
  const std::string path = temp_path("sample.gguf");
  ASSERT_TRUE(s.w.write(path).is_ok());
  Buffer q;
  const uint8_t* map_begin;
  size_t map_size;
  {
    auto r = GgufFile::open(path);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    map_begin = r->file()->data();
    map_size = r->file()->size();
    auto b = r->load_tensor("blk.0.ffn_down.weight", Device::cpu());
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    q = *b;
    auto e = r->load_tensor("token_embd.weight", Device::cpu());
    ASSERT_TRUE(e.is_ok());
    EXPECT_EQ(e->dtype(), DType::F32);
    EXPECT_EQ(std::memcmp(e->data(), s.w_f32.data(), s.w_f32.size() * 4), 0);
    auto h = r->dequantize_tensor("output_norm.weight");
    ASSERT_TRUE(h.is_ok());
    EXPECT_EQ((*h)[5], f16_to_f32(s.f16[5]));
  }
  // The file object is gone; the Buffer keeps the mapping alive and points into it (no copy).
  const auto* p = static_cast<const uint8_t*>(q.data());
  EXPECT_TRUE(p >= map_begin && p + q.nbytes() <= map_begin + map_size);
  EXPECT_EQ(q.dtype(), DType::Q4_K);
  EXPECT_EQ(q.shape(), (Shape{8, 256}));
  EXPECT_EQ(std::memcmp(q.data(), s.q4k.data(), s.q4k.size()), 0);
}

TEST(Gguf, DequantizeTensorMatchesTheBlockDecoder) {
  Sample s;
  const auto bytes = s.w.bytes();
  auto r = parse(bytes);
  ASSERT_TRUE(r.is_ok());
  auto y = r->dequantize_tensor("blk.0.attn_q.weight");
  ASSERT_TRUE(y.is_ok());
  std::vector<float> ref(8 * 256);
  ASSERT_TRUE(quant::dequantize(DType::Q8_0, s.q8.data(), s.q8.size(), ref.data(), 8 * 256).is_ok());
  EXPECT_EQ(*y, ref);
}

TEST(Gguf, Version2AndNestedArrays) {
  Bytes b = header(0, 2, 2);
  b.str("a.nested").u32(9).u32(9).u64(2);  // array of 2 arrays
  b.u32(4).u64(2).u32(7).u32(8);           //   [u32 7, 8]
  b.u32(8).u64(1).str("x");                //   [string "x"]
  b.str("a.empty").u32(9).u32(6).u64(0);
  auto r = parse(b.b);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->version(), 2u);
  const auto* v = r->find("a.nested");
  ASSERT_NE(v, nullptr);
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ(v->at(0).as<std::vector<uint32_t>>().value(), (std::vector<uint32_t>{7, 8}));
  EXPECT_EQ(v->at(1).as<std::vector<std::string>>().value(), (std::vector<std::string>{"x"}));
  EXPECT_EQ(r->get<std::vector<float>>("a.empty").value().size(), 0u);
  // Nested values survive a copy through the writer.
  GgufWriter w;
  w.set_value("copy", *v);
  auto bytes2 = w.bytes();
  auto r2 = parse(bytes2);
  ASSERT_TRUE(r2.is_ok());
  EXPECT_EQ(r2->find("copy")->to_string(), v->to_string());
}

TEST(Gguf, UnsupportedButKnownTypeOpensAndRefusesToLoad) {
  Bytes b = header(1, 0);
  b.str("blk.0.w").u32(2).u64(256).u64(1).u32(17).u64(0);  // IQ2_XS, 74 bytes
  b.pad_to(32);
  b.b.resize(b.b.size() + 74);
  auto r = parse(b.b);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->tensors()[0].type_name, "iq2_xs");
  auto l = r->load_tensor("blk.0.w", Device::cpu());
  EXPECT_EQ(l.status().code(), StatusCode::Unsupported);
  EXPECT_NE(l.status().message().find("blk.0.w"), std::string::npos);
}

// ---- hostile input --------------------------------------------------------------------------------------------

TEST(GgufHostile, EveryTruncationIsAnError) {
  Sample s;
  const auto bytes = s.w.bytes();
  ASSERT_TRUE(parse(bytes).is_ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse(cut);
    ASSERT_FALSE(r.is_ok()) << "a file cut to " << n << " bytes parsed";
    ASSERT_EQ(r.status().code(), StatusCode::FormatError) << n << ": " << r.status().to_string();
  }
}

TEST(GgufHostile, RandomCorruptionNeverCrashes) {
  Sample s;
  const auto bytes = s.w.bytes();
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(testing::Message() << "MLXN_TEST_SEED=" << seed);
  std::mt19937_64 g(seed);
  for (int iter = 0; iter < 3000; ++iter) {
    auto m = bytes;
    const int flips = 1 + static_cast<int>(g() % 4);
    for (int k = 0; k < flips; ++k) {
      // Most hits go to the header and metadata, where the parser's decisions are.
      const size_t limit = g() % 4 == 0 ? m.size() : std::min<size_t>(m.size(), 700);
      m[g() % limit] = static_cast<uint8_t>(g());
    }
    auto r = parse(m);
    if (r.is_ok()) {
      for (const auto& t : r->tensors()) {
        auto d = r->dequantize_tensor(t.name);  // must stay inside the mapping
        (void)d;
      }
    }
  }
}

TEST(GgufHostile, HeaderErrors) {
  expect_format_error({}, "truncated");
  expect_format_error({'G', 'G', 'U', 'X', 3, 0, 0, 0}, "bad magic");
  expect_format_error(header(0, 0, 1).b, "v1 is not supported");
  expect_format_error(header(0, 0, 0x03000000).b, "big-endian");
  expect_format_error(header(0, 0, 4).b, "unsupported GGUF version 4");
  expect_format_error(header(uint64_t{1} << 62, 0).b, "tensor count");
  expect_format_error(header(0, ~uint64_t{0}).b, "metadata count");
}

TEST(GgufHostile, MetadataErrors) {
  {
    Bytes b = header(0, 1);
    b.u64(~uint64_t{0}).u64(0);  // key length 2^64 - 1
    expect_format_error(b.b, "truncated: the key of metadata entry 0");
  }
  {
    Bytes b = header(0, 1);
    b.str("").u32(4).u32(1);
    expect_format_error(b.b, "empty key");
  }
  {
    Bytes b = header(0, 1);
    b.str("bad\xff\xfe").u32(4).u32(1);
    expect_format_error(b.b, "not valid UTF-8");
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(13).u32(1);
    expect_format_error(b.b, "unknown value type 13");
  }
  {
    Bytes b = header(0, 2);
    b.str("k").u32(4).u32(1).str("k").u32(4).u32(2);
    expect_format_error(b.b, "duplicate metadata key 'k'");
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(9).u32(6).u64(uint64_t{1} << 61);  // 2^61 f32 elements: 2^63 bytes
    expect_format_error(b.b, "cannot fit");
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(9).u32(8).u64(1000).str("only one");
    expect_format_error(b.b, "cannot fit");
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(9).u32(77).u64(1);
    expect_format_error(b.b, "unknown array element type 77");
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(8).u64(uint64_t{1} << 63);  // string length past the end
    expect_format_error(b.b, "key 'k'");
  }
  {
    Bytes b = header(0, 1);
    b.str("deep").u32(9);
    for (int i = 0; i < 20; ++i) b.u32(9).u64(1);
    b.u32(4).u64(0);
    expect_format_error(b.b, "nested deeper");
  }
  {
    Bytes b = header(0, 1);
    b.str("general.alignment").u32(4).u32(48);
    expect_format_error(b.b, "not a power of two");
  }
  {
    Bytes b = header(0, 1);
    b.str("general.alignment").u32(4).u32(0);
    expect_format_error(b.b, "not a power of two");
  }
  {
    Bytes b = header(0, 1);
    b.str("general.alignment").u32(10).u64(32);
    expect_format_error(b.b, "general.alignment is u64, expected u32");
  }
}

// One tensor info with the given fields, then padding and `data_bytes` of data.
std::vector<uint8_t> one_tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                                size_t data_bytes, uint32_t n_dims_override = 0) {
  Bytes b = header(1, 0);
  b.str(name).u32(n_dims_override ? n_dims_override : static_cast<uint32_t>(ne.size()));
  for (uint64_t d : ne) b.u64(d);
  b.u32(type).u64(offset);
  b.pad_to(32);
  b.b.resize(b.b.size() + data_bytes);
  return b.b;
}

TEST(GgufHostile, TensorInfoErrors) {
  ASSERT_TRUE(parse(one_tensor("w", {64, 2}, 0, 0, 512)).is_ok());
  expect_format_error(one_tensor("w", {64, 2}, 0, 0, 511), "tensor 'w' data [0, +512) runs past the end");
  expect_format_error(one_tensor("w", {64, 2}, 4, 0, 512), "tensor 'w' has unknown ggml type 4");
  expect_format_error(one_tensor("w", {64, 2}, 1000, 0, 512), "unknown ggml type 1000");
  expect_format_error(one_tensor("w", {1, 1, 1, 1, 1}, 0, 0, 4), "5 dimensions");
  expect_format_error(one_tensor("w", {~uint64_t{0}, 1}, 0, 0, 4), "negative or too large");
  expect_format_error(one_tensor("w", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0, 4), "overflows");
  expect_format_error(one_tensor("w", {uint64_t{1} << 61}, 28, 0, 4), "byte size overflows");
  expect_format_error(one_tensor("w", {16}, 2, 0, 18), "not whole q4_0 blocks");
  expect_format_error(one_tensor("w", {64}, 0, 16, 512), "not a multiple of the alignment");
  expect_format_error(one_tensor("w", {64}, 0, ~uint64_t{0} - 31, 512), "runs past the end");
  expect_format_error(one_tensor("", {64}, 0, 0, 256), "empty name");
  expect_format_error(one_tensor("w\xc3\x28", {64}, 0, 0, 256), "not valid UTF-8");
  {
    Bytes b = header(2, 0);
    b.str("a").u32(1).u64(64).u32(0).u64(0);
    b.str("a").u32(1).u64(64).u32(0).u64(256);
    b.pad_to(32);
    b.b.resize(b.b.size() + 512);
    expect_format_error(b.b, "duplicate tensor 'a'");
  }
  {
    Bytes b = header(2, 0);
    b.str("a").u32(1).u64(64).u32(0).u64(0);
    b.str("b").u32(1).u64(64).u32(0).u64(128);  // a covers [0, 256)
    b.pad_to(32);
    b.b.resize(b.b.size() + 512);
    expect_format_error(b.b, "tensor 'b' overlaps the data of tensor 'a'");
  }
  {
    // Tensors nested inside another one.
    Bytes b = header(3, 0);
    b.str("a").u32(1).u64(256).u32(0).u64(0);
    b.str("b").u32(1).u64(8).u32(0).u64(32);
    b.str("c").u32(1).u64(8).u32(0).u64(512);
    b.pad_to(32);
    b.b.resize(b.b.size() + 1024);
    expect_format_error(b.b, "tensor 'b' overlaps the data of tensor 'a'");
    Bytes d = header(2, 0);
    d.str("a").u32(1).u64(256).u32(0).u64(0);
    d.str("c").u32(1).u64(8).u32(0).u64(512);
    d.pad_to(32);
    d.b.resize(d.b.size() + 1024);
    expect_format_error(d.b, "tensor 'c' overlaps the data of tensor 'a'");
  }
}

}  // namespace
}  // namespace mlxn

namespace mlxn {
namespace {

// The checked-in corpus of broken files (tests/data/make_corpus.py): each one is a FormatError, none crashes.
TEST(GgufHostile, CorpusOfBrokenFiles) {
  const auto dir = std::filesystem::path(__FILE__).parent_path() / "data" / "gguf";
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".gguf") continue;
    ++n;
    auto r = GgufFile::open(e.path().string());
    ASSERT_FALSE(r.is_ok()) << e.path() << " parsed";
    EXPECT_EQ(r.status().code(), StatusCode::FormatError) << e.path() << ": " << r.status().to_string();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "multi-line message for " << e.path();
  }
  EXPECT_GE(n, 40u) << "corpus missing under " << dir;
}

}  // namespace
}  // namespace mlxn
