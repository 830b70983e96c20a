// Decode-step fusions on CUDA (models/include/mlxn/models/model.h): the same tiny model with the fusions on and off,
// both through captured decode graphs, and the fused graph's smaller node count. Exercises the fused q|k|v and
// gate|up matmuls on views of one weight allocation, the single RoPE over q|k, add_rms_norm with an f16 / bf16
// block output into the f32 stream, and (quantized weights) the norms and residual adds inside the matmuls.
#include <gtest/gtest.h>

#include "mlxn/models/model.h"
#include "mlxn/models/synth.h"
#include "models/model_test_util.h"
#include "test_util.h"

namespace mlxn {
namespace {

using models::Arch;

std::unique_ptr<models::Model> load(const std::string& path, const Device& dev, DType act, bool fuse) {
  return test::load_model(path, dev, test::model_options(32, 128, act, fuse));
}

using test::logits_of;

struct Case {
  Arch arch;
  DType weights;
  DType act;
};

class GpuModelFuse : public ::testing::TestWithParam<Case> {};

// Float weights: the fused and unfused steps run the same arithmetic except the order of f32 reductions in the norms
// (the add_rms_norm kernel instead of add + rms_norm), which can move an f16 / bf16 activation by one ulp: a direct
// bound. Quantized weights: the decode step's matmuls also normalise x themselves (ops::MatmulFusion), so x is
// quantized to int8 from f32 values rather than from the f16 / bf16-rounded norm output; the two int8 roundings
// differ by up to half a code per element, as large as the error itself. There the check is against the CPU
// backend's float64 model: the fused step may not be less accurate than the unfused one (at most 1.5x its error plus
// a floor of a quarter of the direct bound).
TEST_P(GpuModelFuse, FusedGraphEqualsUnfusedGraph) {
  MLXN_CUDA_DEVICE_OR_SKIP(dev);
  const Case c = GetParam();
  if (is_quantized(c.weights) && !dev.kernels().supports("qmatmul", KernelRegistry::key({c.weights, c.act})))
    GTEST_SKIP() << "qmatmul " << KernelRegistry::key({c.weights, c.act}) << " is not in this build's kernel set";
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(seed);
  test::TmpDir tmp;
  const std::string path = tmp.file("model.gguf");
  auto preset = test::write_tiny_gguf(c.arch, c.weights, seed, path);
  ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
  auto plain = load(path, dev, c.act, false), fused = load(path, dev, c.act, true);
  ASSERT_TRUE(plain && fused);
  const bool quantized = is_quantized(c.weights);
  std::unique_ptr<models::Model> ref = quantized ? load(path, Device::cpu(), DType::F32, true) : nullptr;
  ASSERT_TRUE(!quantized || ref);
  ASSERT_TRUE(fused->weights().layers[0].wqkv.valid());
  std::mt19937_64 g(seed);
  std::vector<int32_t> toks(24);
  for (auto& t : toks) t = static_cast<int32_t>(g() % static_cast<uint64_t>(preset->n_vocab));
  const auto prompt = std::span(toks).first(16);
  ASSERT_TRUE(plain->prefill(prompt).is_ok());
  ASSERT_TRUE(fused->prefill(prompt).is_ok());
  if (ref) {
    ASSERT_TRUE(ref->prefill(prompt).is_ok());
  }
  const double tol = c.act == DType::BF16 ? 1e-2 : 4e-3;
  auto check = [&](const std::string& what) {
    const auto lf = logits_of(*fused), lp = logits_of(*plain);
    if (!ref) {
      EXPECT_LT(test::rel_l2(lf, lp), tol) << what;
      return;
    }
    const auto lr = logits_of(*ref);
    const double ef = test::rel_l2(lf, lr), ep = test::rel_l2(lp, lr);
    EXPECT_LE(ef, 1.5 * ep + tol / 4) << what << ": fused " << ef << ", unfused " << ep << " from the CPU";
  };
  check("prefill");
  auto gp = plain->capture_decode();
  auto gf = fused->capture_decode();
  ASSERT_TRUE(gp.is_ok() && gf.is_ok());
  EXPECT_LT(gf->op_count(), gp->op_count());
  for (size_t i = prompt.size(); i < toks.size(); ++i) {
    ASSERT_TRUE(plain->set_token(toks[i]).is_ok());
    ASSERT_TRUE(fused->set_token(toks[i]).is_ok());
    ASSERT_TRUE(plain->replay_decode(*gp).is_ok());
    ASSERT_TRUE(fused->replay_decode(*gf).is_ok());
    if (ref) {
      ASSERT_TRUE(ref->decode(toks[i]).is_ok());
    }
    check("token " + std::to_string(i));
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, GpuModelFuse,
                         ::testing::Values(Case{Arch::Llama, DType::F16, DType::F16},
                                           Case{Arch::Llama, DType::Q4_0, DType::F16},
                                           Case{Arch::Qwen2, DType::F16, DType::F16},
                                           Case{Arch::Qwen3, DType::Q8_0, DType::BF16},
                                           Case{Arch::Gemma3, DType::F32, DType::BF16}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(models::arch_name(i.param.arch)) + "_" +
                                  std::string(dtype_name(i.param.weights)) + "_" + std::string(dtype_name(i.param.act));
                         });

}  // namespace
}  // namespace mlxn
