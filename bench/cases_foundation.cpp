// Foundation cases: rms_norm and elementwise ops at large sizes (bandwidth) and 1 x 4096 (decode, launch-bound).
#include "harness.h"

namespace mlxn::bench {
namespace {

Status bench_rms_norm(Harness& h, DType t, int64_t rows, int64_t cols) {
  const double bytes = static_cast<double>(rows * cols) * 2 * static_cast<double>(dtype_size(t)) +
                       static_cast<double>(cols * dtype_size(t));
  MLXN_ASSIGN_OR_RETURN(Sets sets, make_sets(h, h.rotation(bytes), t, t, rows, cols, false));
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {cols}));
  MLXN_TRY(fill_random(w, 5));
  const size_t n = sets.in.size();
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    return ops::rms_norm(h.session(), sets.in[k % n], w, sets.out[k % n]);
  }));
  h.add({"rms_norm", shape_str(rows, cols), std::string(dtype_name(t)), n > 1 ? "rotated" : "", us, bytes});
  return Status::ok();
}

enum class Ew { Add, Mul, Scale, Cast };

Status bench_elementwise(Harness& h, Ew kind, DType tin, DType tout, int64_t rows, int64_t cols) {
  const bool binary = kind == Ew::Add || kind == Ew::Mul;
  const double bytes = static_cast<double>(rows * cols) *
                       ((binary ? 2.0 : 1.0) * static_cast<double>(dtype_size(tin)) + static_cast<double>(dtype_size(tout)));
  MLXN_ASSIGN_OR_RETURN(Sets sets, make_sets(h, h.rotation(bytes), tin, tout, rows, cols, binary));
  const size_t n = sets.in.size();
  const char* name = kind == Ew::Add ? "add" : kind == Ew::Mul ? "mul" : kind == Ew::Scale ? "scale" : "cast";
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) -> Status {
    const size_t i = static_cast<size_t>(k) % n;
    switch (kind) {
      case Ew::Add: return ops::add(h.session(), sets.in[i], sets.in2[i], sets.out[i]);
      case Ew::Mul: return ops::mul(h.session(), sets.in[i], sets.in2[i], sets.out[i]);
      case Ew::Scale: return ops::scale(h.session(), sets.in[i], Scalar::of(0.5f), sets.out[i]);
      case Ew::Cast: return ops::cast(h.session(), sets.in[i], sets.out[i]);
    }
    return Status::ok();
  }));
  std::string dt = std::string(dtype_name(tin));
  if (tout != tin) dt += "->" + std::string(dtype_name(tout));
  h.add({name, shape_str(rows, cols), dt, n > 1 ? "rotated" : "", us, bytes});
  return Status::ok();
}

const bool registered = [] {
  add_case("rms_norm", 10, [](Harness& h, const BenchEnv& e) { return bench_rms_norm(h, DType::BF16, e.big_rows, 4096); });
  add_case("rms_norm", 10, [](Harness& h, const BenchEnv& e) { return bench_rms_norm(h, DType::F32, e.big_rows, 4096); });
  add_case("rms_norm", 10, [](Harness& h, const BenchEnv&) { return bench_rms_norm(h, DType::BF16, 1, 4096); });
  add_case("add", 10, [](Harness& h, const BenchEnv& e) {
    return bench_elementwise(h, Ew::Add, DType::BF16, DType::BF16, e.big_rows, 4096);
  });
  add_case("mul", 10, [](Harness& h, const BenchEnv& e) {
    return bench_elementwise(h, Ew::Mul, DType::F32, DType::F32, e.big_rows, 4096);
  });
  add_case("scale", 10, [](Harness& h, const BenchEnv& e) {
    return bench_elementwise(h, Ew::Scale, DType::BF16, DType::BF16, e.big_rows, 4096);
  });
  add_case("cast", 10, [](Harness& h, const BenchEnv& e) {
    return bench_elementwise(h, Ew::Cast, DType::F32, DType::BF16, e.big_rows, 4096);
  });
  add_case("add", 10, [](Harness& h, const BenchEnv&) {
    return bench_elementwise(h, Ew::Add, DType::BF16, DType::BF16, 1, 4096);
  });
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
