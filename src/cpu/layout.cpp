// Layout references: element-by-element (or row-by-row) byte moves, index math written out plainly.
#include "kernels/layout.h"

#include <cstring>

#include "cpu/common.h"

namespace mlxn::cpu {

Status transpose(const kern::TransposeParams& p, const ExecContext&) {
  const auto* src = static_cast<const char*>(p.src);
  auto* dst = static_cast<char*>(p.dst);
  const auto eb = static_cast<size_t>(p.elem_bytes);
  const int64_t n = p.shape[0] * p.shape[1] * p.shape[2] * p.shape[3];
  parallel_for(n, 1 << 14, [&](int64_t i) {
    int64_t rem = i, off = 0;
    for (int d = 3; d >= 0; --d) {
      off += (rem % p.shape[d]) * p.src_strides[d];
      rem /= p.shape[d];
    }
    std::memcpy(dst + static_cast<size_t>(i) * eb, src + static_cast<size_t>(off) * eb, eb);
  });
  return Status::ok();
}

Status parts(const kern::PartsParams& p, const ExecContext&) {
  auto* big = static_cast<char*>(p.big);
  parallel_for(p.rows, 64, [&](int64_t r) {
    for (int j = 0; j < p.n_parts; ++j) {
      char* b = big + r * p.big_stride + p.part_col[j];
      char* q = static_cast<char*>(p.part[j]) + r * p.part_stride[j];
      const auto n = static_cast<size_t>(p.part_bytes[j]);
      if (p.split) {
        std::memcpy(q, b, n);
      } else {
        std::memcpy(b, q, n);
      }
    }
  });
  return Status::ok();
}

Status gather(const kern::GatherParams& p, const ExecContext&) {
  auto* table = static_cast<char*>(p.table);
  auto* dense = static_cast<char*>(p.dense);
  const auto n = static_cast<size_t>(p.row_bytes);
  // Serial for scatter: with (invalid) duplicate indices the last one wins, deterministically.
  auto one = [&](int64_t i) {
    const int64_t r = p.idx[i];
    char* d = dense + i * p.dense_stride;
    const bool in = r >= 0 && r < p.table_rows;
    if (p.scatter) {
      if (in) std::memcpy(table + r * p.table_stride, d, n);
    } else if (in) {
      std::memcpy(d, table + r * p.table_stride, n);
    } else {
      std::memset(d, 0, n);
    }
  };
  if (p.scatter) {
    for (int64_t i = 0; i < p.n; ++i) one(i);
  } else {
    parallel_for(p.n, 64, one);
  }
  return Status::ok();
}

}  // namespace mlxn::cpu
