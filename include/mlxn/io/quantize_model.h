// Model quantization (`mlxn quantize`): a float GGUF file or a safetensors checkpoint in, a GGUF v3 file out with the
// weight matrices in a GGML block format, either one type for every matrix ("pure") or llama.cpp's per-tensor
// mixtures (Q4_K_M and friends). Also the streaming GGUF writer it uses and the synthetic-model writer of
// `mlxn bench-load --synth`. docs/QUANT.md ("The quantize tool") describes the rules.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"
#include "mlxn/io/gguf_writer.h"

namespace mlxn::io {

// How each matrix's type is chosen. Pure: every quantizable matrix gets the target type. Llama: llama.cpp's
// llama_tensor_get_type rules for the target's file type (output / tied embeddings, attn_v, ffn_down, ...).
enum class QuantRecipe : uint8_t { Pure, Llama };
std::string_view quant_recipe_name(QuantRecipe r);  // "pure", "llama"
std::optional<QuantRecipe> quant_recipe_from_name(std::string_view name);

// A parsed --type: a block or float type (Q4_0, Q4_K, IQ4_NL, MXFP4, F16, ...) or a llama.cpp mixture name (Q4_K_M,
// Q4_K_S, Q5_K_M, Q5_K_S, Q3_K_S, Q3_K_M, Q3_K_L, MXFP4_MOE). Names are case-insensitive.
struct QuantTarget {
  std::string name;        // as llama.cpp spells it: "Q4_K_M", "Q8_0", "IQ4_NL"
  DType default_type;      // the type most matrices get
  uint32_t file_type = 0;  // general.file_type (llama_ftype)
  bool mixture = false;    // a mixture name (its default recipe is Llama)
  QuantRecipe recipe = QuantRecipe::Pure;
};
// `recipe` overrides the default (Pure for a type, Llama for a mixture). Unknown names, types without a reference
// quantizer (IQ4_XS) and activation-only types (Q8_1, Q8_K) are InvalidArgument naming the accepted names.
Result<QuantTarget> parse_quant_target(std::string_view type, std::optional<QuantRecipe> recipe = std::nullopt);
// "Q4_0 Q4_1 ... Q4_K_M ...": the accepted --type names, for usage messages.
std::string quant_target_names();

// One tensor of the output file and where it came from.
struct QuantizedTensor {
  std::string name;         // in the output (llama.cpp name where the source's names were mapped)
  std::string source_name;  // in the input
  Shape shape;              // outermost first
  std::string source_type;  // "f16", "bf16", "q8_0", "mlx-affine-4bit"
  uint32_t ggml_type = 0;   // in the output
  bool converted = false;   // false: bytes copied verbatim (possibly with rows permuted)
  std::string note;         // why the type differs from the target's default, or why the tensor was kept
  uint64_t source_bytes = 0;
  uint64_t bytes = 0;  // in the output
};

struct QuantizeProgress {
  size_t index = 0;  // tensor being processed (0-based), of `count`
  size_t count = 0;
  const QuantizedTensor* tensor = nullptr;
  bool tensor_done = false;        // false: an update while a large tensor is in progress (at most ~10/s)
  uint64_t source_bytes_done = 0;  // over all tensors so far
  uint64_t source_bytes_total = 0;
  uint64_t bytes_written = 0;
  double seconds = 0;
};

struct QuantizeOptions {
  std::string type;                   // see QuantTarget
  std::optional<QuantRecipe> recipe;  // default: the target's
  int threads = 0;                    // quantizing rows; 0: all hardware threads
  bool allow_requantize = false;      // accept quantized sources (GGML blocks, MLX affine): dequantize first
  bool keep_hf_names = false;         // safetensors: keep Hugging Face names even for llama-family models
  bool dry_run = false;               // plan only: choose the types, write nothing
  std::function<void(const QuantizeProgress&)> progress;  // called on the calling thread
};

struct QuantizeResult {
  std::string input_format;  // "gguf", "safetensors"
  std::string architecture;  // general.architecture written ("" if none)
  QuantTarget target;
  bool names_mapped = false;             // safetensors names were mapped to llama.cpp names
  std::vector<QuantizedTensor> tensors;  // in file order
  std::vector<std::string> warnings;     // things not converted (tokenizer, rope scaling, ...)
  uint64_t source_bytes = 0;             // tensor data in
  uint64_t bytes = 0;                    // tensor data out
  uint64_t file_bytes = 0;               // the whole output file (0 for a dry run)
  double seconds = 0;
};

// Reads `in` (a .gguf file, a .safetensors file, a *.index.json, or a checkpoint directory), writes `out`. The
// output is written to `out`.part and renamed when complete, so a failure never leaves a truncated `out`.
Result<QuantizeResult> quantize_model(const std::string& in, const std::string& out, const QuantizeOptions& opt);

// GGUF v3 written front to back without holding tensor data: declare every tensor, open(), then write each tensor's
// bytes in declaration order (in as many pieces as convenient); padding between tensors is inserted automatically.
// Metadata is set through a GgufWriter (its encoding of every value type is reused); general.alignment is managed here.
class GgufStreamWriter {
 public:
  explicit GgufStreamWriter(uint32_t alignment = 32);
  ~GgufStreamWriter();
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;

  GgufWriter& metadata() { return meta_; }
  uint32_t alignment() const { return alignment_; }
  // Before open(): a tensor of ggml type `ggml_type` and outermost-first `shape` (at most 4 dimensions).
  Status add_tensor_info(const std::string& name, uint32_t ggml_type, const Shape& shape);
  // Creates `path` and writes the header, metadata and tensor infos.
  Status open(const std::string& path);
  // The next bytes of the current tensor.
  Status write(std::span<const uint8_t> bytes);
  // Checks that every tensor was written in full, flushes and closes. Returns the file size.
  Result<uint64_t> close();

 private:
  struct Info {
    std::string name;
    uint32_t type;
    Shape shape;
    uint64_t bytes;
  };
  Status put(const void* p, size_t n);
  Status pad();
  Status advance();  // past every tensor already complete (zero-size ones included)
  GgufWriter meta_;
  uint32_t alignment_;
  std::vector<Info> infos_;
  std::FILE* f_ = nullptr;
  std::string path_;
  uint64_t pos_ = 0;      // bytes written to the file
  size_t current_ = 0;    // tensor being written
  uint64_t written_ = 0;  // of the current tensor
};

// A synthetic GGUF of about `bytes` bytes of tensor data for load benchmarks: a repeating set of Q4_0, Q8_0 and F16
// matrices (4096 wide) and F32 norms, filled with random bytes whose f16 scales and f16 elements are kept finite.
struct SyntheticModel {
  size_t tensors = 0;
  uint64_t bytes = 0;  // tensor data
  uint64_t file_bytes = 0;
};
Result<SyntheticModel> write_synthetic_gguf(const std::string& path, uint64_t bytes, uint64_t seed = 1,
                                            const std::function<void(uint64_t done, uint64_t total)>& progress = {});

}  // namespace mlxn::io
