// The table of built CUDA kernel variants: (op, variant key) -> launcher. Filled once from the generated instance
// list of the kernel set this build was configured with (src/cuda/instances/), so the registry and the dispatch
// always agree on what exists.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kernels/exec.h"

namespace mlxn::cuda {

class KernelTable {
 public:
  using AnyFn = void (*)();
  template <typename Fn>
  void add(std::string_view op, std::string_view key, Fn fn) {
    fns_[std::string(op) + "|" + std::string(key)] = reinterpret_cast<AnyFn>(fn);
    entries_.emplace_back(std::string(op), std::string(key));
  }
  // The launcher for (op, key), or nullptr when this build does not hold that variant.
  template <typename Fn>
  Fn find(std::string_view op, std::string_view key) const {
    auto it = fns_.find(std::string(op) + "|" + std::string(key));
    return it == fns_.end() ? nullptr : reinterpret_cast<Fn>(it->second);
  }
  const std::vector<std::pair<std::string, std::string>>& entries() const { return entries_; }

 private:
  std::unordered_map<std::string, AnyFn> fns_;
  std::vector<std::pair<std::string, std::string>> entries_;
};

// The process-wide table, filled on first use by fill_kernel_table (generated per kernel set).
const KernelTable& kernel_table();
void fill_kernel_table(KernelTable& t);

}  // namespace mlxn::cuda
