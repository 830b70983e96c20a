// mlxn generate --model FILE.gguf|DIR (--prompt-ids "1,2,3" | --prompt "text") [-n 128] [--temp T] [--top-k K]
//               [--top-p P] [--min-p P] [--seed S] [--device cpu|cuda[:N]] [--ctx N] [--chunk N] [--eager]
// Prefills the prompt, then decodes with the captured decode graph (one replay per token, sampling on the device),
// printing token ids (or text when a tokenizer is available) as they come, then prompt and generation tokens/s and
// the device memory the model holds.
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "mlxn/core/device.h"
#include "mlxn/models/generate.h"
#include "mlxn/models/model.h"

namespace mlxn::cli {
namespace {

constexpr const char* kUsage =
    "usage: mlxn generate --model FILE.gguf|DIR (--prompt-ids \"1,2,3\" | --prompt TEXT) [-n 128] [--temp T] "
    "[--top-k K] [--top-p P] [--min-p P] [--seed S] [--device cpu|cuda[:N]] [--ctx N] [--chunk N] [--eager]";

template <typename T>
bool parse_num(const std::string& s, T& out) {
  if constexpr (std::is_floating_point_v<T>) {
    try {
      size_t n = 0;
      out = static_cast<T>(std::stod(s, &n));
      return n == s.size();
    } catch (...) {
      return false;
    }
  } else {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  }
}

Result<std::vector<int32_t>> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i <= s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string tok = s.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int32_t v = 0;
    if (!parse_num(tok, v)) return invalid_argument("generate", "bad token id '", tok, "' in --prompt-ids");
    ids.push_back(v);
    i = j + 1;
  }
  return ids;
}

Result<Device> open_device(const std::string& spec) {
  if (spec == "cpu") return Device::cpu();
  if (spec.rfind("cuda", 0) == 0) {
    int ordinal = 0;
    if (spec.size() > 4 && (spec[4] != ':' || !parse_num(spec.substr(5), ordinal)))
      return invalid_argument("generate", "bad --device '", spec, "': cpu, cuda or cuda:N");
    return Device::open(Backend::Cuda, ordinal);
  }
  return invalid_argument("generate", "bad --device '", spec, "': cpu, cuda or cuda:N");
}

std::string mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  return buf;
}

}  // namespace

int cmd_generate(const Args& args) {
  std::string model_path, prompt_ids, prompt_text, device = Device::cuda_device_count() > 0 ? "cuda" : "cpu";
  models::GenerateOptions go;
  go.sampling.temperature = 0.8f;
  go.sampling.top_k = 40;
  go.sampling.top_p = 0.95f;
  go.sampling.min_p = 0.05f;
  go.sampling.seed = 42;
  models::ModelOptions mo;
  mo.max_context = 4096;
  mo.max_chunk = 256;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool v = i + 1 < args.size();
    auto num = [&](auto& out) {
      if (!v || !parse_num(args[i + 1], out)) return false;
      ++i;
      return true;
    };
    bool ok = true;
    if (a == "--model" && v)
      model_path = args[++i];
    else if (a == "--prompt-ids" && v)
      prompt_ids = args[++i];
    else if (a == "--prompt" && v)
      prompt_text = args[++i];
    else if (a == "--device" && v)
      device = args[++i];
    else if (a == "-n" || a == "--n-predict")
      ok = num(go.n_predict);
    else if (a == "--temp")
      ok = num(go.sampling.temperature);
    else if (a == "--top-k")
      ok = num(go.sampling.top_k);
    else if (a == "--top-p")
      ok = num(go.sampling.top_p);
    else if (a == "--min-p")
      ok = num(go.sampling.min_p);
    else if (a == "--seed")
      ok = num(go.sampling.seed);
    else if (a == "--ctx")
      ok = num(mo.max_context);
    else if (a == "--chunk")
      ok = num(mo.max_chunk);
    else if (a == "--eager")
      go.use_graph = false;
    else if (a == "-h" || a == "--help")
      return std::printf("%s\n", kUsage), 0;
    else
      return fail("generate", "unknown argument '" + a + "'\n" + kUsage);
    if (!ok) return fail("generate", "bad or missing value for " + a);
  }
  if (model_path.empty()) return fail("generate", std::string("--model is required\n") + kUsage);
  if (prompt_ids.empty() == prompt_text.empty())
    return fail("generate", std::string("give exactly one of --prompt-ids and --prompt\n") + kUsage);

  auto dev = open_device(device);
  if (!dev) return fail("generate", dev.status().to_string());
  install_tokenizer();
  std::unique_ptr<models::Tokenizer> tok;
  if (auto t = models::load_tokenizer(model_path); t.is_ok()) {
    tok = std::move(t).value();
  } else if (!prompt_text.empty()) {
    return fail("generate", "--prompt needs a tokenizer: " + t.status().message());
  }
  std::vector<int32_t> prompt;
  if (!prompt_text.empty()) {
    auto ids = tok->encode(prompt_text);
    if (!ids) return fail("generate", ids.status().to_string());
    prompt = std::move(ids).value();
  } else {
    auto ids = parse_ids(prompt_ids);
    if (!ids) return fail("generate", ids.status().to_string());
    prompt = std::move(ids).value();
  }
  mo.max_context = std::max<int64_t>(mo.max_context, static_cast<int64_t>(prompt.size()) + go.n_predict);

  std::fprintf(stderr, "loading %s on %s ...\n", model_path.c_str(), dev->properties().name.c_str());
  auto model = models::Model::load(model_path, *dev, mo);
  if (!model) return fail("generate", model.status().to_string());
  auto& m = *model.value();
  std::fprintf(stderr, "%s; activations %s, KV cache %s\n", m.config().summary().c_str(),
               std::string(dtype_name(m.act_dtype())).c_str(), std::string(dtype_name(m.kv_dtype())).c_str());
  if (tok) go.stop_ids = tok->stop_ids();

  if (!prompt_text.empty()) std::printf("%s", prompt_text.c_str());
  go.on_token = [&](int32_t t) {
    if (tok) {
      auto s = tok->decode(std::span<const int32_t>(&t, 1));
      std::printf("%s", s.is_ok() ? s->c_str() : "?");
    } else {
      std::printf("%d ", t);
    }
    std::fflush(stdout);
    return true;
  };
  auto r = models::generate(m, prompt, go);
  std::printf("\n");
  if (!r) return fail("generate", r.status().to_string());
  const auto mem = m.memory();
  std::fprintf(stderr, "prompt: %lld tokens, %.2f s, %.1f tokens/s\n", static_cast<long long>(r->n_prompt),
               r->prompt_seconds, r->prompt_tps());
  std::fprintf(stderr, "generation: %zu tokens, %.2f s, %.1f tokens/s (%s)\n", r->tokens.size(), r->gen_seconds,
               r->gen_tps(), go.use_graph ? "graph replay" : "eager");
  std::fprintf(stderr, "device memory held by the model: %s (weights %s, KV cache %s, activations %s)\n",
               mib(mem.total()).c_str(), mib(mem.weights).c_str(), mib(mem.kv_cache).c_str(),
               mib(mem.activations).c_str());
  return 0;
}

}  // namespace mlxn::cli
