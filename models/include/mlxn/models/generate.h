// Text generation on a Model: prefill the prompt, then decode token by token with the captured decode graph (or
// eager steps), sampling on the device. Only the sampled token id crosses back to the host per step.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/status.h"
#include "mlxn/models/model.h"
#include "mlxn/ops/sample.h"

namespace mlxn::models {

// What generation needs from a tokenizer. The implementations (GGUF vocabularies, tokenizer.json) plug in here.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual Result<std::vector<int32_t>> encode(std::string_view text, bool add_special = true) const = 0;
  // The text of `ids` (for streaming, decode one id at a time; byte-level pieces may be incomplete UTF-8).
  virtual Result<std::string> decode(std::span<const int32_t> ids) const = 0;
  // End-of-generation ids (eos, eot, ...).
  virtual std::vector<int32_t> stop_ids() const { return {}; }
};

// A tokenizer for the model file at `path`, when one is available in this build (Unsupported until one is).
using TokenizerFactory = std::function<Result<std::unique_ptr<Tokenizer>>(const std::string& path)>;
void set_tokenizer_factory(TokenizerFactory f);
Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path);

struct GenerateOptions {
  int64_t n_predict = 128;
  ops::SampleParams sampling;     // temperature <= 0: greedy
  bool use_graph = true;          // false: eager decode steps (for comparison)
  int64_t prefill_chunk = 0;      // 0: the model's max_chunk
  std::vector<int32_t> stop_ids;  // stop after emitting one of these
  // Called with each generated token; return false to stop.
  std::function<bool(int32_t)> on_token;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated (not the prompt)
  int64_t n_prompt = 0;
  double prompt_seconds = 0;  // prefill + first sample, wall clock
  double gen_seconds = 0;     // the decode steps, wall clock
  double prompt_tps() const { return prompt_seconds > 0 ? static_cast<double>(n_prompt) / prompt_seconds : 0; }
  double gen_tps() const {
    return gen_seconds > 0 && tokens.size() > 1 ? static_cast<double>(tokens.size() - 1) / gen_seconds : 0;
  }
};

// Generates from `prompt` at the model's current position (call model.reset() first for a fresh context). The
// first token is sampled from the prefill's logits; each later one from a decode step.
Result<GenerateResult> generate(Model& model, std::span<const int32_t> prompt, const GenerateOptions& o);

}  // namespace mlxn::models
