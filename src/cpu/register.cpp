// The CPU backend runs every dtype combination of every op; this lists them for the registry.
#include <string>

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
  // Attention family (src/cpu/attention.cpp): keys "q.kv.out.d<D>" for the head dims the CUDA build knows plus 32
  // (small test cases); kv_cache_write keys "k.v.cache".
  for (DType kv : {DType::F16, DType::BF16}) {
    for (DType a : floats) {
      for (DType b : floats) {
        r.add("kv_cache_write", KernelRegistry::key({a, b, kv}));
        for (int d : {32, 64, 80, 96, 128, 192, 256, 512})
          r.add("attention", KernelRegistry::key({a, kv, b}) + ".d" + std::to_string(d));
      }
    }
  }
  for (int t = 0; t < static_cast<int>(DType::Count_); ++t) {
    const auto d = static_cast<DType>(t);
    r.add("copy", KernelRegistry::key({d, d}));
  }
}

}  // namespace mlxn::cpu
