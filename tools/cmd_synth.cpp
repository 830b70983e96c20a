// mlxn synth --arch llama|qwen2|qwen3|gemma3 --preset NAME --type TYPE -o FILE.gguf [--recipe pure|llama] [--seed S]
//            [--threads N]
// Writes a random-weight GGUF of a real architecture and size (presets: llama 8b; qwen3 8b, 0.6b; gemma3 27b, 12b,
// 4b, 270m; tiny for every architecture), for benchmarks without downloads. TYPE is a single type (every matrix) or
// a llama.cpp mixture such as Q4_K_M, typed per tensor as llama-quantize would (models/synth.h has the rules).
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "mlxn/io/quantize_model.h"
#include "mlxn/models/synth.h"

namespace mlxn::cli {

namespace {

std::string presets_line() {
  std::string s;
  for (auto a : {models::Arch::Llama, models::Arch::Qwen2, models::Arch::Qwen3, models::Arch::Gemma3}) {
    s += s.empty() ? "" : "; ";
    s += std::string(models::arch_name(a));
    for (const auto& p : models::synth_preset_names(a)) s += " " + p;
  }
  return s;
}

std::string usage() {
  return "usage: mlxn synth --arch llama|qwen2|qwen3|gemma3 --preset NAME --type TYPE -o FILE.gguf\n"
         "                  [--recipe pure|llama] [--seed S] [--threads N]\n"
         "Writes a GGUF with random weights and a real model's shapes and metadata.\n"
         "  --preset  " +
         presets_line() +
         "\n"
         "  --type    a single type for every matrix, or a llama.cpp mixture typed per tensor as llama-quantize\n"
         "            does (Q4_K_M: output / tied embeddings Q6_K, attn_v and ffn_down Q6_K in the layers that get\n"
         "            more bits, the rest Q4_K). Default Q4_0. One of:\n"
         "            " +
         io::quant_target_names() +
         "\n"
         "  --recipe  pure: every matrix the type's base type; llama: llama.cpp's per-tensor rules\n"
         "            (default: llama for a mixture name, pure for a single type)\n"
         "  --seed    random seed (default 1); --threads quantizer threads (default: all)";
}

}  // namespace

int cmd_synth(const Args& args) {
  std::string arch, preset, out;
  models::SynthOptions o;
  o.type_name = "Q4_0";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool v = i + 1 < args.size();
    if (a == "--arch" && v)
      arch = args[++i];
    else if (a == "--preset" && v)
      preset = args[++i];
    else if (a == "--type" && v)
      o.type_name = args[++i];
    else if ((a == "-o" || a == "--output") && v)
      out = args[++i];
    else if (a == "--recipe" && v) {
      const std::string& r = args[++i];
      o.recipe = io::quant_recipe_from_name(r);
      if (!o.recipe) return fail("synth", "unknown --recipe '" + r + "': pure or llama");
    } else if ((a == "--seed" || a == "--threads") && v) {
      const std::string& s = args[++i];
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
      if (ec != std::errc() || p != s.data() + s.size()) return fail("synth", "bad value for " + a);
      if (a == "--seed")
        o.seed = n;
      else
        o.threads = static_cast<int>(n);
    } else if (a == "-h" || a == "--help") {
      return std::printf("%s\n", usage().c_str()), 0;
    } else {
      return fail("synth", "unknown argument '" + a + "'\n" + usage());
    }
  }
  if (arch.empty() || preset.empty() || out.empty()) return fail("synth", usage());
  const auto a = models::arch_from_name(arch);
  if (!a) return fail("synth", "unknown --arch '" + arch + "' (llama, qwen2, qwen3, gemma3)");
  auto c = models::synth_preset(*a, preset);
  if (!c) return fail("synth", c.status().message());
  auto plan = models::synth_plan(*c, o);
  if (!plan) return fail("synth", plan.status().message());
  // The matrices per type, e.g. "Q4_K_M (llama recipe): 169 q4_K, 57 q6_K".
  std::map<std::string, int> count;
  for (const auto& t : plan->tensors)
    if (t.shape.rank() == 2) ++count[std::string(dtype_name(t.type))];
  std::string types;
  for (const auto& [name, n] : count) types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + name;
  std::fprintf(stderr, "%s\n%s (%s recipe, file type %u): %s\n", c->summary().c_str(), plan->target.name.c_str(),
               std::string(io::quant_recipe_name(plan->target.recipe)).c_str(), plan->target.file_type, types.c_str());
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
