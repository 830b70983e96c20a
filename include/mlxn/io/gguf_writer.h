// GGUF v3 writer: metadata of every value type and tensors, written with the data section aligned. Used by
// `mlxn quantize` and by the tests to build valid files.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"
#include "mlxn/io/gguf.h"

namespace mlxn::io {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);

  // Scalars and strings.
  void set_u8(const std::string& key, uint8_t v);
  void set_i8(const std::string& key, int8_t v);
  void set_u16(const std::string& key, uint16_t v);
  void set_i16(const std::string& key, int16_t v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_i64(const std::string& key, int64_t v);
  void set_f32(const std::string& key, float v);
  void set_f64(const std::string& key, double v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  // Arrays.
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  void set_array_u32(const std::string& key, const std::vector<uint32_t>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_string(const std::string& key, const std::vector<std::string>& v);
  // Any parsed value (nested arrays included), e.g. to copy metadata from another file.
  void set_value(const std::string& key, const GgufValue& v);

  // A tensor of ggml type `ggml_type` and outermost-first `shape`; `data` is copied and must be its exact size.
  Status add_tensor(const std::string& name, uint32_t ggml_type, const Shape& shape, std::span<const uint8_t> data);

  // The whole file as bytes, or written to `path`.
  std::vector<uint8_t> bytes() const;
  Status write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    uint32_t type;
    Shape shape;
    std::vector<uint8_t> data;
  };
  // One key's type and value bytes; setting a key again replaces its value in place.
  struct Entry {
    std::string key;
    std::vector<uint8_t> value;
  };
  void put(const std::string& key, std::vector<uint8_t> value);
  std::vector<Entry> entries_;
  uint32_t alignment_;
  std::vector<Tensor> tensors_;
};

}  // namespace mlxn::io
