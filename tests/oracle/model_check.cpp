// Real-file check (label model): every tensor of a GGUF file or safetensors checkpoint loads onto the device and
// dequantizes to finite f32 on the host. Prints counts and the load rate (GB/s from the page cache).
//   mlxn_model_check PATH...    (a .gguf file, or a directory holding one, or a safetensors file / checkpoint)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "mlxn/io/gguf.h"
#include "mlxn/io/safetensors.h"

namespace fs = std::filesystem;
using namespace mlxn;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU loads wrap the mapping (no bytes move); a device load is timed as GB/s.
std::string rate(const Device& dev, uint64_t bytes, double s) {
  char buf[96];
  if (dev.backend() == Backend::Cpu)
    std::snprintf(buf, sizeof buf, "mapped in place in %.3f s", s);
  else
    std::snprintf(buf, sizeof buf, "%.3f s, %.2f GB/s from the page cache", s, static_cast<double>(bytes) / 1e9 / std::max(s, 1e-9));
  return buf;
}

size_t count_nonfinite(const std::vector<float>& v) {
  size_t n = 0;
  for (float x : v) n += std::isfinite(x) ? 0 : 1;
  return n;
}

int check_gguf(const std::string& path, const Device& dev) {
  auto f = io::GgufFile::open(path);
  if (!f) {
    std::fprintf(stderr, "FAIL %s\n", f.status().to_string().c_str());
    return 1;
  }
  int bad = 0;
  uint64_t bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Buffer> keep;
  for (const auto& t : f->tensors()) {
    auto b = f->load_tensor(t.name, dev);
    if (!b) {
      std::fprintf(stderr, "FAIL load %s\n", b.status().to_string().c_str());
      ++bad;
      continue;
    }
    bytes += t.nbytes;
    keep.push_back(*b);
  }
  if (auto st = dev.synchronize(); !st) ++bad;
  const double load_s = seconds_since(t0);
  size_t nonfinite = 0;
  t0 = std::chrono::steady_clock::now();
  for (const auto& t : f->tensors()) {
    auto v = f->dequantize_tensor(t.name);
    if (!v) {
      std::fprintf(stderr, "FAIL dequantize %s\n", v.status().to_string().c_str());
      ++bad;
      continue;
    }
    nonfinite += count_nonfinite(*v);
  }
  std::printf("%s: GGUF v%u, %s, %zu tensors, %zu metadata keys, %.1f MB; load on %s: %s; dequantize %.2f s; "
              "%zu non-finite values\n",
              path.c_str(), f->version(), f->architecture().c_str(), f->tensors().size(), f->metadata().size(),
              static_cast<double>(bytes) / 1e6, std::string(backend_name(dev.backend())).c_str(),
              rate(dev, bytes, load_s).c_str(), seconds_since(t0), nonfinite);
  return bad != 0 || nonfinite != 0;
}

int check_safetensors(const std::string& path, const Device& dev) {
  auto m = io::SafetensorsModel::open(path);
  if (!m) {
    std::fprintf(stderr, "FAIL %s\n", m.status().to_string().c_str());
    return 1;
  }
  int bad = 0;
  uint64_t bytes = 0;
  size_t nonfinite = 0;
  std::vector<Buffer> keep;
  const auto names = m->tensor_names();
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& n : names) {
    auto b = m->load_tensor(n, dev);
    if (!b) {
      std::fprintf(stderr, "FAIL load %s\n", b.status().to_string().c_str());
      ++bad;
      continue;
    }
    bytes += m->tensor(n)->end - m->tensor(n)->begin;
    keep.push_back(*b);
  }
  if (auto st = dev.synchronize(); !st) ++bad;
  const double load_s = seconds_since(t0);
  for (const auto& n : names) {
    auto v = m->is_affine(n) && n.ends_with(".weight") ? m->dequantize_affine(n) : m->dequantize_tensor(n);
    if (!v) {
      std::fprintf(stderr, "FAIL dequantize %s\n", v.status().to_string().c_str());
      ++bad;
      continue;
    }
    nonfinite += count_nonfinite(*v);
  }
  std::string arch = "?";
  if (m->config())
    if (auto t = m->config()->get<std::string>("model_type")) arch = *t;
  std::printf("%s: safetensors, %s, %zu shards, %zu tensors, %.1f MB; load on %s: %s; %zu non-finite values\n",
              path.c_str(), arch.c_str(), m->shards().size(), names.size(), static_cast<double>(bytes) / 1e6,
              std::string(backend_name(dev.backend())).c_str(), rate(dev, bytes, load_s).c_str(), nonfinite);
  return bad != 0 || nonfinite != 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH...\n", argv[0]);
    return 2;
  }
  int failures = 0;
  for (Device dev : {Device::cpu(), Device::best()}) {
    for (int i = 1; i < argc; ++i) {
      std::string p = argv[i];
      std::error_code ec;
      if (fs::is_directory(p, ec)) {
        for (const auto& e : fs::directory_iterator(p, ec))
          if (e.path().extension() == ".gguf") p = e.path().string();
      }
      const bool gguf = p.size() > 5 && p.substr(p.size() - 5) == ".gguf";
      failures += gguf ? check_gguf(p, dev) : check_safetensors(p, dev);
    }
    if (dev.backend() == Backend::Cpu && Device::best().backend() == Backend::Cpu) break;
  }
  std::printf(failures ? "model check: FAIL\n" : "model check: PASS\n");
  return failures ? 1 : 0;
}
