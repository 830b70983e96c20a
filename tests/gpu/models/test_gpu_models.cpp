// Model layer on CUDA against the CPU backend: tiny random models of each architecture (f32 weights, and Q4_0 /
// Q8_0 / Q4_K matrices), prefill logits, graph-replayed decode, and greedy generation.
#include <gtest/gtest.h>

#include <algorithm>

#include "mlxn/models/generate.h"
#include "mlxn/models/model.h"
#include "mlxn/models/synth.h"
#include "models/model_test_util.h"
#include "test_util.h"

namespace mlxn {
namespace {

using models::Arch;

std::unique_ptr<models::Model> load(const std::string& path, const Device& dev, std::optional<DType> act = {}) {
  return test::load_model(path, dev, test::model_options(32, 128, act));
}

std::vector<int32_t> random_tokens(size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(g() % static_cast<uint64_t>(vocab));
  return t;
}

using test::logits_of;

struct Case {
  Arch arch;
  DType weights;
  DType act;
};

class GpuModel : public ::testing::TestWithParam<Case> {};

std::string case_name(const ::testing::TestParamInfo<Case>& i) {
  return std::string(models::arch_name(i.param.arch)) + "_" + std::string(dtype_name(i.param.weights)) + "_" +
         std::string(dtype_name(i.param.act));
}

// CUDA (f16 / bf16 activations, tensor-core and quantized kernels) against the CPU (f32 activations, float64
// accumulation) on the same file: prefill over two chunks, then graph-replayed decode steps.
TEST_P(GpuModel, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(dev);
  const Case c = GetParam();
  // The ci kernel set builds quantized matmuls for f32 activations only.
  if (is_quantized(c.weights) && !dev.kernels().supports("qmatmul", KernelRegistry::key({c.weights, c.act})))
    GTEST_SKIP() << "qmatmul " << KernelRegistry::key({c.weights, c.act}) << " is not in this build's kernel set";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  test::TmpDir tmp;
  const std::string path = tmp.file("model.gguf");
  auto preset = test::write_tiny_gguf(c.arch, c.weights, seed, path);
  ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
  auto cpu = load(path, Device::cpu());
  auto gpu = load(path, dev, c.act);
  ASSERT_TRUE(cpu && gpu);
  // bf16 keeps 8 bits of mantissa; quantized matmuls on CUDA also round x to f16.
  const double tol = c.act == DType::BF16 ? 4e-2 : 1.5e-2;
  // Decode steps and the prefill's last-position LM head (M = 1) on quantized weights quantize x to int8 per 32
  // elements (the q8_1 scheme of ggml's mmvq; see include/mlxn/ops/matmul.h): measured up to 2.5e-2 on the tiny
  // models.
  const double dec_tol = is_quantized(c.weights) ? std::max(tol, 3.5e-2) : tol;
  const auto toks = random_tokens(40, preset->n_vocab, seed);
  const auto prompt = std::span(toks).first(34);  // two chunks of 32, longer than Gemma's window
  ASSERT_TRUE(cpu->prefill(prompt).is_ok());
  ASSERT_TRUE(gpu->prefill(prompt).is_ok());
  {
    const auto a = logits_of(*gpu), b = logits_of(*cpu);
    EXPECT_LT(test::rel_l2(a, b), dec_tol);
  }
  auto g = gpu->capture_decode();
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  EXPECT_GT(g->native_node_count(), 0u);
  for (size_t i = 34; i < toks.size(); ++i) {
    ASSERT_TRUE(cpu->decode(toks[i]).is_ok());
    ASSERT_TRUE(gpu->set_token(toks[i]).is_ok());
    ASSERT_TRUE(gpu->replay_decode(*g).is_ok());
    const auto a = logits_of(*gpu), b = logits_of(*cpu);
    EXPECT_LT(test::rel_l2(a, b), dec_tol) << "token " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, GpuModel,
    ::testing::Values(Case{Arch::Llama, DType::F32, DType::F16}, Case{Arch::Qwen2, DType::F32, DType::F16},
                      Case{Arch::Qwen3, DType::F32, DType::F16}, Case{Arch::Gemma3, DType::F32, DType::BF16},
                      Case{Arch::Gemma3, DType::F16, DType::F16}, Case{Arch::Llama, DType::Q4_0, DType::F16},
                      Case{Arch::Qwen3, DType::Q8_0, DType::BF16}, Case{Arch::Gemma3, DType::Q4_K, DType::F16}),
    case_name);

// Graph replay equals eager decode on CUDA too, and greedy generation through the graph follows the eager logits.
TEST(GpuModelGenerate, GraphEqualsEager) {
  MLXN_CUDA_DEVICE_OR_SKIP(dev);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  test::TmpDir tmp;
  const std::string path = tmp.file("model.gguf");
  auto preset = test::write_tiny_gguf(Arch::Qwen3, DType::F16, seed, path);  // dense weights: in every kernel set
  ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
  auto a = load(path, dev), b = load(path, dev);
  ASSERT_TRUE(a && b);
  const auto prompt = random_tokens(9, preset->n_vocab, seed);
  models::GenerateOptions o;
  o.n_predict = 12;
  o.sampling.temperature = 0.7f;
  o.sampling.top_k = 20;
  o.sampling.seed = seed;
  auto rg = models::generate(*a, prompt, o);
  ASSERT_TRUE(rg.is_ok()) << rg.status().to_string();
  o.use_graph = false;
  auto re = models::generate(*b, prompt, o);
  ASSERT_TRUE(re.is_ok()) << re.status().to_string();
  EXPECT_EQ(rg->tokens, re->tokens);
}

}  // namespace
}  // namespace mlxn
