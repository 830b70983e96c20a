#include "mlxn/io/npy.h"

#include <cstdio>
#include <memory>

namespace mlxn::io {

Status write_npy_f32(const std::string& path, const Shape& shape, std::span<const float> data) {
  if (!shape.valid() || static_cast<size_t>(shape.numel()) != data.size())
    return invalid_argument("npy", "shape ", shape, " does not match ", data.size(), " values");
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < shape.rank(); ++i) dict += std::to_string(shape[i]) + (shape.rank() == 1 || i + 1 < shape.rank() ? "," : "");
  dict += "), }";
  // Magic (6) + version (2) + header length (2) + dict, padded with spaces to a multiple of 64 ending in '\n'.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string head = "\x93NUMPY";
  head.push_back('\x01');
  head.push_back('\x00');
  head.push_back(static_cast<char>(dict.size() & 0xFF));
  head.push_back(static_cast<char>(dict.size() >> 8));
  head += dict;
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return Status(StatusCode::IoError, "[npy] cannot create " + path);
  if (std::fwrite(head.data(), 1, head.size(), f.get()) != head.size() ||
      std::fwrite(data.data(), sizeof(float), data.size(), f.get()) != data.size())
    return Status(StatusCode::IoError, "[npy] short write to " + path);
  return Status::ok();
}

}  // namespace mlxn::io
