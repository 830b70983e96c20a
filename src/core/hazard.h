// Finds read-after-write, write-after-read and write-after-write hazards between ops from the byte ranges they
// declare. Ranges are half-open; different storages never conflict; views of one storage do when they overlap.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "mlxn/core/buffer.h"

namespace mlxn::detail {

enum class HazardKind : uint8_t { None = 0, Raw = 1, War = 2, Waw = 4 };

class HazardTracker {
 public:
  struct Dependency {
    uint32_t op;
    uint8_t kinds;  // HazardKind bits
  };
  // Registers op `op` (ops are added in increasing order) and returns the earlier ops it must wait for.
  std::vector<Dependency> add(uint32_t op, std::span<const MemRange> reads, std::span<const MemRange> writes);
  void reset() { by_storage_.clear(); }
  size_t tracked_ranges() const;

 private:
  struct Access {
    size_t begin, end;
    uint32_t op;
    bool write;
  };
  std::unordered_map<const void*, std::vector<Access>> by_storage_;
};

}  // namespace mlxn::detail
