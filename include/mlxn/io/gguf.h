// GGUF (v2 and v3) reader: the header, every metadata value type (nested arrays included), tensor infos and the
// aligned data section, all read from an mmap with every count, length, dimension product and offset bounds- and
// overflow-checked. A malformed file is a FormatError naming the key or tensor at fault, never a crash.
//
// Shapes are outermost-first like every mlxn Shape: GGUF's ne[] is innermost-first, so a [rows, cols] matrix is
// stored as ne = {cols, rows} and comes back as Shape{rows, cols}.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"
#include "mlxn/io/mapped_file.h"

namespace mlxn::io {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u32", "string", "array", ...

// One metadata value. Strings and numeric array payloads point into the file mapping and stay valid while the
// GgufFile (or any copy of its mapping) lives.
class GgufValue {
 public:
  GgufType type() const { return type_; }
  bool is_array() const { return type_ == GgufType::Array; }

  // Typed access. Integers convert between widths and signedness when the value fits; float from f32, double from
  // f32 or f64; bool and string only from their own type. A mismatch is an InvalidArgument naming both types.
  template <typename T>
  Result<T> as() const;

  // Arrays: element type, element count, and element i as a value.
  GgufType elem_type() const { return elem_; }
  size_t size() const { return static_cast<size_t>(count_); }
  GgufValue at(size_t i) const;

  // "3", "\"llama\"", "[1, 2, 3, ... (32000 items)]": for listings; arrays show at most `max_items` elements.
  std::string to_string(size_t max_items = 8) const;

 private:
  friend class GgufParser;
  friend class GgufWriter;
  GgufType type_ = GgufType::U8;
  uint64_t u_ = 0;  // integer and bool values (signed ones sign-extended), f32/f64 bits
  std::string_view str_;
  GgufType elem_ = GgufType::U8;
  uint64_t count_ = 0;
  const uint8_t* raw_ = nullptr;             // numeric array elements, little-endian
  std::vector<std::string_view> strings_;    // string array elements
  std::vector<GgufValue> items_;             // nested array elements
};

struct GgufKv {
  std::string key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  uint32_t ggml_type = 0;
  std::string_view type_name;   // ggml's name of the type: "q4_K", "iq2_xs", ...
  std::optional<DType> dtype;   // empty: a ggml type this library does not decode (loading it is Unsupported)
  Shape shape;                  // outermost first
  int64_t numel = 0;
  uint64_t offset = 0;          // from the start of the data section
  uint64_t nbytes = 0;
};

class GgufFile {
 public:
  // Maps and parses `path`.
  static Result<GgufFile> open(const std::string& path);
  // Parses a file already in memory (tests, fuzzers).
  static Result<GgufFile> parse(std::shared_ptr<MappedFile> file);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  const std::string& path() const { return file_->path(); }
  const std::shared_ptr<MappedFile>& file() const { return file_; }

  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const GgufValue* find(std::string_view key) const;
  // get<uint32_t>("qwen3.block_count"), get<std::string>("general.architecture"),
  // get<std::vector<std::string>>("tokenizer.ggml.tokens"). A missing key is NotFound, a wrong type
  // InvalidArgument; both messages name the key.
  template <typename T>
  Result<T> get(std::string_view key) const;
  // general.architecture, or "" when absent.
  std::string architecture() const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* tensor(std::string_view name) const;
  // The raw bytes of a tensor inside the mapping.
  Result<std::span<const uint8_t>> tensor_data(std::string_view name) const;

  // The tensor as a Buffer on `device` with its own dtype and shape; block formats stay raw blocks. On the CPU the
  // Buffer wraps the mapping in place (zero copy, keeping the mapping alive) unless the data is misaligned for its
  // type; on CUDA it is uploaded (large uploads go through pinned staging).
  Result<Buffer> load_tensor(std::string_view name, const Device& device) const;
  // The tensor converted to f32 on the host (any decodable type).
  Result<std::vector<float>> dequantize_tensor(std::string_view name) const;

 private:
  friend class GgufParser;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKv> kvs_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace mlxn::io
