// mlxn quantize IN OUT --type TYPE [--recipe pure|llama] [--threads N] [--allow-requantize] [--hf-names] [--dry-run]
// Quantizes the weight matrices of a float GGUF file or safetensors checkpoint into a GGUF file (the work is
// io::quantize_model). Progress goes to stderr: a bar on a terminal, one line per tensor otherwise.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "mlxn/io/quantize_model.h"
#include "mlxn/quant/ggml_type.h"

namespace mlxn::cli {
namespace {

constexpr const char* kUsage =
    "usage: mlxn quantize IN OUT --type TYPE [--recipe pure|llama] [--threads N] [--allow-requantize] [--hf-names] "
    "[--dry-run]";

std::string human(uint64_t b) {
  char buf[64];
  const double d = static_cast<double>(b);
  if (b >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", d / (1u << 30));
  else if (b >= (uint64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", d / (1u << 20));
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", d / 1024);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

std::string type_name(uint32_t ggml_type) {
  auto i = quant::ggml_type_info(ggml_type);
  return i ? std::string(i->name) : "type" + std::to_string(ggml_type);
}

bool g_bar_drawn = false;

int terminal_width() {
  winsize ws{};
  if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
  return 100;
}

// The bar, redrawn in place: "[#####-----]  45/291  2.31/14.96 GiB  512.3 MB/s  blk.4.ffn_down.weight".
void draw_bar(const io::QuantizeProgress& p) {
  const double frac = p.source_bytes_total ? static_cast<double>(p.source_bytes_done) / p.source_bytes_total : 0;
  constexpr int kBar = 24;
  const int filled = std::clamp(static_cast<int>(frac * kBar + 0.5), 0, kBar);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kBar - filled), '-');
  const double rate = p.seconds > 0 ? static_cast<double>(p.source_bytes_done) / p.seconds / 1e6 : 0;
  char head[160];
  std::snprintf(head, sizeof head, "[%s] %4zu/%zu  %s / %s  %.1f MB/s  ", bar.c_str(),
                p.index + (p.tensor_done ? 1 : 0), p.count, human(p.source_bytes_done).c_str(),
                human(p.source_bytes_total).c_str(), rate);
  std::string line = head;
  line += p.tensor ? p.tensor->name : "";
  const size_t width = static_cast<size_t>(terminal_width() - 1);
  if (line.size() > width) line.resize(width);
  std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
  g_bar_drawn = true;
  if (p.tensor_done && p.index + 1 == p.count) std::fputc('\n', stderr);
  std::fflush(stderr);
}

// One line per finished tensor: "[ 7/75] blk.0.ffn_down.weight  bf16 -> q6_K  [512, 1408]  1.38 MiB -> 578 KiB  note".
void print_line(const io::QuantizeProgress& p) {
  if (!p.tensor_done) return;
  const auto& t = *p.tensor;
  const int w = static_cast<int>(std::to_string(p.count).size());
  std::string sizes = human(t.source_bytes) + " -> " + human(t.bytes);
  if (!t.note.empty()) sizes += "  " + t.note;
  std::fprintf(stderr, "[%*zu/%zu] %-36s %-6s -> %-6s %-18s %s\n", w, p.index + 1, p.count, t.name.c_str(),
               t.source_type.c_str(), type_name(t.ggml_type).c_str(), t.shape.to_string().c_str(), sizes.c_str());
}

bool parse_int(const std::string& s, int& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

void print_plan(const io::QuantizeResult& r) {
  size_t nw = 4;
  for (const auto& t : r.tensors) nw = std::max(nw, std::min<size_t>(t.name.size(), 60));
  std::printf("%-*s  %-12s %-8s %-20s %12s  %s\n", static_cast<int>(nw), "name", "source", "type", "shape", "bytes",
              "note");
  for (const auto& t : r.tensors)
    std::printf("%-*s  %-12s %-8s %-20s %12s  %s\n", static_cast<int>(nw), t.name.c_str(), t.source_type.c_str(),
                type_name(t.ggml_type).c_str(), t.shape.to_string().c_str(), human(t.bytes).c_str(), t.note.c_str());
}

void print_summary(const io::QuantizeResult& r, const std::string& out, bool dry_run) {
  int64_t elems = 0;
  std::map<std::string, std::pair<size_t, uint64_t>> by_type;
  for (const auto& t : r.tensors) {
    elems += t.shape.numel();
    auto& e = by_type[type_name(t.ggml_type)];
    e.first++;
    e.second += t.bytes;
  }
  const double bpw = elems > 0 ? 8.0 * static_cast<double>(r.bytes) / static_cast<double>(elems) : 0;
  std::printf("%s %s: %zu tensors from %s (%s%s) as %s (%s recipe), %s -> %s, %.2f bits per weight, %.1f s\n",
              dry_run ? "would write" : "wrote", out.c_str(), r.tensors.size(), r.input_format.c_str(),
              r.architecture.empty() ? "no architecture" : r.architecture.c_str(),
              r.input_format == "safetensors" ? (r.names_mapped ? ", llama.cpp names" : ", Hugging Face names") : "",
              r.target.name.c_str(), std::string(io::quant_recipe_name(r.target.recipe)).c_str(),
              human(r.source_bytes).c_str(), human(r.bytes).c_str(), bpw, r.seconds);
  for (const auto& [t, c] : by_type)
    std::printf("  %-8s %5zu tensors  %s\n", t.c_str(), c.first, human(c.second).c_str());
  for (const auto& w : r.warnings) std::printf("note: %s\n", w.c_str());
}

}  // namespace

int cmd_quantize(const Args& args) {
  std::vector<std::string> paths;
  io::QuantizeOptions opt;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& v) {
      if (i + 1 >= args.size()) return false;
      v = args[++i];
      return true;
    };
    std::string v;
    if (a == "--type") {
      if (!value(opt.type)) return fail("quantize", "--type needs a value; one of: " + io::quant_target_names());
    } else if (a == "--recipe") {
      if (!value(v)) return fail("quantize", "--recipe needs a value: pure or llama");
      opt.recipe = io::quant_recipe_from_name(v);
      if (!opt.recipe) return fail("quantize", "unknown --recipe '" + v + "': pure or llama");
    } else if (a == "--threads") {
      if (!value(v) || !parse_int(v, opt.threads) || opt.threads < 1 || opt.threads > 4096)
        return fail("quantize", "--threads needs a count from 1 to 4096");
    } else if (a == "--allow-requantize") {
      opt.allow_requantize = true;
    } else if (a == "--hf-names") {
      opt.keep_hf_names = true;
    } else if (a == "--dry-run") {
      opt.dry_run = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("%s\ntypes: %s\n", kUsage, io::quant_target_names().c_str());
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      return fail("quantize", "unknown option " + a);
    } else {
      paths.push_back(a);
    }
  }
  if (paths.size() != 2 && !(opt.dry_run && paths.size() == 1)) return fail("quantize", kUsage);
  if (opt.type.empty()) return fail("quantize", "--type is required; one of: " + io::quant_target_names());
  if (auto t = io::parse_quant_target(opt.type, opt.recipe); !t) return fail("quantize", t.status().to_string());
  const std::string out = paths.size() == 2 ? paths[1] : "";

  const bool tty = isatty(STDERR_FILENO) != 0;
  if (!opt.dry_run) {
    if (tty)
      opt.progress = draw_bar;
    else
      opt.progress = print_line;
  }
  auto r = io::quantize_model(paths[0], out, opt);
  if (!r) {
    if (g_bar_drawn) std::fputc('\n', stderr);
    return fail("quantize", r.status().to_string());
  }
  if (opt.dry_run) print_plan(*r);
  print_summary(*r, out.empty() ? "(dry run)" : out, opt.dry_run);
  return 0;
}

}  // namespace mlxn::cli
