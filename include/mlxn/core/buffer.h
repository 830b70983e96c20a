// Buffer: device memory plus dtype, shape, strides and a byte offset. Cheap to copy (shared ownership of the
// storage); views share storage. Every accessor honours the view's offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "mlxn/core/device.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"

namespace mlxn {

namespace detail {
// One allocation. Views of it compare equal by storage for hazard tracking.
struct Storage {
  std::shared_ptr<DeviceImpl> device;
  void* base = nullptr;
  size_t bytes = 0;
  bool owned = true;  // false: wraps memory someone else frees (e.g. an mmap on the CPU)
  std::shared_ptr<void> keep_alive;  // for non-owned memory: whatever must outlive this storage
  ~Storage();
  Storage() = default;
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};
}  // namespace detail

// A half-open byte range [begin, end) of one storage: what an op declares it reads or writes.
struct MemRange {
  const void* storage = nullptr;
  size_t begin = 0;
  size_t end = 0;
  bool overlaps(const MemRange& o) const { return storage == o.storage && begin < o.end && o.begin < end; }
};

class Buffer {
 public:
  Buffer() = default;

  bool valid() const { return storage_ != nullptr; }
  Device device() const;
  Backend backend() const;
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  const Strides& strides() const { return strides_; }  // in elements
  int rank() const { return shape_.rank(); }
  int64_t numel() const { return shape_.numel(); }
  // Byte offset of element 0 from the start of the storage.
  size_t byte_offset() const { return offset_; }
  // Bytes of a contiguous view; for a strided view, the bytes between its first and one past its last element.
  size_t nbytes() const;
  bool is_contiguous() const;
  // Device address of element 0 (base + offset). On the CPU it is a host address.
  void* data() const;
  template <typename T>
  T* data_as() const { return static_cast<T*>(data()); }
  // The bytes this view can touch, for hazard tracking.
  MemRange range() const;
  size_t storage_bytes() const;
  const void* storage_id() const { return storage_.get(); }

  // A contiguous view of `shape` elements of `dtype` starting `byte_offset` bytes after this view's element 0.
  // Out-of-range views are an OutOfRange status.
  Result<Buffer> view(size_t byte_offset, DType dtype, const Shape& shape) const;
  // A strided view (strides in elements, non-negative); every reachable element must lie inside the storage.
  Result<Buffer> view_strided(size_t byte_offset, DType dtype, const Shape& shape, const Strides& strides) const;
  // Same elements, another shape with the same element count (contiguous views only).
  Result<Buffer> reshape(const Shape& shape) const;
  // Rows [start, start + count) along dimension 0 (dimension `dim` in general), keeping the strides.
  Result<Buffer> slice(int dim, int64_t start, int64_t count) const;
  // The same storage seen as a flat range of bytes is not offered: use view().

  // Host copies of a contiguous view; they block until done. Finish any session work that touches the buffer first.
  // Large CUDA uploads go through pinned staging.
  Status upload(const void* src, size_t bytes) const;
  Status download(void* dst, size_t bytes) const;
  // Fills the view's bytes with a repeated 8-bit value (e.g. 0xFF to poison test outputs).
  Status fill_bytes(uint8_t value) const;

  // Wraps memory the caller owns (device memory on CUDA, host memory on the CPU); `keep_alive` is held until the
  // last view is gone. Used by the weight loaders for mmaps.
  static Result<Buffer> wrap(const Device& device, void* ptr, size_t bytes, DType dtype, const Shape& shape,
                             std::shared_ptr<void> keep_alive);

  // Internal: a buffer over a fresh storage (used by Device::alloc and BufferPool).
  static Buffer from_storage(std::shared_ptr<detail::Storage> storage, DType dtype, const Shape& shape);
  const std::shared_ptr<detail::Storage>& storage() const { return storage_; }

 private:
  std::shared_ptr<detail::Storage> storage_;
  size_t offset_ = 0;
  DType dtype_ = DType::F32;
  Shape shape_;
  Strides strides_{};
};

}  // namespace mlxn
