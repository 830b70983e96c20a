#include "mlxn/core/buffer.h"

#include <limits>

#include "core/backend.h"

namespace mlxn {

detail::Storage::~Storage() {
  if (owned && base != nullptr && device) device->deallocate(base);
}

namespace {

bool add_overflows(size_t a, size_t b) { return a > std::numeric_limits<size_t>::max() - b; }

// Bytes from element 0 to one past the last reachable element, or an error.
Result<size_t> extent_bytes(std::string_view op, DType dtype, const Shape& shape, const Strides& strides,
                            bool contiguous) {
  if (!shape.valid()) return invalid_argument(op, "invalid shape ", shape);
  const int64_t n = shape.numel();
  if (contiguous || is_quantized(dtype)) return dtype_storage_bytes(dtype, n);
  if (n == 0) return size_t{0};
  const size_t es = dtype_size(dtype);
  unsigned __int128 last = 0;
  for (int i = 0; i < shape.rank(); ++i) {
    if (strides[i] < 0) return invalid_argument(op, "negative stride ", strides[i], " in dimension ", i);
    last += static_cast<unsigned __int128>(shape[i] - 1) * static_cast<unsigned __int128>(strides[i]);
  }
  const unsigned __int128 bytes = (last + 1) * es;
  if (bytes > std::numeric_limits<size_t>::max()) return invalid_argument(op, "view extent overflows");
  return static_cast<size_t>(bytes);
}

}  // namespace

Device Buffer::device() const { return Device(storage_ ? storage_->device : nullptr); }
Backend Buffer::backend() const { return storage_ ? storage_->device->props().backend : Backend::Cpu; }

size_t Buffer::nbytes() const {
  auto r = extent_bytes("buffer", dtype_, shape_, strides_, is_contiguous());
  return r.is_ok() ? r.value() : 0;
}

bool Buffer::is_contiguous() const {
  int64_t acc = 1;
  for (int i = shape_.rank() - 1; i >= 0; --i) {
    if (shape_[i] != 1 && strides_[i] != acc) return false;
    acc *= shape_[i];
  }
  return true;
}

void* Buffer::data() const {
  if (!storage_) return nullptr;
  return static_cast<char*>(storage_->base) + offset_;
}

MemRange Buffer::range() const {
  if (!storage_) return {};
  return {storage_.get(), offset_, offset_ + nbytes()};
}

size_t Buffer::storage_bytes() const { return storage_ ? storage_->bytes : 0; }

Result<Buffer> Buffer::view(size_t byte_offset, DType dtype, const Shape& shape) const {
  return view_strided(byte_offset, dtype, shape, contiguous_strides(shape));
}

Result<Buffer> Buffer::view_strided(size_t byte_offset, DType dtype, const Shape& shape,
                                    const Strides& strides) const {
  if (!storage_) return invalid_argument("view", "view of an empty buffer");
  if (!shape.valid()) return invalid_argument("view", "invalid shape ", shape);
  Buffer out;
  out.storage_ = storage_;
  out.dtype_ = dtype;
  out.shape_ = shape;
  out.strides_ = strides;
  const bool contiguous = out.is_contiguous();
  if (is_quantized(dtype)) {
    if (!contiguous) return invalid_argument("view", "a ", dtype, " view must be contiguous");
    if (shape.rank() > 0 && shape.back() % dtype_info(dtype).block_elems != 0)
      return invalid_argument("view", "last dimension ", shape.back(), " is not a whole number of ", dtype,
                              " blocks of ", dtype_info(dtype).block_elems);
  }
  MLXN_ASSIGN_OR_RETURN(size_t bytes, extent_bytes("view", dtype, shape, strides, contiguous));
  if (add_overflows(offset_, byte_offset) || add_overflows(offset_ + byte_offset, bytes) ||
      offset_ + byte_offset + bytes > storage_->bytes)
    return Status(StatusCode::OutOfRange,
                  detail::cat("[view] ", shape, " ", dtype, " at byte offset ", offset_, " + ", byte_offset,
                              " needs ", bytes, " bytes; the storage has ", storage_->bytes));
  if (!is_quantized(dtype) && (offset_ + byte_offset) % dtype_size(dtype) != 0)
    return invalid_argument("view", "byte offset ", offset_ + byte_offset, " is not a multiple of the ", dtype,
                            " element size");
  out.offset_ = offset_ + byte_offset;
  return out;
}

Result<Buffer> Buffer::reshape(const Shape& shape) const {
  if (!is_contiguous()) return invalid_argument("reshape", "reshape of a non-contiguous view ", shape_);
  if (!shape.valid() || shape.numel() != numel())
    return invalid_argument("reshape", "cannot reshape ", shape_, " to ", shape);
  return view(0, dtype_, shape);
}

Result<Buffer> Buffer::slice(int dim, int64_t start, int64_t count) const {
  if (dim < 0 || dim >= rank()) return invalid_argument("slice", "dimension ", dim, " of a rank-", rank(), " view");
  if (start < 0 || count < 0 || start > shape_[dim] || count > shape_[dim] - start)
    return Status(StatusCode::OutOfRange, detail::cat("[slice] rows [", start, ", ", start + count,
                                                      ") of dimension ", dim, " with ", shape_[dim]));
  Shape s = shape_;
  s[dim] = count;
  if (is_quantized(dtype_)) {
    if (!is_contiguous()) return invalid_argument("slice", "slice of a non-contiguous ", dtype_, " view");
    if (dim == rank() - 1) return invalid_argument("slice", "slicing inside the blocks of a ", dtype_, " row");
    for (int i = 0; i < dim; ++i)
      if (shape_[i] != 1) return invalid_argument("slice", "a ", dtype_, " view can only be sliced on its outer dimension");
    Shape inner = shape_;
    for (int i = 0; i <= dim; ++i) inner[i] = 1;
    MLXN_ASSIGN_OR_RETURN(size_t inner_bytes, dtype_storage_bytes(dtype_, inner.numel()));
    return view(static_cast<size_t>(start) * inner_bytes, dtype_, s);
  }
  return view_strided(static_cast<size_t>(start * strides_[dim]) * dtype_size(dtype_), dtype_, s, strides_);
}

Status Buffer::upload(const void* src, size_t bytes) const {
  if (!storage_) return invalid_argument("upload", "upload to an empty buffer");
  if (!is_contiguous()) return invalid_argument("upload", "upload to a non-contiguous view");
  if (bytes != nbytes())
    return invalid_argument("upload", bytes, " bytes given for a ", shape_, " ", dtype_, " view of ", nbytes(),
                            " bytes");
  if (bytes == 0) return Status::ok();
  return storage_->device->copy_to_device(data(), src, bytes);
}

Status Buffer::download(void* dst, size_t bytes) const {
  if (!storage_) return invalid_argument("download", "download from an empty buffer");
  if (!is_contiguous()) return invalid_argument("download", "download from a non-contiguous view");
  if (bytes != nbytes())
    return invalid_argument("download", bytes, " bytes asked of a ", shape_, " ", dtype_, " view of ", nbytes(),
                            " bytes");
  if (bytes == 0) return Status::ok();
  return storage_->device->copy_to_host(dst, data(), bytes);
}

Status Buffer::fill_bytes(uint8_t value) const {
  if (!storage_) return invalid_argument("fill_bytes", "empty buffer");
  const MemRange r = range();
  if (r.end == r.begin) return Status::ok();
  return storage_->device->fill(static_cast<char*>(storage_->base) + r.begin, value, r.end - r.begin);
}

Result<Buffer> Buffer::wrap(const Device& device, void* ptr, size_t bytes, DType dtype, const Shape& shape,
                            std::shared_ptr<void> keep_alive) {
  if (device.impl() == nullptr) return invalid_argument("wrap", "no device");
  if (ptr == nullptr && bytes != 0) return invalid_argument("wrap", "null pointer");
  auto st = std::make_shared<detail::Storage>();
  st->device = device.shared_impl();
  st->base = ptr;
  st->bytes = bytes;
  st->owned = false;
  st->keep_alive = std::move(keep_alive);
  Buffer whole = from_storage(st, DType::U8, Shape{static_cast<int64_t>(bytes)});
  return whole.view(0, dtype, shape);
}

Buffer Buffer::from_storage(std::shared_ptr<detail::Storage> storage, DType dtype, const Shape& shape) {
  Buffer b;
  b.storage_ = std::move(storage);
  b.dtype_ = dtype;
  b.shape_ = shape;
  b.strides_ = contiguous_strides(shape);
  return b;
}

}  // namespace mlxn
