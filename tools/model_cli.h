// Helpers shared by the model subcommands (generate, bench, logits): argument parsing, the device flag, the default
// model (Gemma 3 270M Q4_K_M, fetched through pip by scripts/fetch_default_model.sh), loading with a progress bar.
#pragma once

#include <charconv>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "mlxn/core/device.h"
#include "mlxn/core/status.h"
#include "mlxn/models/model.h"

namespace mlxn::tok {
class Tokenizer;
}

namespace mlxn::cli {

template <typename T>
bool parse_num(const std::string& s, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    try {
      size_t n = 0;
      out = static_cast<T>(std::stod(s, &n));
      return n == s.size();
    } catch (...) {
      return false;
    }
  } else {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }
}

// "1, 2,3" -> {1, 2, 3}; `cmd` and `flag` name the error.
Result<std::vector<int32_t>> parse_ids(const std::string& s, const char* cmd, const char* flag);
// "cpu", "cuda" or "cuda:N".
Result<Device> open_device(const std::string& spec, const char* cmd);
// "cuda" where a CUDA device is visible, else "cpu".
std::string default_device();

// The name that stands for the default model in --model, and where that model lives:
// ${MLXN_MODEL_CACHE:-~/.cache/mlxn-models}/gemma3-270m-q4_k_m/gemma-3-270m-q4_k_m.gguf.
inline constexpr const char* kDefaultModelName = "gemma3-270m";
std::string default_model_path();
// `spec` as given to --model: empty or kDefaultModelName means the default model, which is fetched (through the
// script in the source tree, when this binary was built from one) if it is not in the cache yet. Anything else is a
// path and must exist. Errors say what to run.
Result<std::string> resolve_model(const std::string& spec);

// Model::load with a progress bar on stderr: the files are read once through the page cache first (the loader
// maps them), so the bar follows the disk; then the tensors go to the device.
Result<std::unique_ptr<models::Model>> load_model(const std::string& path, const Device& dev,
                                                  const models::ModelOptions& o, bool quiet = false);

// The tokenizer library's tokenizer for a GGUF file or a Hugging Face folder.
Result<std::unique_ptr<tok::Tokenizer>> load_tok(const std::string& path);

std::string mib(uint64_t bytes);  // "12.3 MiB"
// Peak resident set size of this process (the CPU backend's device memory is host memory).
uint64_t peak_rss_bytes();

}  // namespace mlxn::cli
