// mlxn_bench: per-op benchmarks against the copy bandwidth measured in the same run.
//
//   mlxn_bench [--device cpu|cuda|best] [--json FILE] [--filter SUBSTRING] [--quick] [--eager]
//
// This file holds the runner, the device-to-device copy ceiling and the launch-overhead case (200 dependent small
// ops, eager against graph replay); each bench/cases_*.cpp file registers its op family's cases (harness.h).
#include <cstdlib>
#include <string>

#include "harness.h"

namespace mlxn::bench {
namespace {

struct Options {
  std::string device = "best";
  std::string json;
  std::string filter;
  bool quick = false;
  bool eager = false;  // time eager calls instead of replayed graphs (harness.h)
};

bool selected(const Options& o, const std::string& name) {
  return o.filter.empty() || name.find(o.filter) != std::string::npos;
}

Status bench_copy_ceiling(Harness& h) {
  // 1 GiB on a GPU (2 GiB moved per copy); smaller on the CPU.
  const int64_t n = h.device().backend() == Backend::Cuda ? (int64_t{1} << 28) : (int64_t{1} << 24);
  MLXN_ASSIGN_OR_RETURN(Buffer src, h.device().alloc(DType::F32, {n}));
  MLXN_ASSIGN_OR_RETURN(Buffer dst, h.device().alloc(DType::F32, {n}));
  MLXN_TRY(src.fill_bytes(0x3c));
  // Eager: a copy captured into a graph becomes a memcpy node on the copy engines (2.7 TB/s on an H200, against
  // 4.2 TB/s for the copy kernel eager calls run).
  MLXN_ASSIGN_OR_RETURN(double us, h.time_eager_us([&](int) { return ops::copy(h.session(), src, dst); }, 2000));
  Row r{"copy (ceiling)", std::to_string(n * 4 >> 20) + " MiB", "f32", "read + write", us, 2.0 * n * 4};
  h.set_ceiling(r.gbps());
  h.add(r);
  return Status::ok();
}

// 200 dependent small ops (x += k on 4096 floats): per-op time eagerly and replayed from a captured graph.
Status bench_launch_overhead(Harness& h) {
  constexpr int kOps = 200;
  MLXN_ASSIGN_OR_RETURN(Buffer x, h.device().alloc(DType::F32, {4096}));
  MLXN_TRY(x.fill_bytes(0));
  Session& s = h.session();
  MLXN_ASSIGN_OR_RETURN(double eager_us, h.time_eager_us([&](int) -> Status {
    for (int i = 0; i < kOps; ++i) MLXN_TRY(ops::add_scalar(s, x, Scalar::of(1.0f), x));
    return Status::ok();
  }, 5000));
  h.add({"launch: eager", "200 ops x 4096", "f32", "per op", eager_us / kOps, 0});
  MLXN_TRY(s.begin_capture());
  for (int i = 0; i < kOps; ++i) MLXN_TRY(ops::add_scalar(s, x, Scalar::step(0), x));
  MLXN_ASSIGN_OR_RETURN(Graph g, s.end_capture());
  MLXN_TRY(s.set_step_f32(0, 1.0f));
  MLXN_ASSIGN_OR_RETURN(double graph_us, h.time_eager_us([&](int) { return g.replay(); }, 5000));
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
  SessionOptions so;
  so.max_branches = 1;  // linear graphs: the timed calls run one after another, as eager ones do
  auto session = Session::create(dev, so);
  if (!session.is_ok()) {
    std::fprintf(stderr, "mlxn_bench: %s\n", session.status().to_string().c_str());
    return 1;
  }
  Harness h(dev, session.value(), o.quick, o.eager);
  h.print_header();
  BenchEnv env;
  env.gpu = dev.backend() == Backend::Cuda;
  // The CPU runs the large cases at a quarter of the rows: it is the reference backend, not a fast one.
  env.big_rows = env.gpu ? 4096 : 1024;
  if (!env.gpu && o.filter.empty()) std::printf("(CPU: the reference backend; heavy cases skipped, use --filter)\n");
  add_case("copy", 0, [](Harness& hh, const BenchEnv&) { return bench_copy_ceiling(hh); });
  add_case("launch", 20, [](Harness& hh, const BenchEnv&) { return bench_launch_overhead(hh); });
  std::vector<Case> cases = case_list();
  std::stable_sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.order < b.order; });
  int failures = 0;
  for (const Case& c : cases) {
    if (c.name != "copy" && !selected(o, c.name)) continue;
    if (c.heavy && !env.gpu && o.filter.empty()) continue;
    Status st = c.fn(h, env);
    if (!st.is_ok()) {
      std::fprintf(stderr, "mlxn_bench: %s: %s\n", c.name.c_str(), st.to_string().c_str());
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
    else if (a == "--eager") o.eager = true;
    else {
      std::fprintf(stderr,
                   "usage: mlxn_bench [--device cpu|cuda|best] [--json FILE] [--filter SUBSTRING] [--quick] [--eager]\n");
      return 2;
    }
  }
  if (o.device != "cpu" && o.device != "cuda" && o.device != "best") {
    std::fprintf(stderr, "mlxn_bench: --device must be cpu, cuda or best\n");
    return 2;
  }
  return mlxn::bench::run(o);
}
