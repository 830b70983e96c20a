// MLX affine-quantized checkpoints on CUDA (quantized matmul kernels, f16 activations) against the CPU running the
// dequantized dense checkpoint.
#include <gtest/gtest.h>

#include <filesystem>

#include "mlxn/core/kernel_registry.h"
#include "mlxn/models/model.h"
#include "models/mlx_quant_util.h"
#include "models/model_test_util.h"
#include "test_util.h"

namespace mlxn {
namespace {

namespace fs = std::filesystem;
using models::Arch;

struct Case {
  Arch arch;
  int bits, group_size;
};

class GpuMlxQuant : public ::testing::TestWithParam<Case> {};

using test::logits_of;

TEST_P(GpuMlxQuant, MatchesCpuDense) {
  MLXN_CUDA_DEVICE_OR_SKIP(dev);
  const auto [arch, bits, gs] = GetParam();
  const DType act = arch == Arch::Gemma3 ? DType::BF16 : DType::F16;
  const std::string key = "affine" + std::to_string(bits) + "." + std::string(dtype_name(act));
  if (!dev.kernels().supports("qmatmul", key))
    GTEST_SKIP() << "qmatmul " << key << " is not in this build's kernel set";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  const fs::path dir = fs::temp_directory_path() / ("mlxn_gpu_mlxq_" + std::to_string(seed));
  test::mlxq::write_pair(dir, arch, {bits, gs}, seed);
  models::ModelOptions o;
  o.max_chunk = 32;
  o.max_context = 64;
  auto gpu = models::Model::load((dir / "mlx").string(), dev, o);
  auto cpu = models::Model::load((dir / "dense").string(), Device::cpu(), o);
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  ASSERT_TRUE(cpu.is_ok()) << cpu.status().to_string();
  std::mt19937_64 g(seed);
  std::vector<int32_t> toks(40);
  for (auto& t : toks) t = static_cast<int32_t>(g() % static_cast<uint64_t>((*cpu)->config().n_vocab));
  const auto prompt = std::span(toks).first(34);
  ASSERT_TRUE((*gpu)->prefill(prompt).is_ok());
  ASSERT_TRUE((*cpu)->prefill(prompt).is_ok());
  // The last-position LM head and the decode steps (M = 1) quantize x to int8 per 32 (include/mlxn/ops/matmul.h):
  // up to 2.5e-2 measured.
  const double tol = act == DType::BF16 ? 4e-2 : 3.5e-2;
  EXPECT_LT(test::rel_l2(logits_of(**gpu), logits_of(**cpu)), tol);
  auto graph = (*gpu)->capture_decode();
  ASSERT_TRUE(graph.is_ok()) << graph.status().to_string();
  for (size_t i = 34; i < toks.size(); ++i) {
    ASSERT_TRUE((*cpu)->decode(toks[i]).is_ok());
    ASSERT_TRUE((*gpu)->set_token(toks[i]).is_ok());
    ASSERT_TRUE((*gpu)->replay_decode(*graph).is_ok());
    EXPECT_LT(test::rel_l2(logits_of(**gpu), logits_of(**cpu)), tol) << "token " << i;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(Tiny, GpuMlxQuant,
                         ::testing::Values(Case{Arch::Llama, 4, 64}, Case{Arch::Qwen2, 8, 32}, Case{Arch::Qwen3, 6, 64},
                                           Case{Arch::Gemma3, 4, 32}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(models::arch_name(i.param.arch)) + "_q" + std::to_string(i.param.bits) +
                                  "_g" + std::to_string(i.param.group_size);
                         });

}  // namespace
}  // namespace mlxn
