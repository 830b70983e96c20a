// RoPE cases: NeoX on [16384, 32, 128] bf16 (bandwidth against copy; out of place and in place), decode
// [1, 32, 128] in microseconds, and the fused per-head RMS norm + RoPE against rms_norm then rope at decode size.
#include "harness.h"

namespace mlxn::bench {
namespace {

struct RopeSet {
  std::vector<Buffer> x, y;
  Buffer pos, w;
};

Result<RopeSet> make_rope_set(Harness& h, int n_sets, int64_t T, int64_t H, int64_t D, DType t) {
  RopeSet r;
  for (int i = 0; i < n_sets; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(t, {T, H, D}));
    MLXN_TRY(fill_random(x, 31 + static_cast<uint64_t>(i)));
    MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(t, {T, H, D}));
    MLXN_TRY(y.fill_bytes(0));
    r.x.push_back(x);
    r.y.push_back(y);
  }
  MLXN_ASSIGN_OR_RETURN(r.pos, h.device().alloc(DType::I32, {T}));
  std::vector<int32_t> p(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) p[static_cast<size_t>(i)] = static_cast<int32_t>(i + 100);
  MLXN_TRY(r.pos.upload(p.data(), p.size() * 4));
  MLXN_ASSIGN_OR_RETURN(r.w, h.device().alloc(t, {D}));
  MLXN_TRY(fill_random(r.w, 3));
  return r;
}

Status bench_rope(Harness& h, int64_t T, int64_t H, int64_t D, DType t, ops::RopeLayout layout, bool in_place) {
  const double bytes = 2.0 * static_cast<double>(T * H * D * static_cast<int64_t>(dtype_size(t))) + 4.0 * T;
  MLXN_ASSIGN_OR_RETURN(RopeSet r, make_rope_set(h, h.rotation(bytes), T, H, D, t));
  ops::RopeParams p;
  p.layout = layout;
  p.base = 1e6f;
  const size_t n = r.x.size();
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    const size_t i = static_cast<size_t>(k) % n;
    return ops::rope(h.session(), r.x[i], r.pos, Buffer(), in_place ? r.x[i] : r.y[i], p);
  }));
  std::string note = layout == ops::RopeLayout::Neox ? "neox" : "normal";
  if (in_place) note += ", in place";
  if (n > 1) note += ", rotated";
  h.add({"rope", std::to_string(T) + "x" + std::to_string(H) + "x" + std::to_string(D), std::string(dtype_name(t)),
         note, us, bytes});
  return Status::ok();
}

// Fused per-head norm + rope, and the same as two ops (rms_norm over [T * H, D] rows, then rope).
Status bench_head_norm_rope(Harness& h, int64_t T, int64_t H, int64_t D, DType t) {
  const double bytes = 2.0 * static_cast<double>(T * H * D * static_cast<int64_t>(dtype_size(t)));
  MLXN_ASSIGN_OR_RETURN(RopeSet r, make_rope_set(h, h.rotation(bytes), T, H, D, t));
  const size_t n = r.x.size();
  const std::string shape = std::to_string(T) + "x" + std::to_string(H) + "x" + std::to_string(D);
  MLXN_ASSIGN_OR_RETURN(double fused, h.time_us([&](int k) {
    const size_t i = static_cast<size_t>(k) % n;
    return ops::rope_head_norm(h.session(), r.x[i], r.w, r.pos, Buffer(), r.y[i]);
  }));
  h.add({"rope_head_norm (fused)", shape, std::string(dtype_name(t)), "qk-norm + neox", fused, bytes});
  MLXN_ASSIGN_OR_RETURN(double two, h.time_us([&](int k) -> Status {
    const size_t i = static_cast<size_t>(k) % n;
    MLXN_ASSIGN_OR_RETURN(Buffer rows_x, r.x[i].reshape({T * H, D}));
    MLXN_ASSIGN_OR_RETURN(Buffer rows_y, r.y[i].reshape({T * H, D}));
    MLXN_TRY(ops::rms_norm(h.session(), rows_x, r.w, rows_y));
    return ops::rope(h.session(), r.y[i], r.pos, Buffer(), r.y[i]);
  }));
  h.add({"rms_norm + rope (2 ops)", shape, std::string(dtype_name(t)), "for comparison", two, bytes});
  return Status::ok();
}

const bool registered = [] {
  add_case("rope", 30, [](Harness& h, const BenchEnv& e) {
    return bench_rope(h, e.gpu ? 16384 : 1024, 32, 128, DType::BF16, ops::RopeLayout::Neox, false);
  });
  add_case("rope", 30, [](Harness& h, const BenchEnv& e) {
    return bench_rope(h, e.gpu ? 16384 : 1024, 32, 128, DType::BF16, ops::RopeLayout::Neox, true);
  });
  add_case("rope", 30, [](Harness& h, const BenchEnv& e) {
    return bench_rope(h, e.gpu ? 16384 : 1024, 32, 128, DType::BF16, ops::RopeLayout::Normal, false);
  });
  add_case("rope", 30, [](Harness& h, const BenchEnv&) {
    return bench_rope(h, 1, 32, 128, DType::BF16, ops::RopeLayout::Neox, true);
  });
  add_case("rope_head_norm", 30,
           [](Harness& h, const BenchEnv&) { return bench_head_norm_rope(h, 1, 32, 128, DType::BF16); });
  add_case("rope_head_norm", 30, [](Harness& h, const BenchEnv& e) {
    return bench_head_norm_rope(h, e.gpu ? 16384 : 1024, 32, 128, DType::BF16);
  });
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
