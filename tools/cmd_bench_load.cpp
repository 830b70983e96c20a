// mlxn bench-load FILE|DIR [--device cpu|cuda[:N]] [--runs N] | --synth GIB [--tmp DIR]
// Times loading every tensor of a GGUF file or safetensors checkpoint onto a device (GgufFile::load_tensor,
// SafetensorsModel::load_tensor), after a first pass that reads the files so the timed runs come from the page cache.
// --synth writes a temporary GGUF of random Q4_0 / Q8_0 / F16 matrices of that size, benchmarks it and deletes it.
//
// On the CPU load_tensor wraps the mapping in place (zero copy), so a CPU run also reads every byte once (a checksum):
// its figure is page-fault plus memory-read bandwidth. On CUDA it is the upload (pinned staging) bandwidth.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "commands.h"
#include "mlxn/core/buffer.h"
#include "mlxn/core/device.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/quantize_model.h"
#include "mlxn/io/safetensors.h"

namespace mlxn::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: mlxn bench-load FILE|DIR [--device cpu|cuda[:N]] [--runs N]  or  mlxn bench-load --synth GIB "
    "[--tmp DIR] [--device ...] [--runs N]";

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string gib(uint64_t b) {
  char buf[32];
  const double d = static_cast<double>(b);
  if (b >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", d / (1u << 30));
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", d / (1u << 20));
  return buf;
}

// The synthetic file is removed on every exit path, Ctrl-C included.
char g_synth_path[4096] = {};
void remove_synth_on_signal(int sig) {
  if (g_synth_path[0]) unlink(g_synth_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
struct SynthGuard {
  std::string path;
  ~SynthGuard() {
    if (path.empty()) return;
    std::error_code ec;
    fs::remove(path, ec);
    g_synth_path[0] = 0;
  }
};

uint64_t mem_total_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  while (f >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024;
    f.ignore(64, '\n');
  }
  return 0;
}

// Reads `files` front to back with read(2) so that their pages sit in the page cache.
Result<uint64_t> warm_page_cache(const std::vector<std::string>& files) {
  std::vector<char> buf(size_t{8} << 20);
  uint64_t total = 0;
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) return Status(StatusCode::IoError, "cannot open " + f + ": " + std::strerror(errno));
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0) {
        ::close(fd);
        return Status(StatusCode::IoError, "cannot read " + f + ": " + std::strerror(errno));
      }
      if (n == 0) break;
      total += static_cast<uint64_t>(n);
    }
    ::close(fd);
  }
  return total;
}

// Every byte read once, so the CPU's zero-copy wrap actually faults the pages in.
uint64_t checksum(const Buffer& b) {
  const auto* p = static_cast<const uint8_t*>(b.data());
  const size_t n = b.nbytes();
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    s0 += w[0];
    s1 ^= w[1];
    s2 += w[2];
    s3 ^= w[3];
  }
  for (; i < n; ++i) s0 += p[i];
  return s0 ^ s1 ^ s2 ^ s3;
}

struct Model {
  std::string path, format;
  bool gguf = false;
  std::vector<std::string> files;
  uint64_t file_bytes = 0;
};

bool looks_like_gguf(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  return f.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

Result<Model> resolve(std::string path) {
  std::error_code ec;
  bool dir = fs::is_directory(path, ec);
  if (!dir && !fs::exists(path, ec)) return Status(StatusCode::NotFound, path + ": no such file or directory");
  if (dir) {  // a directory of one GGUF file (and no safetensors) stands for that file
    std::vector<std::string> gguf;
    bool st = false;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".gguf") gguf.push_back(e.path().string());
      if (e.path().extension() == ".safetensors") st = true;
    }
    if (gguf.size() == 1 && !st) {
      path = gguf[0];
      dir = false;
    }
  }
  Model m;
  m.path = path;
  m.gguf = !dir && (path.ends_with(".gguf") || looks_like_gguf(path));
  if (m.gguf) {
    m.format = "GGUF";
    m.files = {path};
  } else {
    auto st = io::SafetensorsModel::open(path);
    if (!st) return st.status();
    m.format = "safetensors";
    for (const auto& s : st->shards()) m.files.push_back(s.path());
  }
  for (const auto& f : m.files) m.file_bytes += fs::file_size(f, ec);
  return m;
}

struct RunResult {
  size_t tensors = 0, raw = 0;
  uint64_t bytes = 0;
  double seconds = 0, open_seconds = 0;
  uint64_t check = 0;
};

// One timed load of every tensor. Tensors of types without an mlxn DType are loaded as raw bytes.
Result<RunResult> load_all(const Model& m, const Device& dev) {
  RunResult r;
  std::vector<Buffer> keep;
  const bool cpu = dev.backend() == Backend::Cpu;
  auto add = [&](Result<Buffer> b, std::span<const uint8_t> raw, const std::string& name) -> Status {
    if (!b && b.status().code() == StatusCode::Unsupported) {
      auto u = dev.alloc(DType::U8, Shape{static_cast<int64_t>(raw.size())});
      if (!u) return u.status();
      MLXN_TRY(u->upload(raw.data(), raw.size()));
      b = *u;
      ++r.raw;
    }
    if (!b) {
      if (b.status().code() == StatusCode::OutOfMemory)
        return Status(StatusCode::OutOfMemory, "device memory ran out at tensor '" + name + "' after " + gib(r.bytes) +
                                                   ": the model does not fit (" + b.status().message() + ")");
      return b.status();
    }
    if (cpu) r.check += checksum(*b);
    r.bytes += raw.size();
    ++r.tensors;
    keep.push_back(std::move(*b));
    return Status::ok();
  };
  const auto t0 = Clock::now();
  if (m.gguf) {
    auto f = io::GgufFile::open(m.path);
    if (!f) return f.status();
    r.open_seconds = since(t0);
    for (const auto& t : f->tensors()) {
      auto raw = f->tensor_data(t.name);
      if (!raw) return raw.status();
      MLXN_TRY(add(f->load_tensor(t.name, dev), *raw, t.name));
    }
  } else {
    auto s = io::SafetensorsModel::open(m.path);
    if (!s) return s.status();
    r.open_seconds = since(t0);
    for (const auto& name : s->tensor_names()) {
      auto raw = s->shard_of(name)->tensor_data(name);
      if (!raw) return raw.status();
      MLXN_TRY(add(s->load_tensor(name, dev), *raw, name));
    }
  }
  MLXN_TRY(dev.synchronize());
  r.seconds = since(t0);
  return r;
}

Result<Device> open_device(const std::string& spec) {
  if (spec == "cpu") return Device::cpu();
  int ordinal = 0;
  if (spec.rfind("cuda", 0) == 0) {
    if (spec.size() > 4) {
      const std::string n = spec.substr(spec.size() > 5 && spec[4] == ':' ? 5 : spec.size());
      auto res = std::from_chars(n.data(), n.data() + n.size(), ordinal);
      if (n.empty() || res.ec != std::errc() || res.ptr != n.data() + n.size() || ordinal < 0)
        return invalid_argument("bench-load", "bad --device '", spec, "': cpu, cuda or cuda:N");
    }
    return Device::open(Backend::Cuda, ordinal);
  }
  return invalid_argument("bench-load", "bad --device '", spec, "': cpu, cuda or cuda:N");
}

}  // namespace

int cmd_bench_load(const Args& args) {
  std::string path, device = "cpu", tmp;
  double synth_gib = 0;
  int runs = 3;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if (a == "--device" && has_value) {
      device = args[++i];
    } else if (a == "--synth" && has_value) {
      const std::string& v = args[++i];
      auto r = std::from_chars(v.data(), v.data() + v.size(), synth_gib);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || !(synth_gib > 0) || synth_gib > 1024)
        return fail("bench-load", "--synth needs a size in GiB above 0 (e.g. 4 or 0.5)");
    } else if (a == "--runs" && has_value) {
      const std::string& v = args[++i];
      auto r = std::from_chars(v.data(), v.data() + v.size(), runs);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size() || runs < 1 || runs > 100)
        return fail("bench-load", "--runs needs a count from 1 to 100");
    } else if (a == "--tmp" && has_value) {
      tmp = args[++i];
    } else if (a == "-h" || a == "--help") {
      std::printf("%s\n", kUsage);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return fail("bench-load", "unknown option or missing value: " + a);
    } else if (path.empty()) {
      path = a;
    } else {
      return fail("bench-load", "more than one input given");
    }
  }
  if (path.empty() == (synth_gib == 0)) return fail("bench-load", kUsage);

  auto dev = open_device(device);
  if (!dev) return fail("bench-load", dev.status().to_string());
  const auto& props = dev->properties();
  const bool cuda = dev->backend() == Backend::Cuda;
  const std::string dev_name =
      cuda ? "cuda:" + std::to_string(props.ordinal) + " (" + props.name + ", " + gib(props.total_memory) + ")"
           : "cpu (" + std::to_string(props.multiprocessor_count) + " hardware threads)";

  SynthGuard guard;
  if (synth_gib > 0) {
    std::error_code ec;
    const fs::path dir = tmp.empty() ? fs::temp_directory_path(ec) : fs::path(tmp);
    if (ec || !fs::is_directory(dir, ec)) return fail("bench-load", "no temporary directory (" + dir.string() + ")");
    path = (dir / ("mlxn-bench-load-" + std::to_string(getpid()) + ".gguf")).string();
    if (path.size() >= sizeof g_synth_path) return fail("bench-load", "temporary path too long: " + path);
    std::strncpy(g_synth_path, path.c_str(), sizeof g_synth_path - 1);
    guard.path = path;
    std::signal(SIGINT, remove_synth_on_signal);
    std::signal(SIGTERM, remove_synth_on_signal);
    const uint64_t bytes = static_cast<uint64_t>(synth_gib * static_cast<double>(uint64_t{1} << 30));
    const bool tty = isatty(STDERR_FILENO) != 0;
    const auto t0 = Clock::now();
    auto s = io::write_synthetic_gguf(path, bytes, 1, [&](uint64_t done, uint64_t total) {
      if (tty) std::fprintf(stderr, "\rwriting synthetic model: %s / %s\x1b[K", gib(done).c_str(), gib(total).c_str());
    });
    if (tty) std::fputc('\n', stderr);
    if (!s) return fail("bench-load", s.status().to_string());
    const double secs = since(t0);
    std::printf(
        "synthetic: %zu tensors (q4_0, q8_0, f16, f32), %s of tensor data written to %s in %.1f s (%.2f GB/s)\n",
        s->tensors, gib(s->bytes).c_str(), path.c_str(), secs, static_cast<double>(s->file_bytes) / secs / 1e9);
  }

  auto m = resolve(path);
  if (!m) return fail("bench-load", m.status().to_string());
  std::printf("model:  %s (%s, %zu file%s, %s)\ndevice: %s\n", m->path.c_str(), m->format.c_str(), m->files.size(),
              m->files.size() == 1 ? "" : "s", gib(m->file_bytes).c_str(), dev_name.c_str());
  if (const uint64_t mem = mem_total_bytes(); mem > 0 && m->file_bytes > mem / 10 * 9)
    std::printf(
        "note: the files (%s) exceed 90%% of host memory (%s): the page cache cannot hold them, so the "
        "runs below include disk reads\n",
        gib(m->file_bytes).c_str(), gib(mem).c_str());

  const auto tw = Clock::now();
  auto warm = warm_page_cache(m->files);
  if (!warm) return fail("bench-load", warm.status().to_string());
  const double warm_s = since(tw);
  std::printf("warm-up: read %s in %.2f s (%.2f GB/s) so the runs below load from page cache\n", gib(*warm).c_str(),
              warm_s, static_cast<double>(*warm) / warm_s / 1e9);

  std::vector<RunResult> results;
  for (int i = 0; i < runs; ++i) {
    auto r = load_all(*m, *dev);
    if (!r) return fail("bench-load", r.status().to_string());
    std::string extra;
    if (r->raw) extra += ", " + std::to_string(r->raw) + " tensors of undecodable types as raw bytes";
    if (!cuda) {
      char c[40];
      std::snprintf(c, sizeof c, ", checksum %016llx", static_cast<unsigned long long>(r->check));
      extra += c;
    }
    std::printf("run %d: %zu tensors, %llu bytes in %.3f s = %.2f GB/s (open %.1f ms%s)\n", i + 1, r->tensors,
                static_cast<unsigned long long>(r->bytes), r->seconds, static_cast<double>(r->bytes) / r->seconds / 1e9,
                r->open_seconds * 1e3, extra.c_str());
    results.push_back(*r);
  }
  std::vector<double> secs;
  for (const auto& r : results) secs.push_back(r.seconds);
  std::sort(secs.begin(), secs.end());
  const double best = secs.front(), median = secs[secs.size() / 2];
  const double bytes = static_cast<double>(results.front().bytes);
  std::printf(
      "load %s: %llu bytes (%s) onto %s from page cache: best %.3f s = %.2f GB/s, median %.3f s = %.2f GB/s%s\n",
      m->format.c_str(), static_cast<unsigned long long>(results.front().bytes), gib(results.front().bytes).c_str(),
      dev_name.c_str(), best, bytes / best / 1e9, median, bytes / median / 1e9,
      cuda ? "" : " (cpu: zero-copy wrap of the mapping + one read of every byte)");
  return 0;
}

}  // namespace mlxn::cli
