#include "core/hazard.h"

#include <algorithm>

namespace mlxn::detail {

std::vector<HazardTracker::Dependency> HazardTracker::add(uint32_t op, std::span<const MemRange> reads,
                                                          std::span<const MemRange> writes) {
  std::vector<Dependency> deps;
  auto note = [&](uint32_t other, HazardKind k) {
    for (auto& d : deps) {
      if (d.op == other) {
        d.kinds |= static_cast<uint8_t>(k);
        return;
      }
    }
    deps.push_back({other, static_cast<uint8_t>(k)});
  };
  for (const MemRange& r : reads) {
    if (r.begin >= r.end) continue;
    auto it = by_storage_.find(r.storage);
    if (it == by_storage_.end()) continue;
    for (const Access& a : it->second)
      if (a.write && a.begin < r.end && r.begin < a.end) note(a.op, HazardKind::Raw);
  }
  for (const MemRange& w : writes) {
    if (w.begin >= w.end) continue;
    auto it = by_storage_.find(w.storage);
    if (it == by_storage_.end()) continue;
    for (const Access& a : it->second)
      if (a.begin < w.end && w.begin < a.end) note(a.op, a.write ? HazardKind::Waw : HazardKind::War);
  }
  // Record this op's accesses. A write makes earlier accesses it fully covers redundant: any later op that
  // conflicts with them also conflicts with this write, which already waits for them.
  for (const MemRange& w : writes) {
    if (w.begin >= w.end) continue;
    auto& list = by_storage_[w.storage];
    std::erase_if(list, [&](const Access& a) { return a.op != op && w.begin <= a.begin && a.end <= w.end; });
    list.push_back({w.begin, w.end, op, true});
  }
  for (const MemRange& r : reads) {
    if (r.begin >= r.end) continue;
    by_storage_[r.storage].push_back({r.begin, r.end, op, false});
  }
  std::sort(deps.begin(), deps.end(), [](const Dependency& a, const Dependency& b) { return a.op < b.op; });
  return deps;
}

size_t HazardTracker::tracked_ranges() const {
  size_t n = 0;
  for (const auto& [k, v] : by_storage_) n += v.size();
  return n;
}

}  // namespace mlxn::detail
