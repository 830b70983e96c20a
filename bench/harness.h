// Benchmark harness: times ops recorded into a Session with stream markers (CUDA events; a host clock on the
// CPU), warms up, takes the median over many samples, rotates input sets so the L2 cache does not flatter, and
// reports each case against the copy bandwidth measured in the same run.
// On CUDA the calls of a sample are captured into one linear graph and replayed (as a model's decode step runs), so
// the time is the device's: timed eagerly, an op of a few microseconds measures the host's enqueue cost as well
// (H200: the 1024x4096 q4_0 decode matmul 6.5 us eager, 4.0 replayed; eager figures of 4-6 us cases also varied
// from run to run). --eager times eager calls.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "mlxn/mlxn.h"

namespace mlxn::bench {

struct Row {
  std::string op, shape, dtype, note;
  double us = 0;     // median time per call
  double bytes = 0;  // minimum bytes moved per call (0: not bandwidth-bound)
  double flops = 0;  // arithmetic per call, for compute-bound cases (reported as TFLOP/s in the note)
  double gbps() const { return bytes > 0 && us > 0 ? bytes / (us * 1e3) : 0; }
  double tflops() const { return flops > 0 && us > 0 ? flops / (us * 1e6) : 0; }
};

class Harness {
 public:
  Harness(Device dev, Session& s, bool quick, bool eager = false)
      : dev_(std::move(dev)), s_(s), quick_(quick), graph_(!eager && dev_.backend() == Backend::Cuda) {}

  // Median microseconds per call of body(k), k counting calls (use it to rotate inputs). Each sample times enough
  // calls to last about `target_sample_us`.
  Result<double> time_us(const std::function<Status(int)>& body, double target_sample_us = 300) {
    return time_calls_us(body, target_sample_us, graph_);
  }
  // Eager calls always (what the launch-overhead case compares, or a body that replays a graph itself).
  Result<double> time_eager_us(const std::function<Status(int)>& body, double target_sample_us = 300) {
    return time_calls_us(body, target_sample_us, false);
  }

  // How many input sets to rotate through so that they span at least 4x the L2 cache (at least 1).
  int rotation(double bytes_per_set) const {
    const double l2 = static_cast<double>(dev_.properties().l2_cache_bytes);
    if (l2 <= 0 || bytes_per_set <= 0) return 1;
    return std::clamp(static_cast<int>(4 * l2 / bytes_per_set) + 1, 1, 64);
  }

  void add(Row r) {
    if (r.flops > 0) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.1f TFLOP/s", r.tflops());
      r.note = r.note.empty() ? buf : r.note + ", " + buf;
    }
    rows_.push_back(std::move(r));
    print_row(rows_.back());
  }
  void set_ceiling(double gbps) { copy_gbps_ = gbps; }
  double ceiling() const { return copy_gbps_; }
  const std::vector<Row>& rows() const { return rows_; }
  Session& session() { return s_; }
  const Device& device() const { return dev_; }
  bool quick() const { return quick_; }

  void print_header() const {
    std::printf("%-28s %-16s %-16s %10s %10s %8s  %s\n", "op", "shape", "dtype", "us", "GB/s", "%copy", "note");
  }
  void print_row(const Row& r) const {
    const double pct = copy_gbps_ > 0 && r.bytes > 0 ? 100.0 * r.gbps() / copy_gbps_ : 0;
    if (r.bytes > 0)
      std::printf("%-28s %-16s %-16s %10.2f %10.1f %7.1f%%  %s\n", r.op.c_str(), r.shape.c_str(), r.dtype.c_str(), r.us,
                  r.gbps(), pct, r.note.c_str());
    else
      std::printf("%-28s %-16s %-16s %10.2f %10s %8s  %s\n", r.op.c_str(), r.shape.c_str(), r.dtype.c_str(), r.us, "-",
                  "-", r.note.c_str());
    std::fflush(stdout);
  }

  // One JSON object per line: machine-readable results.
  bool write_json(const std::string& path, const std::string& device_name) const {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return false;
    for (const auto& r : rows_) {
      const double pct = copy_gbps_ > 0 && r.bytes > 0 ? 100.0 * r.gbps() / copy_gbps_ : 0;
      std::fprintf(f,
                   "{\"device\":\"%s\",\"op\":\"%s\",\"shape\":\"%s\",\"dtype\":\"%s\",\"us\":%.3f,\"gbps\":%.1f,"
                   "\"pct_copy\":%.1f,\"copy_gbps\":%.1f,\"tflops\":%.2f,\"note\":\"%s\"}\n",
                   device_name.c_str(), r.op.c_str(), r.shape.c_str(), r.dtype.c_str(), r.us, r.gbps(), pct, copy_gbps_,
                   r.tflops(), r.note.c_str());
    }
    std::fclose(f);
    return true;
  }

 private:
  Result<double> time_calls_us(const std::function<Status(int)>& body, double target_sample_us, bool graph) {
    int k = 0;
    for (int i = 0; i < 3; ++i) MLXN_TRY(body(k++));
    MLXN_TRY(s_.finish());
    if (graph) return time_graph_us(body, k, target_sample_us);
    // Calibrate: how many calls make one sample.
    MLXN_ASSIGN_OR_RETURN(Marker a, s_.mark());
    MLXN_TRY(body(k++));
    MLXN_ASSIGN_OR_RETURN(Marker b, s_.mark());
    MLXN_ASSIGN_OR_RETURN(double one_ms, s_.elapsed_ms(a, b));
    const int per_sample = std::clamp(static_cast<int>(target_sample_us / std::max(one_ms * 1e3, 0.05)), 1, 2000);
    const int samples = quick_ ? 5 : 21;
    std::vector<double> v;
    for (int smp = 0; smp < samples; ++smp) {
      MLXN_ASSIGN_OR_RETURN(Marker m0, s_.mark());
      for (int i = 0; i < per_sample; ++i) MLXN_TRY(body(k++));
      MLXN_ASSIGN_OR_RETURN(Marker m1, s_.mark());
      MLXN_ASSIGN_OR_RETURN(double ms, s_.elapsed_ms(m0, m1));
      v.push_back(ms * 1e3 / per_sample);
    }
    MLXN_TRY(s_.finish());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

  // time_us on CUDA: per_sample calls captured into one graph, replayed once per sample. The session must capture
  // linear graphs (SessionOptions::max_branches = 1) so calls on rotated inputs do not overlap.
  Result<double> time_graph_us(const std::function<Status(int)>& body, int k, double target_sample_us) {
    auto capture = [&](int n) -> Result<Graph> {
      MLXN_TRY(s_.begin_capture());
      for (int i = 0; i < n; ++i) {
        Status st = body(k++);
        if (!st.is_ok()) {
          (void)s_.end_capture();
          return st;
        }
      }
      return s_.end_capture();
    };
    auto time_replay = [&](Graph& g) -> Result<double> {
      MLXN_ASSIGN_OR_RETURN(Marker a, s_.mark());
      MLXN_TRY(g.replay());
      MLXN_ASSIGN_OR_RETURN(Marker b, s_.mark());
      return s_.elapsed_ms(a, b);
    };
    constexpr int kCalibrate = 4;
    MLXN_ASSIGN_OR_RETURN(Graph cal, capture(kCalibrate));
    MLXN_TRY(cal.replay());
    MLXN_ASSIGN_OR_RETURN(double cal_ms, time_replay(cal));
    const double one_us = std::max(cal_ms * 1e3 / kCalibrate, 0.05);
    const int per_sample = std::clamp(static_cast<int>(target_sample_us / one_us), kCalibrate, 2000);
    MLXN_ASSIGN_OR_RETURN(Graph g, capture(per_sample));
    MLXN_TRY(g.replay());
    const int samples = quick_ ? 5 : 21;
    std::vector<double> v;
    for (int smp = 0; smp < samples; ++smp) {
      MLXN_ASSIGN_OR_RETURN(double ms, time_replay(g));
      v.push_back(ms * 1e3 / per_sample);
    }
    MLXN_TRY(s_.finish());
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

  Device dev_;
  Session& s_;
  bool quick_;
  bool graph_;
  double copy_gbps_ = 0;
  std::vector<Row> rows_;
};

// ---- the case registry: each bench/cases_*.cpp file adds its cases from a static initializer ----------------------

struct BenchEnv {
  bool gpu = false;
  int64_t big_rows = 4096;  // rows of the "large input" cases (a quarter on the CPU, the reference backend)
};

struct Case {
  std::string name;    // what --filter matches
  int order = 0;       // cases run by (order, registration); the copy ceiling is order 0 and always runs first
  bool heavy = false;  // skipped on the CPU unless --filter names it
  std::function<Status(Harness&, const BenchEnv&)> fn;
};

inline std::vector<Case>& case_list() {
  static std::vector<Case> cases;
  return cases;
}

inline bool add_case(std::string name, int order, std::function<Status(Harness&, const BenchEnv&)> fn,
                     bool heavy = false) {
  case_list().push_back({std::move(name), order, heavy, std::move(fn)});
  return true;
}

// ---- helpers shared by the case files ---------------------------------------------------------------------------

// Random (not zero) contents: zeros can run faster than real data and hide unwritten outputs. Float dtypes get
// N(0, 1) values; other dtypes get random bytes.
inline Status fill_random(const Buffer& b, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> bytes(b.nbytes());
  const DType t = b.dtype();
  if (t != DType::F32 && t != DType::F16 && t != DType::BF16) {
    for (auto& x : bytes) x = static_cast<uint8_t>(g());
    return b.upload(bytes.data(), bytes.size());
  }
  std::normal_distribution<float> d(0.0f, 1.0f);
  const size_t n = static_cast<size_t>(b.numel());
  for (size_t i = 0; i < n; ++i) {
    const float v = d(g);
    if (t == DType::F32) {
      std::memcpy(bytes.data() + 4 * i, &v, 4);
    } else {
      const uint16_t hv = t == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
      std::memcpy(bytes.data() + 2 * i, &hv, 2);
    }
  }
  return b.upload(bytes.data(), bytes.size());
}

inline std::string shape_str(int64_t r, int64_t c) { return std::to_string(r) + "x" + std::to_string(c); }

// `n` input/output sets of rows x cols rotated between calls (Harness::rotation says how many).
struct Sets {
  std::vector<Buffer> in, in2, out;
};

inline Result<Sets> make_sets(Harness& h, int n_sets, DType tin, DType tout, int64_t rows, int64_t cols,
                              bool two_inputs) {
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

}  // namespace mlxn::bench
