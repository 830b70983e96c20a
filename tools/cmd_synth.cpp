// mlxn synth --arch llama|qwen2|qwen3|gemma3 --preset NAME --type Q4_0|Q4_K|Q8_0|F16|... -o FILE.gguf [--seed S]
//            [--threads N]
// Writes a random-weight GGUF of a real architecture and size (presets: llama 8b; qwen3 8b, 0.6b; gemma3 4b, 270m;
// tiny for every architecture), for benchmarks without downloads.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>

#include "commands.h"
#include "mlxn/io/quantize_model.h"
#include "mlxn/models/synth.h"

namespace mlxn::cli {

int cmd_synth(const Args& args) {
  constexpr const char* kUsage =
      "usage: mlxn synth --arch llama|qwen2|qwen3|gemma3 --preset NAME --type TYPE -o FILE.gguf [--seed S] "
      "[--threads N]";
  std::string arch, preset, type = "Q4_0", out;
  models::SynthOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool v = i + 1 < args.size();
    if (a == "--arch" && v)
      arch = args[++i];
    else if (a == "--preset" && v)
      preset = args[++i];
    else if (a == "--type" && v)
      type = args[++i];
    else if ((a == "-o" || a == "--output") && v)
      out = args[++i];
    else if ((a == "--seed" || a == "--threads") && v) {
      const std::string& s = args[++i];
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc() || p != s.data() + s.size()) return fail("synth", "bad value for " + a);
      if (a == "--seed")
        o.seed = n;
      else
        o.threads = static_cast<int>(n);
    } else if (a == "-h" || a == "--help") {
      return std::printf("%s\n", kUsage), 0;
    } else {
      return fail("synth", "unknown argument '" + a + "'\n" + kUsage);
    }
  }
  if (arch.empty() || preset.empty() || out.empty()) return fail("synth", kUsage);
  const auto a = models::arch_from_name(arch);
  if (!a) return fail("synth", "unknown --arch '" + arch + "' (llama, qwen2, qwen3, gemma3)");
  auto c = models::synth_preset(*a, preset);
  if (!c) return fail("synth", c.status().message());
  // Mixture names (Q4_K_M, ...) give their default type to every matrix here: no per-tensor recipe.
  auto target = io::parse_quant_target(type);
  if (!target) return fail("synth", target.status().message());
  o.type = target->default_type;
  std::fprintf(stderr, "%s, every matrix %s\n", c->summary().c_str(), std::string(dtype_name(o.type)).c_str());
  const auto t0 = std::chrono::steady_clock::now();
  int last = -1;
  o.progress = [&](uint64_t done, uint64_t total) {
    const int pct = total ? static_cast<int>(100 * done / total) : 100;
    if (pct != last) std::fprintf(stderr, "\r%3d%%", pct), last = pct;
  };
  auto r = models::write_synth_gguf(*c, out, o);
  std::fprintf(stderr, "\n");
  if (!r) return fail("synth", r.status().to_string());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %.2f GiB in %.1f s\n", out.c_str(), static_cast<double>(*r) / (1u << 30), s);
  return 0;
}

}  // namespace mlxn::cli
