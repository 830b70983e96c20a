// KernelRegistry: per device, the table of kernel variants this build holds (op x dtypes x ...), and launch
// attributes applied lazily the first time a kernel needs them. An unsupported variant is a Status, never an abort.
#pragma once

#include <initializer_list>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mlxn/core/dtype.h"
#include "mlxn/core/status.h"

namespace mlxn {

class KernelRegistry {
 public:
  // A variant key from its dtypes in the op's documented order: {BF16, BF16, F32} -> "bf16.bf16.f32".
  static std::string key(std::initializer_list<DType> dtypes);

  void add(std::string_view op, std::string_view variant);
  bool supports(std::string_view op, std::string_view variant) const;
  // Ok, or Unsupported naming the op, the variant and what this build has instead.
  Status require(std::string_view op, std::string_view variant) const;
  std::vector<std::string> variants(std::string_view op) const;
  std::vector<std::string> ops() const;
  size_t size() const;

  // Runs `apply` once per (kernel, dynamic shared memory) on this device, e.g. cudaFuncSetAttribute for more than
  // 48 KiB of shared memory; later calls return the first call's status.
  template <typename F>
  Status once(const void* kernel, size_t smem_bytes, F&& apply) {
    std::lock_guard<std::mutex> lock(mu_);
    auto k = std::make_pair(kernel, smem_bytes);
    auto it = applied_.find(k);
    if (it != applied_.end()) return it->second;
    Status s = apply();
    applied_.emplace(k, s);
    return s;
  }

 private:
  struct PairHash {
    size_t operator()(const std::pair<const void*, size_t>& p) const {
      return std::hash<const void*>()(p.first) ^ (std::hash<size_t>()(p.second) * 31u);
    }
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::set<std::string>> table_;
  std::unordered_map<std::pair<const void*, size_t>, Status, PairHash> applied_;
};

}  // namespace mlxn
