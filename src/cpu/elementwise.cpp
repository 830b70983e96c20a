// Elementwise and copy references: f32 arithmetic rounded once to the output dtype, indices decomposed per element.
#include <cstring>

#include "cpu/common.h"
#include "kernels/elementwise.h"

namespace mlxn::cpu {
namespace {

// Element offset of the i-th index (row-major over `shape`, rank dimensions) in a view with `strides`.
int64_t offset_of(int64_t i, int rank, const int64_t* shape, const int64_t* strides) {
  int64_t off = 0;
  for (int d = rank - 1; d >= 0; --d) {
    off += (i % shape[d]) * strides[d];
    i /= shape[d];
  }
  return off;
}

constexpr int64_t kMinPerThread = 1 << 14;

}  // namespace

Status binary(const kern::BinaryParams& p, const ExecContext&) {
  const bool add = p.op == kern::BinaryOp::Add;
  parallel_for(p.n, kMinPerThread, [&](int64_t i) {
    const int64_t j = p.b_same ? i : offset_of(i, p.rank, p.shape, p.b_strides);
    const float a = load_f32(p.a, p.ta, i), b = load_f32(p.b, p.tb, j);
    store_f32(p.out, p.tout, i, add ? a + b : a * b);
  });
  return Status::ok();
}

Status unary(const kern::UnaryParams& p, const ExecContext& ctx) {
  const float k = p.step_slot >= 0 ? f32_from_bits(ctx.step_params[p.step_slot]) : p.value;
  parallel_for(p.n, kMinPerThread, [&](int64_t i) {
    const float x = load_f32(p.x, p.tx, i);
    const float y = p.op == kern::UnaryOp::Scale ? x * k : p.op == kern::UnaryOp::AddScalar ? x + k : x;
    store_f32(p.out, p.tout, i, y);
  });
  return Status::ok();
}

Status copy(const kern::CopyParams& p, const ExecContext&) {
  if (p.flat) {
    if (p.flat_bytes != 0 && p.src != p.dst) std::memcpy(p.dst, p.src, p.flat_bytes);
    return Status::ok();
  }
  const auto* src = static_cast<const char*>(p.src);
  auto* dst = static_cast<char*>(p.dst);
  const auto eb = static_cast<size_t>(p.elem_bytes);
  parallel_for(p.n, kMinPerThread, [&](int64_t i) {
    const int64_t so = offset_of(i, p.rank, p.shape, p.src_strides);
    const int64_t d = offset_of(i, p.rank, p.shape, p.dst_strides);
    if (p.ts == p.td) {
      std::memcpy(dst + static_cast<size_t>(d) * eb, src + static_cast<size_t>(so) * eb, eb);
    } else {
      store_f32(dst, p.td, d, load_f32(src, p.ts, so));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
