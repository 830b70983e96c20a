#include "mlxn/core/buffer_pool.h"

#include <bit>

#include "core/backend.h"

namespace mlxn {

BufferPool::BufferPool(Device device) : device_(std::move(device)) {}

BufferPool::~BufferPool() = default;

size_t BufferPool::bucket_bytes(size_t bytes) {
  if (bytes <= 256) return 256;
  // Four buckets per octave: 2^k * {1, 1.25, 1.5, 1.75}.
  const int k = std::bit_width(bytes - 1) - 1;  // 2^k < bytes <= 2^(k+1)
  const size_t base = size_t{1} << k;
  const size_t quarter = base >> 2;
  return base + ((bytes - base + quarter - 1) / quarter) * quarter;
}

Result<Buffer> BufferPool::alloc(DType dtype, const Shape& shape) {
  if (!shape.valid()) return invalid_argument("buffer_pool", "invalid shape ", shape);
  MLXN_ASSIGN_OR_RETURN(size_t bytes, dtype_storage_bytes(dtype, shape.numel()));
  const size_t bucket = bucket_bytes(bytes);
  std::shared_ptr<detail::Storage> st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(bucket);
    if (it != free_.end()) {
      st = std::move(it->second);
      free_.erase(it);
      ++stats_.reuses;
    }
  }
  if (!st) {
    st = std::make_shared<detail::Storage>();
    st->device = device_.shared_impl();
    st->bytes = bucket;
    auto p = device_.impl()->allocate(bucket);
    if (!p.is_ok()) {
      // Give the free lists back to the device and try once more.
      trim();
      p = device_.impl()->allocate(bucket);
      if (!p.is_ok()) return p.status();
    }
    st->base = p.value();
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.device_allocs;
    stats_.bytes_reserved += bucket;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.allocations;
  stats_.bytes_in_use += bucket;
  in_use_.emplace(st.get(), st);
  return Buffer::from_storage(st, dtype, shape);
}

Status BufferPool::release(const Buffer& buffer) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(buffer.storage().get());
  if (it == in_use_.end()) return invalid_argument("buffer_pool", "release of a buffer this pool does not have in use");
  stats_.bytes_in_use -= it->second->bytes;
  free_.emplace(it->second->bytes, std::move(it->second));
  in_use_.erase(it);
  return Status::ok();
}

void BufferPool::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = in_use_.begin(); it != in_use_.end();) {
    if (it->second.use_count() > 1) {  // a handle or view is still alive somewhere
      ++stats_.held_at_reset;
      ++it;
      continue;
    }
    stats_.bytes_in_use -= it->second->bytes;
    free_.emplace(it->second->bytes, std::move(it->second));
    it = in_use_.erase(it);
  }
}

void BufferPool::trim() {
  std::multimap<size_t, std::shared_ptr<detail::Storage>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [b, st] : free_) stats_.bytes_reserved -= b;
    dropped.swap(free_);
  }
  // Storages free their memory as `dropped` goes out of scope, outside the lock.
}

BufferPoolStats BufferPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BufferPoolStats s = stats_;
  s.free_buffers = free_.size();
  s.in_use_buffers = in_use_.size();
  return s;
}

}  // namespace mlxn
