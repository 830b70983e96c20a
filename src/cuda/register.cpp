#include "cuda/kernel_table.h"
#include "cuda/launch.h"

namespace mlxn::cuda {

const KernelTable& kernel_table() {
  static const KernelTable table = [] {
    KernelTable t;
    fill_kernel_table(t);
    return t;
  }();
  return table;
}

void register_kernels(KernelRegistry& r) {
  for (const auto& [op, key] : kernel_table().entries()) r.add(op, key);
}

}  // namespace mlxn::cuda
