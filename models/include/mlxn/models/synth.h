// Random-weight GGUF files of real architectures and sizes, for benchmarks and tests without downloads
// (`mlxn synth`). Tensors carry llama.cpp's names and metadata keys, so the file loads like a converted model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/status.h"
#include "mlxn/models/config.h"

namespace mlxn::models {

// Presets: llama "8b" (Llama-3-8B), "tiny"; qwen3 "8b" (Qwen3-8B), "0.6b" (Qwen3-0.6B), "tiny"; gemma3 "4b"
// (Gemma-3-4B), "270m" (Gemma 3 270M), "tiny"; qwen2 "tiny". The tiny ones are 2 to 6 layers of width 256 for tests.
Result<ModelConfig> synth_preset(Arch arch, std::string_view preset);
std::vector<std::string> synth_preset_names(Arch arch);

struct SynthOptions {
  DType type = DType::Q4_0;  // every matrix (embedding and output included); norms stay f32
  uint64_t seed = 1;
  int threads = 0;                                              // quantizer threads; 0: all hardware threads
  std::function<void(uint64_t done, uint64_t total)> progress;  // elements written
};

// Writes `c` as a GGUF with random weights: matrices uniform with standard deviation 1 / sqrt(fan_in), norm
// weights near 1 (in the file's convention), biases small. A matrix whose rows are not a whole number of `type`
// blocks falls back to Q8_0, then F16. Returns the file size.
Result<uint64_t> write_synth_gguf(const ModelConfig& c, const std::string& path, const SynthOptions& o = {});

}  // namespace mlxn::models
