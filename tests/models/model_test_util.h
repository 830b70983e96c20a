// Helpers shared by the model tests (CPU and CUDA): loading a model with a failure reported as a test failure, its
// logits, and a tiny synthesized GGUF of an architecture.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mlxn/models/model.h"
#include "mlxn/models/synth.h"

namespace mlxn::test {

inline models::ModelOptions model_options(int64_t max_chunk, int64_t max_context, std::optional<DType> act = {},
                                          std::optional<bool> fuse = {}) {
  models::ModelOptions o;
  o.max_chunk = max_chunk;
  o.max_context = max_context;
  o.act_dtype = act;
  o.fuse = fuse;
  return o;
}

// models::Model::load; a failure is a test failure and gives nullptr.
inline std::unique_ptr<models::Model> load_model(const std::string& path, const Device& dev,
                                                 const models::ModelOptions& o) {
  auto m = models::Model::load(path, dev, o);
  EXPECT_TRUE(m.is_ok()) << path << ": " << m.status().to_string();
  return m.is_ok() ? std::move(m).value() : nullptr;
}

inline std::vector<float> logits_of(models::Model& m) {
  auto l = m.read_logits();
  EXPECT_TRUE(l.is_ok()) << l.status().to_string();
  return l.is_ok() ? l.value() : std::vector<float>{};
}

// Writes the "tiny" preset of `arch` with `type` weights drawn from `seed` to `path`; returns the preset.
inline Result<models::ModelConfig> write_tiny_gguf(models::Arch arch, DType type, uint64_t seed,
                                                   const std::string& path) {
  MLXN_ASSIGN_OR_RETURN(models::ModelConfig preset, models::synth_preset(arch, "tiny"));
  models::SynthOptions so;
  so.type = type;
  so.seed = seed;
  MLXN_TRY(models::write_synth_gguf(preset, path, so).status());
  return preset;
}

}  // namespace mlxn::test
