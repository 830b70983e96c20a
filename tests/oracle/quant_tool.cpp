// Helper the oracle script drives: converts raw files with the library's reference dequantize / quantize.
//   mlxn_quant_tool dequant TYPE IN OUT   blocks of TYPE -> f32
//   mlxn_quant_tool quant   TYPE IN OUT   f32 -> blocks of TYPE
// TYPE is an mlxn dtype name (q4_0, q2_K, iq4_nl, bf16, ...). Exit status 0 on success, 1 with a message otherwise.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/quant/quant.h"

namespace {

bool read_file(const char* path, std::vector<uint8_t>& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

bool write_file(const char* path, const void* data, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
  return static_cast<bool>(f);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s dequant|quant TYPE IN OUT\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  const auto t = mlxn::dtype_from_name(argv[2]);
  if (!t) {
    std::fprintf(stderr, "unknown type %s\n", argv[2]);
    return 1;
  }
  std::vector<uint8_t> in;
  if (!read_file(argv[3], in)) {
    std::fprintf(stderr, "cannot read %s\n", argv[3]);
    return 1;
  }
  const auto& info = mlxn::dtype_info(*t);
  if (mode == "dequant") {
    const int64_t n = static_cast<int64_t>(in.size() / info.block_bytes) * info.block_elems;
    std::vector<float> out(static_cast<size_t>(n));
    auto st = mlxn::quant::dequantize(*t, in.data(), in.size(), out.data(), n);
    if (!st) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 1;
    }
    return write_file(argv[4], out.data(), out.size() * 4) ? 0 : 1;
  }
  if (mode == "quant") {
    const int64_t n = static_cast<int64_t>(in.size() / 4);
    std::vector<float> x(static_cast<size_t>(n));
    std::memcpy(x.data(), in.data(), x.size() * 4);
    auto bytes = mlxn::dtype_storage_bytes(*t, n);
    if (!bytes) {
      std::fprintf(stderr, "%s\n", bytes.status().to_string().c_str());
      return 1;
    }
    std::vector<uint8_t> out(*bytes);
    auto st = mlxn::quant::quantize(*t, x.data(), n, out.data(), out.size());
    if (!st) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 1;
    }
    return write_file(argv[4], out.data(), out.size()) ? 0 : 1;
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
