// mlxn bench [--model FILE.gguf|DIR|gemma3-270m] [-p 512] [-n 128] [-r 3] [--device cpu|cuda[:N]] [--chunk N]
//            [--json FILE]
// Model throughput in the manner of llama-bench: pp<p> prefills p random tokens into an empty context (chunks of at
// most --chunk, default min(p, 512)); tg<n> decodes n tokens one at a time after a one-token prompt, with the
// captured decode graph and greedy sampling on the device, reading each token id back as generation does. Each test
// runs once to warm up, then r times; the table shows the mean and standard deviation of tokens/s.
//
// Generation is bandwidth-bound, so it is also reported against a roofline: the minimum bytes one decode step must
// read (every weight matrix and norm, the LM head, one embedding row, and the KV cache up to the current length;
// sliding-window layers only their window), averaged over the n steps, divided by the device-to-device copy
// bandwidth measured in the same run (ops::copy of a large buffer: read + write bytes over time). ratio = achieved
// tokens/s / roofline tokens/s.
//
// Host overhead per decoded token: the CPU time of the calling thread during the tg run (on CUDA the host's share:
// step parameters, graph launch, waiting, reading the token id back; on the CPU backend it includes the compute
// that the calling thread does) and the wall time spent inside replay_decode (enqueueing the step).
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "mlxn/core/session.h"
#include "mlxn/models/model.h"
#include "mlxn/ops/copy.h"
#include "model_cli.h"

namespace mlxn::cli {
namespace {

constexpr const char* kUsage =
    "usage: mlxn bench [--model FILE.gguf|DIR|gemma3-270m] [-p 512] [-n 128] [-r 3] [--device cpu|cuda[:N]] "
    "[--chunk N] [--json FILE]";

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Stats {
  double mean = 0, sd = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(s.sd / static_cast<double>(v.size() - 1));
  }
  return s;
}

// Device-to-device copy bandwidth in GB/s (bytes read + written per second), the best of several timed samples.
Result<double> copy_bandwidth(const Device& dev) {
  const bool cuda = dev.backend() == Backend::Cuda;
  // Large enough to leave the caches (L2 is 50 MB on H100; a CPU's L3 some tens of MB), small enough to fit
  // beside the model.
  int64_t n = (cuda ? int64_t{256} : int64_t{64}) << 20;  // f32 elements: 1 GiB or 256 MiB per buffer
  if (dev.properties().total_memory > 0)
    n = std::min<int64_t>(n, static_cast<int64_t>(dev.properties().total_memory / 16 / 4));
  MLXN_ASSIGN_OR_RETURN(Session s, Session::create(dev));
  MLXN_ASSIGN_OR_RETURN(Buffer a, dev.alloc(DType::F32, Shape{n}));
  MLXN_ASSIGN_OR_RETURN(Buffer b, dev.alloc(DType::F32, Shape{n}));
  MLXN_TRY(a.fill_bytes(0));
  MLXN_TRY(b.fill_bytes(0));
  for (int i = 0; i < 2; ++i) MLXN_TRY(ops::copy(s, a, b));  // first touch, clocks up
  MLXN_TRY(s.finish());
  const int per_sample = cuda ? 10 : 2;
  double best_ms = 1e30;
  for (int smp = 0; smp < 5; ++smp) {
    MLXN_ASSIGN_OR_RETURN(Marker m0, s.mark());
    for (int i = 0; i < per_sample; ++i) MLXN_TRY(ops::copy(s, (i & 1) ? b : a, (i & 1) ? a : b));
    MLXN_ASSIGN_OR_RETURN(Marker m1, s.mark());
    MLXN_ASSIGN_OR_RETURN(double ms, s.elapsed_ms(m0, m1));
    best_ms = std::min(best_ms, ms / per_sample);
  }
  MLXN_TRY(s.finish());
  return 2.0 * static_cast<double>(n) * 4 / (best_ms * 1e6);
}

uint64_t nbytes(const Buffer& b) { return b.valid() ? b.nbytes() : 0; }
int64_t numel(const Buffer& b) { return b.valid() ? b.numel() : 0; }

// Bytes of weights one decode step reads, and the parameter count.
struct WeightBytes {
  uint64_t per_token = 0;
  uint64_t stored = 0;  // the weights as stored (without CUDA's f16 copy of a block-type embedding table)
  int64_t params = 0;
};
WeightBytes weight_bytes(const models::Model& m) {
  const auto& w = m.weights();
  WeightBytes r;
  for (const auto& L : w.layers) {
    for (const Buffer* b : {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.wo, &L.bq, &L.bk, &L.bv, &L.q_norm, &L.k_norm,
                            &L.post_attn_norm, &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down, &L.post_ffn_norm}) {
      r.per_token += nbytes(*b);
      r.params += numel(*b);
    }
  }
  const bool tied = w.output.valid() && w.output.storage_id() == w.tok_embd.storage_id();
  r.per_token += nbytes(w.output_norm) + nbytes(w.output) + nbytes(w.rope_freqs);
  r.params += numel(w.output_norm) + numel(w.tok_embd) + (tied ? 0 : numel(w.output));
  r.stored = r.per_token + (tied ? 0 : nbytes(w.tok_embd));
  // One row of the lookup table.
  const Buffer& lk = w.tok_lookup.valid() ? w.tok_lookup : w.tok_embd;
  if (lk.valid() && lk.shape().rank() == 2 && lk.shape()[0] > 0) r.per_token += lk.nbytes() / lk.shape()[0];
  return r;
}

// KV-cache bytes a decode step with `kv_len` keys reads (every layer, keys and values).
uint64_t kv_bytes(const models::Model& m, int64_t kv_len) {
  const auto& c = m.config();
  uint64_t total = 0;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    const int64_t keys = c.sliding(il) ? std::min<int64_t>(kv_len, c.sliding_window) : kv_len;
    total += static_cast<uint64_t>(2 * keys * c.n_head_kv * c.head_dim) * dtype_size(m.kv_dtype());
  }
  return total;
}

std::string human_params(int64_t p) {
  char buf[32];
  if (p >= 1000000000)
    std::snprintf(buf, sizeof buf, "%.2f B", static_cast<double>(p) / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f M", static_cast<double>(p) / 1e6);
  return buf;
}

}  // namespace

int cmd_bench(const Args& args) {
  std::string model_spec, device = default_device(), json_path;
  int64_t n_prompt = 512, n_gen = 128, reps = 3, chunk = 0;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool v = i + 1 < args.size();
    bool ok = true;
    if (a == "--model" && v)
      model_spec = args[++i];
    else if (a == "--device" && v)
      device = args[++i];
    else if (a == "--json" && v)
      json_path = args[++i];
    else if (a == "-p" || a == "--n-prompt")
      ok = v && parse_num(args[++i], n_prompt) && n_prompt >= 0;
    else if (a == "-n" || a == "--n-gen")
      ok = v && parse_num(args[++i], n_gen) && n_gen >= 0;
    else if (a == "-r" || a == "--repetitions")
      ok = v && parse_num(args[++i], reps) && reps > 0;
    else if (a == "--chunk")
      ok = v && parse_num(args[++i], chunk) && chunk > 0;
    else if (a == "-h" || a == "--help")
      return std::printf("%s\n", kUsage), 0;
    else
      return fail("bench", "unknown argument '" + a + "'\n" + kUsage);
    if (!ok) return fail("bench", "bad or missing value for " + a);
  }
  if (n_prompt == 0 && n_gen == 0) return fail("bench", "nothing to run: -p 0 and -n 0");
  auto path = resolve_model(model_spec);
  if (!path) return fail("bench", path.status().message());
  auto dev = open_device(device, "bench");
  if (!dev) return fail("bench", dev.status().to_string());

  models::ModelOptions mo;
  mo.max_chunk = chunk > 0 ? chunk : std::clamp<int64_t>(n_prompt, 1, 512);
  mo.max_context = std::max<int64_t>(n_prompt, 1 + n_gen) + 1;
  auto model = load_model(*path, *dev, mo);
  if (!model) return fail("bench", model.status().to_string());
  auto& m = *model.value();
  const auto& c = m.config();

  auto bw = copy_bandwidth(*dev);
  if (!bw) return fail("bench", "copy bandwidth: " + bw.status().to_string());

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(c.n_vocab - 1));
  const WeightBytes wb = weight_bytes(m);
  std::error_code ec;
  const std::string name = std::filesystem::path(*path).filename().string();
  const char* backend = dev->backend() == Backend::Cuda ? "CUDA" : "CPU";
  std::fprintf(stderr, "%s; activations %s, KV %s; copy bandwidth %.1f GB/s\n", c.summary().c_str(),
               std::string(dtype_name(m.act_dtype())).c_str(), std::string(dtype_name(m.kv_dtype())).c_str(), *bw);

  std::printf("| %-28s | %10s | %9s | %-7s | %8s | %20s |\n", "model", "size", "params", "backend", "test", "t/s");
  std::printf("| %.28s | %.10s | %.9s | %.7s | %.8s | %.20s |\n", "------------------------------", "------------",
              "-----------", "---------", "----------", "----------------------");
  auto row = [&](const std::string& test, Stats s) {
    char ts[48];
    std::snprintf(ts, sizeof ts, "%.2f ± %.2f", s.mean, s.sd);
    // "±" takes two bytes and one column: one more byte of width keeps the column aligned.
    std::printf("| %-28s | %10s | %9s | %-7s | %8s | %21s |\n", name.substr(0, 28).c_str(), mib(wb.stored).c_str(),
                human_params(wb.params).c_str(), backend, test.c_str(), ts);
    std::fflush(stdout);
  };

  std::string json = "{\"model\":\"" + name + "\",\"backend\":\"" + backend + "\",\"device\":\"" +
                     dev->properties().name + "\",\"copy_gbps\":" + std::to_string(*bw);
  if (n_prompt > 0) {
    std::vector<int32_t> toks(static_cast<size_t>(n_prompt));
    std::vector<double> tps;
    for (int64_t rep = -1; rep < reps; ++rep) {  // rep -1: warm-up
      for (auto& t : toks) t = pick(rng);
      m.reset();
      const double t0 = now_s();
      if (Status st = m.prefill(toks); !st.is_ok()) return fail("bench", st.to_string());
      if (Status st = m.session().finish(); !st.is_ok()) return fail("bench", st.to_string());
      if (rep >= 0) tps.push_back(static_cast<double>(n_prompt) / (now_s() - t0));
    }
    const Stats s = stats(tps);
    row("pp" + std::to_string(n_prompt), s);
    json += ",\"pp\":" + std::to_string(n_prompt) + ",\"pp_tps\":" + std::to_string(s.mean);
  }
  if (n_gen > 0) {
    ops::SampleParams greedy;
    greedy.temperature = 0.0f;
    auto g = m.capture_decode(&greedy);
    if (!g) return fail("bench", g.status().to_string());
    std::vector<double> tps, cpu_us, enqueue_us;
    for (int64_t rep = -1; rep < reps; ++rep) {
      m.reset();
      const int32_t first = pick(rng);
      if (Status st = m.prefill(std::span<const int32_t>(&first, 1)); !st.is_ok()) return fail("bench", st.to_string());
      if (Status st = m.set_token(first); !st.is_ok()) return fail("bench", st.to_string());
      double in_replay = 0;
      const double t0 = now_s(), c0 = thread_cpu_s();
      for (int64_t i = 0; i < n_gen; ++i) {
        const double r0 = now_s();
        if (Status st = m.replay_decode(*g, static_cast<uint32_t>(i + 1)); !st.is_ok())
          return fail("bench", st.to_string());
        in_replay += now_s() - r0;
        if (auto t = m.read_token(); !t) return fail("bench", t.status().to_string());
      }
      const double wall = now_s() - t0, cpu = thread_cpu_s() - c0;
      if (rep < 0) continue;
      tps.push_back(static_cast<double>(n_gen) / wall);
      cpu_us.push_back(cpu / static_cast<double>(n_gen) * 1e6);
      enqueue_us.push_back(in_replay / static_cast<double>(n_gen) * 1e6);
    }
    const Stats s = stats(tps);
    row("tg" + std::to_string(n_gen), s);
    // Step i (0-based) decodes at position i + 1 with i + 2 keys.
    double kv_avg = 0;
    for (int64_t i = 0; i < n_gen; ++i) kv_avg += static_cast<double>(kv_bytes(m, i + 2));
    kv_avg /= static_cast<double>(n_gen);
    const double bytes_tok = static_cast<double>(wb.per_token) + kv_avg;
    const double roof_tps = *bw * 1e9 / bytes_tok;
    const Stats cpu = stats(cpu_us), enq = stats(enqueue_us);
    std::printf(
        "\ntg%lld roofline: %.1f MiB read per token (weights %.1f MiB + KV cache %.2f MiB on average) at "
        "the copy bandwidth of %.1f GB/s = %.1f t/s; achieved %.1f t/s = %.1f GB/s effective, ratio %.2f\n",
        static_cast<long long>(n_gen), bytes_tok / (1 << 20), static_cast<double>(wb.per_token) / (1 << 20),
        kv_avg / (1 << 20), *bw, roof_tps, s.mean, s.mean * bytes_tok / 1e9, s.mean / roof_tps);
    std::printf("host per decoded token: %.1f us CPU time of the calling thread%s, %.1f us enqueueing the replay\n",
                cpu.mean, dev->backend() == Backend::Cpu ? " (includes the CPU backend's own compute share)" : "",
                enq.mean);
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  ",\"tg\":%lld,\"tg_tps\":%.3f,\"bytes_per_token\":%.0f,\"roofline_tps\":%.3f,\"roofline_ratio\":%.4f,"
                  "\"host_cpu_us_per_token\":%.2f,\"enqueue_us_per_token\":%.2f",
                  static_cast<long long>(n_gen), s.mean, bytes_tok, roof_tps, s.mean / roof_tps, cpu.mean, enq.mean);
    json += buf;
  }
  json += "}";
  if (!json_path.empty()) {
    std::ofstream out(json_path, std::ios::app);
    out << json << "\n";
    if (!out) return fail("bench", "cannot write " + json_path);
  }
  return 0;
}

}  // namespace mlxn::cli
