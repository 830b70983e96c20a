// Activations on CUDA against the CPU backend: every function and form, dtype mixes, odd widths, misaligned views.
#include "activation_cases.h"

namespace mlxn {
namespace {

TEST(GpuActivation, MatchesCpu) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (const auto& c : test::act_cases(true)) {
    SCOPED_TRACE(test::describe(c));
    auto cpu = test::run_act(Device::cpu(), c, seed);
    auto cuda = test::run_act(gpu, c, seed);
    ASSERT_TRUE(cpu.status.is_ok()) << cpu.status.to_string();
    ASSERT_TRUE(cuda.status.is_ok()) << cuda.status.to_string();
    // f32 functions (a few ulp) against double, each rounded once; an absolute floor for the tails near zero.
    EXPECT_LE(test::max_scaled_err(cuda.y, cpu.y, std::max(1e-6, 2 * test::atol_for(c.ty)), test::rtol_for(c.ty)), 1.0);
  }
}

TEST(GpuActivation, RegistryAgreesWithDispatch) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  for (DType tx : test::float_dtypes())
    for (DType ty : test::float_dtypes()) {
      auto x = gpu.alloc(tx, {2, 64}).value();
      auto y = gpu.alloc(ty, {2, 32}).value();
      ASSERT_TRUE(x.fill_bytes(0).is_ok());
      const bool listed = gpu.kernels().supports("swiglu", KernelRegistry::key({tx, ty}));
      EXPECT_TRUE(listed);
      Status st = ops::glu_split(s, ops::Activation::Silu, x, y);
      EXPECT_EQ(st.is_ok(), listed) << tx << " " << ty << ": " << st.to_string();
      for (const char* op : {"silu", "gelu", "gelu_tanh", "sigmoid", "softcap", "geglu", "geglu_tanh", "sigmoid_mul"})
        EXPECT_EQ(gpu.kernels().supports(op, KernelRegistry::key({tx, ty})), listed) << op;
    }
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
