// Benchmark harness: times ops recorded into a Session with stream markers (CUDA events; a host clock on the
// CPU), warms up, takes the median over many samples, rotates input sets so the L2 cache does not flatter, and
// reports each case against the copy bandwidth measured in the same run.
#pragma once

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "mlxn/mlxn.h"

namespace mlxn::bench {

struct Row {
  std::string op, shape, dtype, note;
  double us = 0;        // median time per call
  double bytes = 0;     // minimum bytes moved per call (0: not bandwidth-bound)
  double flops = 0;     // arithmetic per call, for compute-bound cases (reported as TFLOP/s in the note)
  double gbps() const { return bytes > 0 && us > 0 ? bytes / (us * 1e3) : 0; }
  double tflops() const { return flops > 0 && us > 0 ? flops / (us * 1e6) : 0; }
};

class Harness {
 public:
  Harness(Device dev, Session& s, bool quick) : dev_(std::move(dev)), s_(s), quick_(quick) {}

  // Median microseconds per call of body(k), k counting calls (use it to rotate inputs). Each sample times enough
  // calls to last about `target_sample_us`.
  Result<double> time_us(const std::function<Status(int)>& body, double target_sample_us = 300) {
    int k = 0;
    for (int i = 0; i < 3; ++i) MLXN_TRY(body(k++));
    MLXN_TRY(s_.finish());
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
      std::printf("%-28s %-16s %-16s %10.2f %10.1f %7.1f%%  %s\n", r.op.c_str(), r.shape.c_str(), r.dtype.c_str(),
                  r.us, r.gbps(), pct, r.note.c_str());
    else
      std::printf("%-28s %-16s %-16s %10.2f %10s %8s  %s\n", r.op.c_str(), r.shape.c_str(), r.dtype.c_str(), r.us,
                  "-", "-", r.note.c_str());
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
                   device_name.c_str(), r.op.c_str(), r.shape.c_str(), r.dtype.c_str(), r.us, r.gbps(), pct,
                   copy_gbps_, r.tflops(), r.note.c_str());
    }
    std::fclose(f);
    return true;
  }

 private:
  Device dev_;
  Session& s_;
  bool quick_;
  double copy_gbps_ = 0;
  std::vector<Row> rows_;
};

}  // namespace mlxn::bench
