#include "mlxn/core/kernel_registry.h"

#include <sstream>

namespace mlxn {

std::string KernelRegistry::key(std::initializer_list<DType> dtypes) {
  std::string k;
  for (DType t : dtypes) {
    if (!k.empty()) k += '.';
    k += dtype_name(t);
  }
  return k;
}

void KernelRegistry::add(std::string_view op, std::string_view variant) {
  std::lock_guard<std::mutex> lock(mu_);
  table_[std::string(op)].insert(std::string(variant));
}

bool KernelRegistry::supports(std::string_view op, std::string_view variant) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = table_.find(std::string(op));
  return it != table_.end() && it->second.count(std::string(variant)) > 0;
}

Status KernelRegistry::require(std::string_view op, std::string_view variant) const {
  if (supports(op, variant)) return Status::ok();
  std::ostringstream os;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = table_.find(std::string(op));
  if (it == table_.end()) return unsupported(op, "this device has no kernels for this op");
  size_t n = 0;
  for (const auto& v : it->second) {
    if (n++ == 12) {
      os << ", ...";
      break;
    }
    os << (n > 1 ? ", " : "") << v;
  }
  return unsupported(op, "variant ", variant, " is not built; built: ", os.str());
}

std::vector<std::string> KernelRegistry::variants(std::string_view op) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = table_.find(std::string(op));
  if (it == table_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> KernelRegistry::ops() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : table_) out.push_back(k);
  return out;
}

size_t KernelRegistry::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [k, v] : table_) n += v.size();
  return n;
}

}  // namespace mlxn
