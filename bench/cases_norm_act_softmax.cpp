// Norm, activation and softmax cases: 16384 x 4096 (bandwidth against the copy ceiling), long softmax rows
// (262144- and 151936-wide vocabularies) and 1 x 4096 decode calls (microseconds), including the fused
// add + rms_norm against add followed by rms_norm.
#include "harness.h"

namespace mlxn::bench {
namespace {

int64_t big(const BenchEnv& e) { return e.gpu ? 16384 : e.big_rows; }

// Input / output sets of `specs` (dtype, rows, cols) rotated past the L2 cache; w a shared [cols] weight.
struct Set {
  std::vector<Buffer> b;
};

Result<std::vector<Set>> make(Harness& h, const std::vector<std::tuple<DType, int64_t, int64_t>>& specs) {
  double bytes = 0;
  for (auto& [t, r, c] : specs) bytes += static_cast<double>(r * c) * static_cast<double>(dtype_size(t));
  std::vector<Set> sets(static_cast<size_t>(h.rotation(bytes)));
  uint64_t seed = 1;
  for (auto& s : sets)
    for (auto& [t, r, c] : specs) {
      MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(t, {r, c}));
      MLXN_TRY(fill_random(b, seed++));
      s.b.push_back(b);
    }
  return sets;
}

Status run(Harness& h, const std::string& op, int64_t rows, int64_t cols, DType t, double bytes,
           const std::vector<std::tuple<DType, int64_t, int64_t>>& specs,
           const std::function<Status(Session&, const Set&)>& body, const std::string& note = "") {
  MLXN_ASSIGN_OR_RETURN(std::vector<Set> sets, make(h, specs));
  const size_t n = sets.size();
  MLXN_ASSIGN_OR_RETURN(double us,
                        h.time_us([&](int k) { return body(h.session(), sets[static_cast<size_t>(k) % n]); }));
  std::string nt = n > 1 ? "rotated" : "";
  if (!note.empty()) nt = nt.empty() ? note : nt + ", " + note;
  h.add({op, shape_str(rows, cols), std::string(dtype_name(t)), nt, us, bytes});
  return Status::ok();
}

double sz(DType t) { return static_cast<double>(dtype_size(t)); }

Status bench_add_rms_norm(Harness& h, DType t, int64_t rows, int64_t cols, bool fused) {
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {cols}));
  MLXN_TRY(fill_random(w, 5));
  const double elems = static_cast<double>(rows * cols);
  // Minimum traffic of the operation (read x, r; write h, y), also for the unfused pair: the ratio shows the fusion.
  const double bytes = elems * 4 * sz(t) + static_cast<double>(cols) * sz(t);
  const std::vector<std::tuple<DType, int64_t, int64_t>> specs = {
      {t, rows, cols}, {t, rows, cols}, {t, rows, cols}, {t, rows, cols}};
  return run(
      h, fused ? "add_rms_norm" : "add+rms_norm", rows, cols, t, bytes, specs,
      [&](Session& s, const Set& q) -> Status {
        if (fused) return ops::add_rms_norm(s, q.b[0], q.b[1], w, q.b[2], q.b[3]);
        MLXN_TRY(ops::add(s, q.b[0], q.b[1], q.b[2]));
        return ops::rms_norm(s, q.b[2], w, q.b[3]);
      },
      fused ? "" : "unfused: add then rms_norm");
}

// The models' residual step: an f16 / bf16 block output r added to the f32 stream x (h = x + r, f32) and normed into
// y in r's dtype, fused (one add_rms_norm) or as add then rms_norm (what the models ran before).
Status bench_add_rms_norm_wide(Harness& h, DType tr, int64_t rows, int64_t cols, bool fused) {
  const DType f32 = DType::F32;
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(f32, {cols}));
  MLXN_TRY(fill_random(w, 5));
  // Minimum traffic: read x (f32) and r, write h (f32) and y (r's dtype).
  const double bytes = static_cast<double>(rows * cols) * (8 + 2 * sz(tr)) + static_cast<double>(cols) * 4;
  const std::vector<std::tuple<DType, int64_t, int64_t>> specs = {
      {f32, rows, cols}, {tr, rows, cols}, {f32, rows, cols}, {tr, rows, cols}};
  return run(
      h, fused ? "add_rms_norm" : "add+rms_norm", rows, cols, tr, bytes, specs,
      [&](Session& s, const Set& q) -> Status {
        if (fused) return ops::add_rms_norm(s, q.b[0], q.b[1], w, q.b[2], q.b[3]);
        MLXN_TRY(ops::add(s, q.b[0], q.b[1], q.b[2]));
        return ops::rms_norm(s, q.b[2], w, q.b[3]);
      },
      fused ? "x, h f32; r, y in the dtype" : "x, h f32; unfused: add then rms_norm");
}

Status bench_rms_norm_add(Harness& h, DType t, int64_t rows, int64_t cols) {
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {cols}));
  MLXN_TRY(fill_random(w, 5));
  const double bytes = static_cast<double>(rows * cols) * 3 * sz(t);
  return run(h, "rms_norm_add", rows, cols, t, bytes, {{t, rows, cols}, {t, rows, cols}, {t, rows, cols}},
             [&](Session& s, const Set& q) { return ops::rms_norm_add(s, q.b[0], w, q.b[1], q.b[2]); });
}

Status bench_layer_norm(Harness& h, DType t, int64_t rows, int64_t cols) {
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {cols}));
  MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(t, {cols}));
  MLXN_TRY(fill_random(w, 5));
  MLXN_TRY(fill_random(b, 6));
  const double bytes = static_cast<double>(rows * cols) * 2 * sz(t);
  return run(h, "layer_norm", rows, cols, t, bytes, {{t, rows, cols}, {t, rows, cols}},
             [&](Session& s, const Set& q) { return ops::layer_norm(s, q.b[0], w, b, q.b[1]); });
}

Status bench_group_rms_norm(Harness& h, DType t, int64_t rows, int64_t heads, int64_t head_dim) {
  MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {head_dim}));
  MLXN_TRY(fill_random(w, 5));
  const int64_t cols = heads * head_dim;
  const double bytes = static_cast<double>(rows * cols) * 2 * sz(t);
  return run(
      h, "group_rms_norm", rows, cols, t, bytes, {{t, rows, cols}, {t, rows, cols}},
      [&](Session& s, const Set& q) { return ops::group_rms_norm(s, q.b[0], w, q.b[1], head_dim); },
      "head_dim " + std::to_string(head_dim));
}

Status bench_l2_norm(Harness& h, DType t, int64_t rows, int64_t cols) {
  const double bytes = static_cast<double>(rows * cols) * 2 * sz(t);
  return run(h, "l2_norm", rows, cols, t, bytes, {{t, rows, cols}, {t, rows, cols}},
             [&](Session& s, const Set& q) { return ops::l2_norm(s, q.b[0], q.b[1]); });
}

enum class Act { Gelu, Silu, SwiGlu, SwiGluSplit, GeGluTanh, Softcap };

Status bench_act(Harness& h, Act a, DType t, int64_t rows, int64_t cols) {
  const double e = static_cast<double>(rows * cols);
  switch (a) {
    case Act::Gelu:
    case Act::Silu:
    case Act::Softcap:
      return run(h,
                 a == Act::Gelu   ? "gelu"
                 : a == Act::Silu ? "silu"
                                  : "softcap",
                 rows, cols, t, e * 2 * sz(t), {{t, rows, cols}, {t, rows, cols}}, [&](Session& s, const Set& q) {
                   if (a == Act::Softcap) return ops::softcap(s, q.b[0], q.b[1], 30.0f);
                   return a == Act::Gelu ? ops::gelu(s, q.b[0], q.b[1]) : ops::silu(s, q.b[0], q.b[1]);
                 });
    case Act::SwiGlu:
    case Act::GeGluTanh:
      return run(h, a == Act::SwiGlu ? "swiglu" : "geglu_tanh", rows, cols, t, e * 3 * sz(t),
                 {{t, rows, cols}, {t, rows, cols}, {t, rows, cols}}, [&](Session& s, const Set& q) {
                   return a == Act::SwiGlu ? ops::swiglu(s, q.b[0], q.b[1], q.b[2])
                                           : ops::geglu_tanh(s, q.b[0], q.b[1], q.b[2]);
                 });
    case Act::SwiGluSplit:
      return run(
          h, "swiglu", rows, cols, t, e * 3 * sz(t), {{t, rows, 2 * cols}, {t, rows, cols}},
          [&](Session& s, const Set& q) { return ops::glu_split(s, ops::Activation::Silu, q.b[0], q.b[1]); },
          "split gate_up [rows, 2F]");
  }
  return Status::ok();
}

Status bench_softmax(Harness& h, DType t, int64_t rows, int64_t cols, bool masked = false, bool log = false) {
  const double e = static_cast<double>(rows * cols);
  MLXN_ASSIGN_OR_RETURN(Buffer mask, h.device().alloc(t, {1, cols}));
  MLXN_TRY(mask.fill_bytes(0));
  return run(
      h, log ? "log_softmax" : "softmax", rows, cols, t, e * 2 * sz(t), {{t, rows, cols}, {t, rows, cols}},
      [&](Session& s, const Set& q) {
        const Buffer m = masked ? mask : Buffer();
        return log ? ops::log_softmax(s, q.b[0], m, q.b[1], {0.125f}) : ops::softmax(s, q.b[0], m, q.b[1], {0.125f});
      },
      masked ? "scale + [1, cols] mask" : "");
}

const bool registered = [] {
  const DType bf = DType::BF16, f32 = DType::F32;
  for (DType t : {bf, f32}) {
    add_case("add_rms_norm", 20,
             [t](Harness& h, const BenchEnv& e) { return bench_add_rms_norm(h, t, big(e), 4096, true); });
    add_case("add_rms_norm", 20,
             [t](Harness& h, const BenchEnv& e) { return bench_add_rms_norm(h, t, big(e), 4096, false); });
    add_case("rms_norm_add", 20, [t](Harness& h, const BenchEnv& e) { return bench_rms_norm_add(h, t, big(e), 4096); });
    add_case("layer_norm", 20, [t](Harness& h, const BenchEnv& e) { return bench_layer_norm(h, t, big(e), 4096); });
    add_case("l2_norm", 20, [t](Harness& h, const BenchEnv& e) { return bench_l2_norm(h, t, big(e), 4096); });
    add_case("group_rms_norm", 20,
             [t](Harness& h, const BenchEnv& e) { return bench_group_rms_norm(h, t, big(e), 32, 128); });
    add_case("swiglu", 20, [t](Harness& h, const BenchEnv& e) { return bench_act(h, Act::SwiGlu, t, big(e), 4096); });
    add_case("swiglu", 20,
             [t](Harness& h, const BenchEnv& e) { return bench_act(h, Act::SwiGluSplit, t, big(e), 4096); });
    add_case("geglu_tanh", 20,
             [t](Harness& h, const BenchEnv& e) { return bench_act(h, Act::GeGluTanh, t, big(e), 4096); });
    add_case("gelu", 20, [t](Harness& h, const BenchEnv& e) { return bench_act(h, Act::Gelu, t, big(e), 4096); });
    add_case("silu", 20, [t](Harness& h, const BenchEnv& e) { return bench_act(h, Act::Silu, t, big(e), 4096); });
    add_case("softmax", 20, [t](Harness& h, const BenchEnv& e) { return bench_softmax(h, t, big(e), 4096); });
    add_case("softmax", 20, [t](Harness& h, const BenchEnv&) { return bench_softmax(h, t, 32, 151936); });
  }
  add_case("softmax", 20,
           [](Harness& h, const BenchEnv& e) { return bench_softmax(h, DType::F32, big(e), 4096, true); });
  add_case("log_softmax", 20,
           [](Harness& h, const BenchEnv& e) { return bench_softmax(h, DType::F32, big(e), 4096, false, true); });
  add_case("softcap", 20,
           [](Harness& h, const BenchEnv& e) { return bench_act(h, Act::Softcap, DType::F32, big(e), 4096); });
  add_case("softmax", 20, [](Harness& h, const BenchEnv&) { return bench_softmax(h, DType::BF16, 1, 151936); });
  add_case("softmax", 20, [](Harness& h, const BenchEnv&) { return bench_softmax(h, DType::F32, 1, 262144); });
  add_case("softmax", 20, [](Harness& h, const BenchEnv&) { return bench_softmax(h, DType::BF16, 1, 262144); });
  // Decode sizes (launch-bound: compare microseconds).
  add_case("add_rms_norm", 20,
           [](Harness& h, const BenchEnv&) { return bench_add_rms_norm(h, DType::BF16, 1, 4096, true); });
  add_case("add_rms_norm", 20,
           [](Harness& h, const BenchEnv&) { return bench_add_rms_norm(h, DType::BF16, 1, 4096, false); });
  add_case("add_rms_norm", 20,
           [](Harness& h, const BenchEnv&) { return bench_add_rms_norm(h, DType::F32, 1, 4096, true); });
  add_case("add_rms_norm", 20,
           [](Harness& h, const BenchEnv&) { return bench_add_rms_norm(h, DType::F32, 1, 4096, false); });
  for (bool fused : {true, false}) {
    add_case("add_rms_norm", 20, [fused](Harness& h, const BenchEnv& e) {
      return bench_add_rms_norm_wide(h, DType::BF16, big(e), 4096, fused);
    });
    add_case("add_rms_norm", 20, [fused](Harness& h, const BenchEnv&) {
      return bench_add_rms_norm_wide(h, DType::F16, 1, 4096, fused);
    });
  }
  add_case("rms_norm_add", 20, [](Harness& h, const BenchEnv&) { return bench_rms_norm_add(h, DType::BF16, 1, 4096); });
  add_case("layer_norm", 20, [](Harness& h, const BenchEnv&) { return bench_layer_norm(h, DType::BF16, 1, 4096); });
  add_case("group_rms_norm", 20,
           [](Harness& h, const BenchEnv&) { return bench_group_rms_norm(h, DType::BF16, 1, 32, 128); });
  add_case("swiglu", 20,
           [](Harness& h, const BenchEnv&) { return bench_act(h, Act::SwiGluSplit, DType::BF16, 1, 14336); });
  add_case("gelu", 20, [](Harness& h, const BenchEnv&) { return bench_act(h, Act::Gelu, DType::BF16, 1, 4096); });
  add_case("softmax", 20, [](Harness& h, const BenchEnv&) { return bench_softmax(h, DType::F32, 1, 4096); });
  return true;
}();

}  // namespace
}  // namespace mlxn::bench
