// The CPU backend runs every dtype combination of every op; this lists them for the registry.
#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

void register_kernels(KernelRegistry& r) {
  const DType floats[] = {DType::F32, DType::F16, DType::BF16};
  for (DType a : floats) {
    for (DType b : floats) {
      for (DType c : floats) {
        r.add("add", KernelRegistry::key({a, b, c}));
        r.add("mul", KernelRegistry::key({a, b, c}));
        r.add("rms_norm", KernelRegistry::key({a, b, c}));
      }
      r.add("scale", KernelRegistry::key({a, b}));
      r.add("add_scalar", KernelRegistry::key({a, b}));
      r.add("cast", KernelRegistry::key({a, b}));
      r.add("copy", KernelRegistry::key({a, b}));
      r.add("matmul", KernelRegistry::key({a, b}));  // (w, x)
    }
  }
  // Reductions, MoE routing and sampling (issue 6, part C): keyed by the input dtype (and the output's where it
  // is a float).
  for (DType a : floats) {
    for (const char* op : {"argmax", "topk", "argsort", "sample", "moe_route"}) r.add(op, KernelRegistry::key({a}));
    for (DType b : floats) {
      for (const char* op : {"row_sum", "cumsum", "moe_weighted_reduce"}) r.add(op, KernelRegistry::key({a, b}));
    }
  }
  r.add("moe_expert_lists", "i32");
  for (int t = 0; t < static_cast<int>(DType::Count_); ++t) {
    const auto d = static_cast<DType>(t);
    r.add("copy", KernelRegistry::key({d, d}));
  }
}

}  // namespace mlxn::cpu
