// mlxn_bench: per-op benchmarks against the copy bandwidth measured in the same run.
//
//   mlxn_bench [--device cpu|cuda|best] [--json FILE] [--filter SUBSTRING] [--quick]
//
// Cases: the device-to-device copy ceiling; rms_norm and elementwise ops at 4096x4096 (bandwidth) and 1x4096
// (decode, launch-bound); launch overhead of 200 dependent small ops, eager against graph replay.
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "harness.h"

namespace mlxn::bench {
namespace {

struct Options {
  std::string device = "best";
  std::string json;
  std::string filter;
  bool quick = false;
};

bool selected(const Options& o, const std::string& name) {
  return o.filter.empty() || name.find(o.filter) != std::string::npos;
}

// Random (not zero) contents: zeros can run faster than real data and hide unwritten outputs.
Status fill_random(const Buffer& b, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(b.numel()));
  std::mt19937_64 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  for (auto& x : v) x = d(g);
  std::vector<uint8_t> bytes(b.nbytes());
  for (size_t i = 0; i < v.size(); ++i) {
    if (b.dtype() == DType::F32) {
      std::memcpy(bytes.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = b.dtype() == DType::F16 ? f32_to_f16(v[i]) : f32_to_bf16(v[i]);
      std::memcpy(bytes.data() + 2 * i, &h, 2);
    }
  }
  return b.upload(bytes.data(), bytes.size());
}

std::string shape_str(int64_t r, int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

Status bench_copy_ceiling(Harness& h) {
  // 1 GiB on a GPU (2 GiB moved per copy); smaller on the CPU.
  const int64_t n = h.device().backend() == Backend::Cuda ? (int64_t{1} << 28) : (int64_t{1} << 24);
  MLXN_ASSIGN_OR_RETURN(Buffer src, h.device().alloc(DType::F32, {n}));
  MLXN_ASSIGN_OR_RETURN(Buffer dst, h.device().alloc(DType::F32, {n}));
  MLXN_TRY(src.fill_bytes(0x3c));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int) { return ops::copy(h.session(), src, dst); }, 2000));
  Row r{"copy (ceiling)", std::to_string(n * 4 >> 20) + " MiB", "f32", "read + write", us, 2.0 * n * 4};
  h.set_ceiling(r.gbps());
  h.add(r);
  return Status::ok();
}

// A bandwidth case: `sets` rotated input/output pairs of rows x cols.
struct Sets {
  std::vector<Buffer> in, in2, out;
};

Result<Sets> make_sets(Harness& h, int n_sets, DType tin, DType tout, int64_t rows, int64_t cols, bool two_inputs) {
  Sets s;
  for (int i = 0; i < n_sets; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer a, h.device().alloc(tin, {rows, cols}));
    MLXN_TRY(fill_random(a, 17 + static_cast<uint64_t>(i)));
    s.in.push_back(a);
    if (two_inputs) {
      MLXN_ASSIGN_OR_RETURN(Buffer b, h.device().alloc(tin, {rows, cols}));
      MLXN_TRY(fill_random(b, 1017 + static_cast<uint64_t>(i)));
      s.in2.push_back(b);
    }
    MLXN_ASSIGN_OR_RETURN(Buffer o, h.device().alloc(tout, {rows, cols}));
    MLXN_TRY(o.fill_bytes(0));
    s.out.push_back(o);
  }
  return s;
}

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

// y = x W^T: decode sizes are bandwidth-bound (weight bytes over time), prefill sizes compute-bound.
Status bench_matmul(Harness& h, DType t, int64_t M, int64_t N, int64_t K) {
  const double w_bytes = static_cast<double>(N * K * static_cast<int64_t>(dtype_size(t)));
  const int sets = h.rotation(w_bytes);
  std::vector<Buffer> ws;
  for (int i = 0; i < sets; ++i) {
    MLXN_ASSIGN_OR_RETURN(Buffer w, h.device().alloc(t, {N, K}));
    MLXN_TRY(fill_random(w, 300 + static_cast<uint64_t>(i)));
    ws.push_back(w);
  }
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(t, {M, K}));
  MLXN_TRY(fill_random(x, 7));
  MLXN_ASSIGN_OR_RETURN(Buffer y, h.device().alloc(t, {M, N}));
  MLXN_ASSIGN_OR_RETURN(double us, h.time_us([&](int k) {
    return ops::matmul(h.session(), x, ws[static_cast<size_t>(k) % ws.size()], y);
  }));
  Row r{"matmul m=" + std::to_string(M), std::to_string(N) + "x" + std::to_string(K), std::string(dtype_name(t)),
        sets > 1 ? "W rotated" : "", us, M <= 16 ? w_bytes : 0};
  if (M > 16) r.flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  h.add(r);
  return Status::ok();
}

// 200 dependent small ops (x += k on 4096 floats): per-op time eagerly and replayed from a captured graph.
Status bench_launch_overhead(Harness& h) {
  constexpr int kOps = 200;
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(DType::F32, {4096}));
  MLXN_TRY(x.fill_bytes(0));
  Session& s = h.session();
  MLXN_ASSIGN_OR_RETURN(double eager_us, h.time_us([&](int) -> Status {
    for (int i = 0; i < kOps; ++i) MLXN_TRY(ops::add_scalar(s, x, Scalar::of(1.0f), x));
    return Status::ok();
  }, 5000));
  h.add({"launch: eager", "200 ops x 4096", "f32", "per op", eager_us / kOps, 0});
  MLXN_TRY(s.begin_capture());
  for (int i = 0; i < kOps; ++i) MLXN_TRY(ops::add_scalar(s, x, Scalar::step(0), x));
  MLXN_ASSIGN_OR_RETURN(Graph g, s.end_capture());
  MLXN_TRY(s.set_step_f32(0, 1.0f));
  MLXN_ASSIGN_OR_RETURN(double graph_us, h.time_us([&](int) { return g.replay(); }, 5000));
  h.add({"launch: graph replay", "200 ops x 4096", "f32", "per op", graph_us / kOps, 0});
  return Status::ok();
}

int run(const Options& o) {
  Device dev = Device::best();
  if (o.device == "cpu") {
    dev = Device::cpu();
  } else if (o.device == "cuda") {
    auto d = Device::open(Backend::Cuda, 0);
    if (!d.is_ok()) {
      std::fprintf(stderr, "mlxn_bench: %s\n", d.status().to_string().c_str());
      return 1;
    }
    dev = d.value();
  }
  const auto& p = dev.properties();
  std::printf("mlxn_bench on %s (%s", p.name.c_str(), std::string(backend_name(p.backend)).c_str());
  if (p.backend == Backend::Cuda)
    std::printf(", sm_%d%d, %d SMs, %.0f MiB L2, %.1f GiB", p.compute_capability_major, p.compute_capability_minor,
                p.multiprocessor_count, p.l2_cache_bytes / 1048576.0, p.total_memory / 1073741824.0);
  std::printf(")\n");
  auto session = Session::create(dev);
  if (!session.is_ok()) {
    std::fprintf(stderr, "mlxn_bench: %s\n", session.status().to_string().c_str());
    return 1;
  }
  Harness h(dev, session.value(), o.quick);
  h.print_header();
  // The CPU runs the same cases at a quarter of the rows: it is the reference backend, not a fast one.
  const bool gpu = dev.backend() == Backend::Cuda;
  if (!gpu && o.filter.empty()) std::printf("(CPU: the reference backend; matmul cases skipped, use --filter matmul)\n");
  const int64_t big_rows = gpu ? 4096 : 1024;
  std::vector<std::pair<std::string, std::function<Status()>>> cases = {
      {"copy", [&] { return bench_copy_ceiling(h); }},
      {"rms_norm", [&] { return bench_rms_norm(h, DType::BF16, big_rows, 4096); }},
      {"rms_norm", [&] { return bench_rms_norm(h, DType::F32, big_rows, 4096); }},
      {"rms_norm", [&] { return bench_rms_norm(h, DType::BF16, 1, 4096); }},
      {"add", [&] { return bench_elementwise(h, Ew::Add, DType::BF16, DType::BF16, big_rows, 4096); }},
      {"mul", [&] { return bench_elementwise(h, Ew::Mul, DType::F32, DType::F32, big_rows, 4096); }},
      {"scale", [&] { return bench_elementwise(h, Ew::Scale, DType::BF16, DType::BF16, big_rows, 4096); }},
      {"cast", [&] { return bench_elementwise(h, Ew::Cast, DType::F32, DType::BF16, big_rows, 4096); }},
      {"add", [&] { return bench_elementwise(h, Ew::Add, DType::BF16, DType::BF16, 1, 4096); }},
      {"launch", [&] { return bench_launch_overhead(h); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 1, 4096, 4096); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 1, 1024, 4096); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 1, 14336, 4096); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 1, 4096, 14336); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 8, 14336, 4096); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 16, 14336, 4096); }},
      {"matmul", [&] { return bench_matmul(h, DType::F16, 1, 14336, 4096); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 512, 4096, 14336); }},
      {"matmul", [&] { return bench_matmul(h, DType::BF16, 4096, 4096, 4096); }},
  };
  int failures = 0;
  for (auto& [name, fn] : cases) {
    if (name != "copy" && !selected(o, name)) continue;
    if (name == "matmul" && !gpu && o.filter.empty()) continue;
    Status st = fn();
    if (!st.is_ok()) {
      std::fprintf(stderr, "mlxn_bench: %s: %s\n", name.c_str(), st.to_string().c_str());
      ++failures;
    }
  }
  if (!o.json.empty() && !h.write_json(o.json, p.name)) {
    std::fprintf(stderr, "mlxn_bench: cannot write %s\n", o.json.c_str());
    return 1;
  }
  return failures ? 1 : 0;
}

}  // namespace
}  // namespace mlxn::bench

int main(int argc, char** argv) {
  mlxn::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "mlxn_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--device") o.device = next();
    else if (a == "--json") o.json = next();
    else if (a == "--filter") o.filter = next();
    else if (a == "--quick") o.quick = true;
    else {
      std::fprintf(stderr, "usage: mlxn_bench [--device cpu|cuda|best] [--json FILE] [--filter SUBSTRING] [--quick]\n");
      return 2;
    }
  }
  if (o.device != "cpu" && o.device != "cuda" && o.device != "best") {
    std::fprintf(stderr, "mlxn_bench: --device must be cpu, cuda or best\n");
    return 2;
  }
  return mlxn::bench::run(o);
}
