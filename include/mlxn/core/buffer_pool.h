// BufferPool: size-bucketed reuse of device memory for the many short-lived activations of a forward pass.
// Weights never go through it. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "mlxn/core/buffer.h"

namespace mlxn {

struct BufferPoolStats {
  uint64_t allocations = 0;   // alloc() calls that succeeded
  uint64_t reuses = 0;        // of those, served from the free lists
  uint64_t device_allocs = 0; // of those, new device allocations
  size_t bytes_reserved = 0;  // all memory the pool holds (free + in use)
  size_t bytes_in_use = 0;    // handed out and not yet returned
  size_t free_buffers = 0;
  size_t in_use_buffers = 0;
  uint64_t held_at_reset = 0; // buffers reset() could not take back because a handle was still alive
};

class BufferPool {
 public:
  explicit BufferPool(Device device);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A contiguous buffer of `shape` x `dtype`; its contents are whatever the last user left.
  Result<Buffer> alloc(DType dtype, const Shape& shape);
  // Returns one buffer (any view of it) to the free lists. The caller must not use it afterwards.
  Status release(const Buffer& buffer);
  // Returns every buffer handed out since the last reset whose handles have all been dropped; buffers still
  // referenced stay in use (counted in held_at_reset) so that reset never aliases live memory.
  void reset();
  // Frees the memory of the free lists.
  void trim();
  BufferPoolStats stats() const;

  // The bucket a request of `bytes` goes to: four buckets per power of two, so at most 25% is wasted.
  static size_t bucket_bytes(size_t bytes);

 private:
  Device device_;
  mutable std::mutex mu_;
  std::multimap<size_t, std::shared_ptr<detail::Storage>> free_;               // bucket bytes -> storage
  std::unordered_map<const detail::Storage*, std::shared_ptr<detail::Storage>> in_use_;
  BufferPoolStats stats_;
};

}  // namespace mlxn
