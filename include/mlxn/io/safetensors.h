// safetensors reader: one file (8-byte header length, JSON header, data) or a checkpoint directory (sharded through
// model.safetensors.index.json), Hugging Face tensor names kept as they are, config.json, and MLX affine-quantized
// weights (`<module>.weight` packed uint32 + `.scales` + `.biases`, bits and group size from config.json with
// per-module overrides). Every header field is checked: dtype names, shapes, offsets against the data size and each
// other, byte counts against shapes. Errors are FormatError statuses naming the file and tensor.
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
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"
#include "mlxn/io/json_config.h"
#include "mlxn/io/mapped_file.h"
#include "mlxn/quant/affine.h"

namespace mlxn::io {

// Every dtype the format defines. Sub-byte types (F4, F6_*) pack elements into bits; C64 is a complex pair of f32.
enum class StDtype : uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64, C64, F4, F6_E2M3, F6_E3M2,
};
struct StDtypeInfo {
  std::string_view name;       // as the header spells it
  int bits;                    // per element
  std::optional<DType> dtype;  // the mlxn DType a Buffer of it gets; empty: raw bytes and f32 conversion only
  bool to_f32;                 // dequantize_tensor() converts it
};
const StDtypeInfo& st_dtype_info(StDtype t);
std::optional<StDtype> st_dtype_from_name(std::string_view name);

struct SafetensorsTensorInfo {
  std::string name;
  StDtype dtype = StDtype::F32;
  Shape shape;
  int64_t numel = 0;
  uint64_t begin = 0;  // byte range inside the data section (after the header)
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  static Result<SafetensorsFile> open(const std::string& path);
  static Result<SafetensorsFile> parse(std::shared_ptr<MappedFile> file);

  const std::string& path() const { return file_->path(); }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }  // "__metadata__"
  const std::vector<SafetensorsTensorInfo>& tensors() const { return tensors_; }
  const SafetensorsTensorInfo* tensor(std::string_view name) const;
  uint64_t data_offset() const { return data_offset_; }
  Result<std::span<const uint8_t>> tensor_data(std::string_view name) const;
  // A Buffer with the tensor's DType and shape (CPU: the mapping in place when aligned; CUDA: uploaded). Dtypes
  // without an mlxn DType (U64, F8, F4, F6, C64) are Unsupported here: use tensor_data or dequantize_tensor.
  Result<Buffer> load_tensor(std::string_view name, const Device& device) const;
  Result<std::vector<float>> dequantize_tensor(std::string_view name) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// config.json "quantization" (or "quantization_config") of an MLX checkpoint.
struct MlxQuantConfig {
  quant::AffineSpec defaults;
  std::string mode = "affine";
  // Per-module settings keyed by module path ("model.layers.0.mlp.down_proj"); nullopt: left unquantized.
  std::map<std::string, std::optional<quant::AffineSpec>, std::less<>> overrides;

  // The settings of a module or of one of its tensors ("...down_proj.weight" / ".scales" / ".biases"); an
  // override may name the module with or without a "language_model." prefix.
  std::optional<quant::AffineSpec> spec_for(std::string_view name) const;
  static Result<std::optional<MlxQuantConfig>> from_config(const JsonConfig& config);
};

// One MLX affine-quantized matrix, logical shape [rows, cols].
struct AffineWeight {
  std::string module;
  quant::AffineSpec spec;
  int64_t rows = 0, cols = 0;
  Buffer packed;  // uint32 [rows, cols * bits / 32]
  Buffer scales;  // [rows, cols / group_size], f16 / bf16 / f32 as stored
  Buffer biases;
};

class SafetensorsModel {
 public:
  // `path`: a .safetensors file, a *.index.json, or a directory holding model.safetensors.index.json,
  // model.safetensors, or any *.safetensors files (read in name order). config.json beside them is read if present.
  static Result<SafetensorsModel> open(const std::string& path);

  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  std::vector<std::string> tensor_names() const;  // sorted
  const SafetensorsTensorInfo* tensor(std::string_view name) const;
  const SafetensorsFile* shard_of(std::string_view name) const;
  Result<Buffer> load_tensor(std::string_view name, const Device& device) const;
  Result<std::vector<float>> dequantize_tensor(std::string_view name) const;

  const std::optional<JsonConfig>& config() const { return config_; }
  const std::optional<MlxQuantConfig>& mlx_quant() const { return mlx_quant_; }
  // True when `<module>.scales` exists (an affine-quantized module; `module` may end in ".weight").
  bool is_affine(std::string_view module) const;
  // The packed weight, scales and biases of `module`, checked against each other and the config.
  Result<AffineWeight> load_affine(std::string_view module, const Device& device) const;
  // The module's weight dequantized to f32 on the host, [rows, cols] row-major.
  Result<std::vector<float>> dequantize_affine(std::string_view module) const;

 private:
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, size_t, std::less<>> where_;
  std::optional<JsonConfig> config_;
  std::optional<MlxQuantConfig> mlx_quant_;
};

}  // namespace mlxn::io
